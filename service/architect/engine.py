"""The architect engine interface: a prompt plus parameters in, a config and its sources out."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from simulation.v1 import config_pb2


@dataclass(frozen=True)
class GeneratedConfig:
    """What an engine produced: the config and the material it drew on."""

    config: config_pb2.SimulationConfig
    sources: list[config_pb2.Source]


class ArchitectError(Exception):
    """Generation failed for a reason worth recording on the job.

    ``reason`` is a stable upper-snake code (``BACKEND_UNAVAILABLE``, ``BACKEND_REJECTED``,
    ``DEADLINE_EXCEEDED``, ``INVALID_PARAMETERS``); ``retryable`` tells the job runner whether
    trying the same job again later could succeed.
    """

    def __init__(self, reason: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable

    def __repr__(self) -> str:
        return (
            f"ArchitectError(reason={self.reason!r}, message={self.message!r}, "
            f"retryable={self.retryable!r})"
        )


class ArchitectEngine(abc.ABC):
    """Turns a prompt plus parameters into a config and its sources.

    Engines do not validate their output: the caller runs every engine's output through the
    shared ``ConfigValidator`` so that one set of rules applies to all of them.
    """

    name: str

    @abc.abstractmethod
    def generate(
        self,
        prompt: str,
        parameters: config_pb2.ArchitectParameters,
        *,
        simulation_id: str = "",
        request_id: str = "",
    ) -> GeneratedConfig:
        """Generate a config; raise ``ArchitectError`` when generation fails."""

    def close(self) -> None:  # noqa: B027 - optional hook, most engines hold nothing
        """Release resources held by the engine (channels, clients)."""
