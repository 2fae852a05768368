"""The architect: pluggable engines that turn a prompt plus parameters into a config."""

from __future__ import annotations

from service.architect.builtin import BuiltinArchitectEngine, Persona, PersonaCatalogue
from service.architect.engine import ArchitectEngine, ArchitectError, GeneratedConfig
from service.architect.remote import RemoteArchitectEngine

__all__ = [
    "ArchitectEngine",
    "ArchitectError",
    "BuiltinArchitectEngine",
    "GeneratedConfig",
    "Persona",
    "PersonaCatalogue",
    "RemoteArchitectEngine",
    "create_engine",
]


def create_engine(
    kind: str, *, remote_address: str = "", remote_timeout: float = 30.0
) -> ArchitectEngine:
    """Build the engine named by settings: ``"builtin"`` or ``"remote"`` (needs an address)."""
    if kind == "builtin":
        return BuiltinArchitectEngine()
    if kind == "remote":
        if not remote_address:
            raise ValueError("the remote architect engine needs remote_address")
        return RemoteArchitectEngine(remote_address, timeout_seconds=remote_timeout)
    raise ValueError(f"unknown architect engine {kind!r}; expected 'builtin' or 'remote'")
