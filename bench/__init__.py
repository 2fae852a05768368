"""`make bench`: the real server measured from outside against a bare grpcio server."""
