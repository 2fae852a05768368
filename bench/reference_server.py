"""The bare grpcio server the benchmark measures the real one against.

It is what a gRPC service in Python costs before it does any work: a sync ``grpc.server`` in
one process with 16 worker threads (the real server's default), and one generic handler that
answers every unary call with a constant, pre-serialized reply. The benchmark gives it, for
each RPC, the exact bytes the real server answered that RPC with, so both servers send
replies of the same size and a client that parses the reply (the Python load driver does)
parses the same message from both. Requests are not even deserialized: nothing here is work
the real server could skip.

Run as its own process, like the real server, so neither shares a GIL with the load:

    python -m bench.reference_server --reply /pkg.Service/Method=reply.bin [--port 0]

It prints ``listening on 127.0.0.1:PORT`` once it serves, and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Mapping
from concurrent import futures
from pathlib import Path

import grpc

WORKER_THREADS = 16


class ConstantReplies(grpc.GenericRpcHandler):
    """Answers each known method with its constant reply; unknown methods are UNIMPLEMENTED."""

    def __init__(self, replies: Mapping[str, bytes]):
        # No serializers: grpcio passes the raw request bytes in and sends the reply bytes as
        # they are, so a call costs the transport and a thread hop, nothing else.
        self._handlers = {
            method: grpc.unary_unary_rpc_method_handler(_constant(reply))
            for method, reply in replies.items()
        }

    def service(self, handler_call_details):
        return self._handlers.get(handler_call_details.method)


def _constant(reply: bytes):
    def handle(_request: bytes, _context) -> bytes:
        return reply

    return handle


def create_server(
    replies: Mapping[str, bytes], *, host: str = "127.0.0.1", port: int = 0
) -> tuple[grpc.Server, int]:
    """A started bare server answering ``replies`` (method path -> reply bytes); and its port."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=WORKER_THREADS),
        handlers=[ConstantReplies(replies)],
        options=[("grpc.so_reuseport", 0)],
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound


def _parse_reply(text: str) -> tuple[str, bytes]:
    method, separator, path = text.partition("=")
    if not separator or not method.startswith("/"):
        raise argparse.ArgumentTypeError(f"expected /package.Service/Method=FILE, got {text!r}")
    return method, Path(path).read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reply",
        type=_parse_reply,
        action="append",
        required=True,
        metavar="METHOD=FILE",
        help="answer METHOD (/package.Service/Method) with the bytes of FILE",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    # The handler only records the signal: taking a lock in it (Event.set) could deadlock
    # against the main thread holding that same lock, as in ``simconfig serve``.
    received: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: received.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    server, port = create_server(dict(args.reply), host=args.host, port=args.port)
    print(f"reference server listening on {args.host}:{port}", flush=True)
    while not received:
        time.sleep(0.2)
    server.stop(1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
