"""The remote architect: calls an external ``ArchitectBackend`` gRPC service."""

from __future__ import annotations

import logging

import grpc
from simulation.v1 import architect_backend_pb2, architect_backend_pb2_grpc, config_pb2
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from service.architect.engine import ArchitectEngine, ArchitectError, GeneratedConfig

logger = logging.getLogger(__name__)

# Only these say "the backend did not get to answer"; every other code is the backend's answer.
_RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_MAX_BACKOFF_SECONDS = 5.0
# A backend that restarts should be reachable again quickly, not after gRPC's default reconnect
# backoff (1 s growing to 120 s) that would outlast our own bounded retries.
_CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, grpc.RpcError) and error.code() in _RETRYABLE_CODES


class RemoteArchitectEngine(ArchitectEngine):
    """Calls ``ArchitectBackend.GenerateConfig`` with a per-attempt deadline and bounded retries.

    The output is returned as the backend sent it; the caller validates it like any engine's.
    Safe to share between threads: a gRPC channel is.
    """

    name = "remote"

    def __init__(
        self,
        address: str,
        *,
        timeout_seconds: float = 30.0,
        max_attempts: int = 3,
        initial_backoff: float = 0.2,
    ) -> None:
        if not address:
            raise ValueError("the remote architect needs a backend address")
        if timeout_seconds <= 0 or max_attempts < 1 or initial_backoff < 0:
            raise ValueError(
                "timeout_seconds and max_attempts must be positive, initial_backoff not negative"
            )
        self.address = address
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max_attempts
        self.initial_backoff = initial_backoff
        self._channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._stub = architect_backend_pb2_grpc.ArchitectBackendStub(self._channel)

    def generate(
        self,
        prompt: str,
        parameters: config_pb2.ArchitectParameters,
        *,
        simulation_id: str = "",
        request_id: str = "",
    ) -> GeneratedConfig:
        """Ask the backend for a config; raise ``ArchitectError`` when it cannot or will not."""
        request = architect_backend_pb2.GenerateConfigRequest(
            prompt=prompt,
            parameters=parameters,
            simulation_id=simulation_id,
            request_id=request_id,
        )
        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(self.max_attempts),
            # Full jitter, so workers that lost the backend together do not return together.
            wait=wait_random_exponential(multiplier=self.initial_backoff, max=_MAX_BACKOFF_SECONDS),
            before_sleep=self._log_retry,
        )
        try:
            response = retrying(self._call, request)
        except RetryError as exhausted:
            error = exhausted.last_attempt.exception()
            assert isinstance(error, grpc.RpcError)  # only RpcErrors are retried
            raise self._translate(error) from error
        except grpc.RpcError as error:
            raise self._translate(error) from error
        return GeneratedConfig(config=response.config, sources=list(response.sources))

    def close(self) -> None:
        """Close the channel to the backend."""
        self._channel.close()

    def _call(
        self, request: architect_backend_pb2.GenerateConfigRequest
    ) -> architect_backend_pb2.GenerateConfigResponse:
        return self._stub.GenerateConfig(request, timeout=self.timeout_seconds)

    def _translate(self, error: grpc.RpcError) -> ArchitectError:
        code, details = error.code(), error.details() or ""
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ArchitectError(
                "DEADLINE_EXCEEDED",
                f"architect backend at {self.address} did not answer within "
                f"{self.timeout_seconds:g}s in {self.max_attempts} attempt(s)",
                retryable=True,
            )
        if code == grpc.StatusCode.UNAVAILABLE:
            return ArchitectError(
                "BACKEND_UNAVAILABLE",
                f"architect backend at {self.address} is unavailable after "
                f"{self.max_attempts} attempt(s): {details}",
                retryable=True,
            )
        return ArchitectError(
            "BACKEND_REJECTED", f"architect backend returned {code.name}: {details}"
        )

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        code = error.code().name if isinstance(error, grpc.RpcError) else "?"
        logger.warning(
            "architect backend %s failed with %s (attempt %d of %d); retrying",
            self.address,
            code,
            state.attempt_number,
            self.max_attempts,
        )
