"""The Simulation Config Service: gRPC servicers, use cases, validation and the architect.

This package sits between the API contract (``generated/``, made from ``protos/``) and
``storage/``. It never builds SQL and never imports SQLAlchemy or a database driver.
"""
