"""gRPC servicers: they only translate proto -> use case -> proto."""
