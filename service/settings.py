"""Typed settings read from ``SIMCONFIG_*`` environment variables.

Everything is validated once, at start-up, with a message that names the bad
variable, so a misconfigured deployment fails fast instead of at the first call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

PREFIX = "SIMCONFIG_"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _int_in(low: int, high: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name} must be from {low} to {high}, got {value}")
        return value

    return parse


def _float_in(low: float, high: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(f"{name} must be from {low} to {high}, got {value}")
        return value

    return parse


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _database_url(name: str, raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not (value.startswith("postgresql+psycopg://") or value.startswith("sqlite:///")):
        raise SettingsError(
            f"{name} must start with postgresql+psycopg:// or sqlite:///, got {value.split(':')[0]!r}"
        )
    return value


def _log_level(name: str, raw: str) -> str:
    value = raw.strip().upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise SettingsError(f"{name} must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return value


def _one_of(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def _text(name: str, raw: str) -> str:
    return raw.strip()


def _path(name: str, raw: str) -> Path:
    if not raw.strip():
        raise SettingsError(f"{name} must not be empty")
    return Path(raw.strip())


@dataclass(frozen=True)
class Settings:
    """Every setting of the server, with its default.

    Build it with :meth:`from_env`; each field is read from ``SIMCONFIG_<FIELD>``.
    """

    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 50051
    data_dir: Path = Path("data")
    worker_threads: int = 16
    grace_period: float = 10.0
    log_level: str = "INFO"
    max_message_bytes: int = 4 * 1024 * 1024
    db_pool_size: int = 10
    migrate_on_start: bool = True
    demo_tenant: bool = True
    scenario_retention_days: int = 30
    health_check_interval: float = 2.0
    architect_engine: str = "builtin"
    architect_address: str = ""
    architect_timeout: float = 30.0
    architect_workers: int = 2
    architect_lease_seconds: float = 30.0
    architect_max_attempts: int = 3
    architect_poll_seconds: float = 1.0

    @property
    def uses_embedded_database(self) -> bool:
        """True when no database URL is configured and the SQLite default is used."""
        return self.database_url is None

    @property
    def address(self) -> str:
        """The ``host:port`` the server binds to."""
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Reads and validates the settings; raises :class:`SettingsError` naming the variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            name = PREFIX + field.name.upper()
            if name in environ:
                values[field.name] = _PARSERS[field.name](name, environ[name])
        settings = cls(**values)
        settings.verify()
        return settings

    def verify(self) -> None:
        """Checks rules that span several settings."""
        if self.architect_engine == "remote" and not self.architect_address:
            raise SettingsError(
                "SIMCONFIG_ARCHITECT_ADDRESS must be set when SIMCONFIG_ARCHITECT_ENGINE=remote"
            )
        if not self.host:
            raise SettingsError("SIMCONFIG_HOST must not be empty")


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "database_url": _database_url,
    "host": _text,
    "port": _int_in(0, 65535),
    "data_dir": _path,
    "worker_threads": _int_in(1, 1024),
    "grace_period": _float_in(0, 3600),
    "log_level": _log_level,
    "max_message_bytes": _int_in(1024, 64 * 1024 * 1024),
    "db_pool_size": _int_in(1, 200),
    "migrate_on_start": _bool,
    "demo_tenant": _bool,
    "scenario_retention_days": _int_in(1, 3650),
    "health_check_interval": _float_in(0.1, 300),
    "architect_engine": _one_of("builtin", "remote"),
    "architect_address": _text,
    "architect_timeout": _float_in(0.1, 3600),
    "architect_workers": _int_in(0, 64),
    "architect_lease_seconds": _float_in(1, 3600),
    "architect_max_attempts": _int_in(1, 100),
    "architect_poll_seconds": _float_in(0.05, 60),
}


def configure_logging(level: str) -> None:
    """Sets up plain, one-line-per-record logging on stderr."""
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if level != "DEBUG":
        # Alembic narrates every connection at INFO ("Context impl ..."), which would clutter
        # every CLI command; its warnings and errors still show.
        logging.getLogger("alembic").setLevel(logging.WARNING)
