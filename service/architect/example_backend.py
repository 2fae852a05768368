"""A small runnable ``ArchitectBackend`` server that wraps the built-in engine.

It shows what an external (for example LLM-backed) architect has to implement, and the tests run
it as a real separate process::

    python -m service.architect.example_backend --port 50061 [--delay SECONDS] [--invalid]

``--delay`` waits before answering (to exercise deadlines and crash recovery); ``--invalid``
answers with a config that breaks validation (a duplicate agent id and an event past
``max_turns``), to show the service validates remote output.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
from simulation.v1 import architect_backend_pb2, architect_backend_pb2_grpc, config_pb2

from service.architect.builtin import BuiltinArchitectEngine
from service.architect.engine import ArchitectError

logger = logging.getLogger("service.architect.example_backend")

# How often a delayed answer checks whether its caller is still waiting.
_POLL_SECONDS = 0.05


class ExampleArchitectBackend(architect_backend_pb2_grpc.ArchitectBackendServicer):
    """``GenerateConfig`` answered by the built-in engine, optionally slow or invalid."""

    def __init__(self, *, delay: float = 0.0, invalid: bool = False) -> None:
        self._engine = BuiltinArchitectEngine()
        self._delay = delay
        self._invalid = invalid
        self._shutting_down = threading.Event()

    def shut_down(self) -> None:
        """Make delayed answers end now with UNAVAILABLE, which tells callers to retry."""
        self._shutting_down.set()

    def GenerateConfig(  # noqa: N802 - name fixed by the generated servicer
        self,
        request: architect_backend_pb2.GenerateConfigRequest,
        context: grpc.ServicerContext,
    ) -> architect_backend_pb2.GenerateConfigResponse:
        """Generate a config for the request's prompt and parameters."""
        logger.info(
            "GenerateConfig simulation_id=%r request_id=%r",
            request.simulation_id,
            request.request_id,
        )
        self._wait(context)
        if self._shutting_down.is_set():
            context.abort(grpc.StatusCode.UNAVAILABLE, "example backend is shutting down")
        if not context.is_active():
            # The caller gave up (deadline or cancel); nobody will read an answer.
            context.abort(grpc.StatusCode.CANCELLED, "caller went away")
        try:
            generated = self._engine.generate(
                request.prompt,
                request.parameters,
                simulation_id=request.simulation_id,
                request_id=request.request_id,
            )
        except ArchitectError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{error.reason}: {error}")
        config = generated.config
        if self._invalid:
            _break(config)
        return architect_backend_pb2.GenerateConfigResponse(
            config=config, sources=generated.sources
        )

    def _wait(self, context: grpc.ServicerContext) -> None:
        """Sleep for the configured delay, ending early if the RPC or the server ends."""
        deadline = time.monotonic() + self._delay
        while (remaining := deadline - time.monotonic()) > 0:
            if not context.is_active():
                return
            if self._shutting_down.wait(min(_POLL_SECONDS, remaining)):
                return


def _break(config: config_pb2.SimulationConfig) -> None:
    """Make the config invalid in two known places: the last agent and the last event."""
    duplicate = config.agents.add()
    duplicate.CopyFrom(config.agents[0])
    late = config.events.add()
    late.turn = config.max_turns + 1
    late.description = "An event scheduled after the simulation ends."


def serve_example_backend(
    port: int = 0, delay: float = 0.0, invalid: bool = False
) -> tuple[grpc.Server, int]:
    """Start the example backend on 127.0.0.1; return the started server and its bound port."""
    return _start(ExampleArchitectBackend(delay=delay, invalid=invalid), port)


def _start(servicer: ExampleArchitectBackend, port: int) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    architect_backend_pb2_grpc.add_ArchitectBackendServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if bound == 0:
        raise RuntimeError(f"could not bind 127.0.0.1:{port}")
    server.start()
    return server, bound


def main(argv: list[str] | None = None) -> int:
    """Run the example backend until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering")
    parser.add_argument("--invalid", action="store_true", help="answer with an invalid config")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s"
    )
    servicer = ExampleArchitectBackend(delay=args.delay, invalid=args.invalid)
    server, port = _start(servicer, args.port)
    # Tests parse this line to learn the port; keep its wording stable.
    logger.info("example architect backend listening on 127.0.0.1:%d", port)

    stopping = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stopping.wait(0.5):
        pass
    # Delayed answers end at once with UNAVAILABLE so callers retry elsewhere or later, instead of
    # holding the process (and a caller's deadline) for the rest of the delay.
    servicer.shut_down()
    server.stop(grace=1.0).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
