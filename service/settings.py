"""Typed settings read from ``SIMCONFIG_*`` environment variables (pydantic-settings).

Everything is validated once, at start-up, with a message that names the bad variable, so a
misconfigured deployment fails fast instead of at the first call.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "SIMCONFIG_"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


_Text = Annotated[str, BeforeValidator(_stripped)]


class Settings(BaseSettings):
    """Every setting of the server, with its default.

    Each field is read from ``SIMCONFIG_<FIELD>``; build it with :meth:`from_env`, which turns
    validation errors into a :class:`SettingsError` naming the variable.
    """

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore")

    database_url: str | None = None
    host: _Text = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535)
    data_dir: Path = Path("data")
    # Per process. Python runs one thread at a time: a few threads keep the process busy while
    # others wait on the database; more only queue for the interpreter lock. Measured on two
    # cores, 4 threads per process served GetScenario ~75% faster than 16.
    worker_threads: int = Field(4, ge=1, le=1024)
    grace_period: float = Field(10.0, ge=0, le=3600)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    db_pool_size: int = Field(10, ge=1, le=200)
    # How long a lost or refused database connection is retried, bounded by each call's
    # deadline: a PostgreSQL restart shorter than this is invisible to clients.
    db_retry_seconds: float = Field(5.0, ge=0, le=300)
    # Bounded waits on PostgreSQL (seconds): no statement, open transaction, pool checkout or
    # silent peer can hold a call, or the health probe, forever.
    db_statement_timeout: float = Field(30.0, gt=0, le=3600)
    db_idle_in_transaction_timeout: float = Field(60.0, gt=0, le=3600)
    db_tcp_user_timeout: float = Field(10.0, ge=1, le=3600)
    db_pool_timeout: float = Field(5.0, gt=0, le=3600)
    # PostgreSQL: each call's database work runs as simconfig_service under row-level security
    # for the caller's tenant, a second wall behind the queries' tenant filters. Off only for
    # a database where that role cannot be used; the filters then stand alone.
    db_tenant_wall: bool = True
    health_probe_timeout: float = Field(1.0, gt=0, le=60)
    migrate_on_start: bool = True
    demo_tenant: bool = True
    scenario_retention_days: int = Field(30, ge=1, le=3650)
    # With health_probe_timeout, how soon a frozen database shows as NOT_SERVING: at most
    # their sum after it stopped answering.
    health_check_interval: float = Field(1.0, ge=0.1, le=300)
    architect_engine: Annotated[Literal["builtin", "remote"], BeforeValidator(_lower)] = "builtin"
    architect_address: _Text = ""
    architect_timeout: float = Field(30.0, ge=0.1, le=3600)
    architect_workers: int = Field(2, ge=0, le=64)
    architect_lease_seconds: float = Field(30.0, ge=1, le=3600)
    architect_max_attempts: int = Field(3, ge=1, le=100)
    architect_poll_seconds: float = Field(1.0, ge=0.05, le=60)
    # 0: one process per CPU on PostgreSQL, one on the embedded SQLite database.
    processes: int = Field(0, ge=0, le=64)
    api_key_cache_size: int = Field(10_000, ge=100, le=10_000_000)
    # Scenarios (GetScenario) and current configs (GetConfig) each process answers from
    # memory, each up to this many (PostgreSQL only); 0 turns it off.
    read_cache_entries: int = Field(4_096, ge=0, le=1_000_000)
    # json for log pipelines (the container image's default), text for a terminal.
    log_format: Annotated[Literal["json", "text"], BeforeValidator(_lower)] = "text"
    # Prometheus /metrics; 0 turns the endpoint off. Local by default: it is not authenticated.
    metrics_port: int = Field(9464, ge=0, le=65535)
    metrics_host: _Text = "127.0.0.1"
    # TLS on the gRPC port: a PEM certificate chain and its key; with a client CA, callers
    # must present a certificate it signed (mutual TLS).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    # OpenTelemetry traces: "console" prints spans; "otlp" (also implied by the standard
    # OTEL_EXPORTER_OTLP_ENDPOINT variable) exports them as the OTEL_* variables say.
    tracing: Annotated[Literal["off", "console", "otlp"], BeforeValidator(_lower)] = "off"
    # WatchEvents streams per process; each holds an RPC thread while open. 0: half of
    # SIMCONFIG_WORKER_THREADS (at least one), so other calls always keep threads.
    watch_max_streams: int = Field(0, ge=0, le=1023)
    # An idle stream gets a keepalive message this often (proxies drop silent streams).
    watch_keepalive_seconds: float = Field(15.0, ge=0.05, le=3600)
    # How often a stream looks for new events when no change feed wakes it (SQLite).
    watch_poll_seconds: float = Field(0.25, ge=0.01, le=60)
    # Fair sharing, per process: RPC threads no single tenant may occupy, so health checks
    # and other tenants always find one free; a tenant's calls queued or running at once; its
    # request rate (token bucket, 0 = no limit) and burst.
    rpc_threads_reserved: int = Field(1, ge=0, le=1023)
    tenant_max_calls: int = Field(16, ge=1, le=100_000)
    tenant_requests_per_second: float = Field(500.0, ge=0, le=1_000_000)
    tenant_request_burst: int = Field(1000, ge=1, le=10_000_000)
    # Signs page tokens; unset: a random one generated by the first server and kept in the
    # database, so every process and replica signs with the same key.
    page_token_secret: SecretStr | None = Field(None, min_length=16)
    # Webhook URLs may point at loopback, link-local and private addresses (tests, closed
    # networks); off, the server refuses them so tenants cannot reach what only it can.
    webhook_allow_private: bool = False
    # Delivery threads per process; every replica drains the one outbox table.
    webhook_workers: int = Field(2, ge=0, le=64)
    webhook_timeout_seconds: float = Field(10.0, ge=0.1, le=300)
    webhook_max_response_bytes: int = Field(64 * 1024, ge=0, le=16 * 1024 * 1024)
    # Retries back off exponentially from the base to the cap, with jitter, for the window.
    webhook_retry_base_seconds: float = Field(5.0, ge=0.01, le=3600)
    webhook_retry_max_seconds: float = Field(3600.0, ge=0.01, le=86400)
    webhook_retry_window_seconds: float = Field(86400.0, ge=0.1, le=30 * 86400)
    # How long a claimed delivery is leased; a dead worker's delivery is retried after it.
    webhook_lease_seconds: float = Field(60.0, ge=1, le=3600)
    # How often idle workers look for due deliveries; on PostgreSQL a NOTIFY wakes them at
    # once and this is only the safety net.
    webhook_poll_seconds: float = Field(1.0, ge=0.01, le=60)
    # Delivered and finally failed deliveries are kept this long in the delivery log.
    webhook_delivery_retention_days: int = Field(7, ge=1, le=3650)

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: Any) -> str | None:
        if value is None:
            return None
        value = str(value).strip()
        if not value:
            return None
        if not (value.startswith("postgresql+psycopg://") or value.startswith("sqlite:///")):
            raise ValueError("must start with postgresql+psycopg:// or sqlite:///")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("must not be empty")
            return value.strip()
        return value

    @model_validator(mode="after")
    def _verify(self) -> Settings:
        """Rules that span several settings."""
        if self.architect_engine == "remote" and not self.architect_address:
            raise ValueError(
                "SIMCONFIG_ARCHITECT_ADDRESS must be set when SIMCONFIG_ARCHITECT_ENGINE=remote"
            )
        if not self.host:
            raise ValueError("SIMCONFIG_HOST must not be empty")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("SIMCONFIG_TLS_CERT and SIMCONFIG_TLS_KEY must be set together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError(
                "SIMCONFIG_TLS_CLIENT_CA needs SIMCONFIG_TLS_CERT and SIMCONFIG_TLS_KEY"
            )
        if self.watch_max_streams >= self.worker_threads:
            raise ValueError(
                "SIMCONFIG_WATCH_MAX_STREAMS must be below SIMCONFIG_WORKER_THREADS: each "
                "stream holds a thread, and other calls need at least one"
            )
        return self

    @model_validator(mode="after")
    def _tls_files(self) -> Settings:
        """Loads the TLS files once, so a wrong or mismatched one stops start-up by name."""
        if self.tls_cert is not None and self.tls_key is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                context.load_cert_chain(self.tls_cert, self.tls_key)
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    "SIMCONFIG_TLS_CERT and SIMCONFIG_TLS_KEY must be a PEM certificate chain "
                    f"and its private key ({exc.__class__.__name__}: {exc.strerror or exc})"
                ) from None
        if self.tls_client_ca is not None:
            try:
                ssl.create_default_context(cafile=str(self.tls_client_ca))
            except (ssl.SSLError, OSError) as exc:
                raise ValueError(
                    f"SIMCONFIG_TLS_CLIENT_CA must hold PEM CA certificates ({exc})"
                ) from None
        return self

    @field_validator("tls_cert", "tls_key", "tls_client_ca", mode="before")
    @classmethod
    def _pem_file(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if value is not None and not Path(str(value).strip()).is_file():
            raise ValueError("must name a readable PEM file")
        return value.strip() if isinstance(value, str) else value

    def tracing_mode(self, environ: Mapping[str, str] | None = None) -> str | None:
        """``"console"``, ``"otlp"`` or None (tracing off).

        OTLP is also on when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set in
        ``environ`` (default: the process environment), as OpenTelemetry's own tools do.
        """
        environ = os.environ if environ is None else environ
        if self.tracing == "console":
            return "console"
        if self.tracing == "otlp" or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
            return "otlp"
        return None

    @property
    def uses_tls(self) -> bool:
        """True when the gRPC port serves TLS (certificate and key are set)."""
        return self.tls_cert is not None

    @property
    def watch_stream_limit(self) -> int:
        """How many WatchEvents streams one process holds at most."""
        return self.watch_max_streams or max(1, self.worker_threads // 2)

    @property
    def uses_embedded_database(self) -> bool:
        """True when no database URL is configured and the SQLite default is used."""
        return self.database_url is None

    @property
    def process_count(self) -> int:
        """How many server processes ``serve`` runs on the one port."""
        if self.processes:
            return self.processes
        return 1 if self.uses_embedded_database else max(1, os.cpu_count() or 1)

    @property
    def address(self) -> str:
        """The ``host:port`` the server binds to."""
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Reads and validates the settings; raises :class:`SettingsError` naming the variable.

        ``environ`` (default: the process environment) is read alone: nothing else leaks in.
        """
        try:
            if environ is None:
                return cls()
            values = {
                name: environ[PREFIX + name.upper()]
                for name in cls.model_fields
                if PREFIX + name.upper() in environ
            }
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and validated."""
        return type(self).model_validate(self.model_dump() | changes)


def _describe(exc: ValidationError) -> str:
    """One line per problem, each naming the variable and the value it had."""
    lines = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        message = error["msg"].removeprefix("Value error, ")
        if not location:  # a rule across settings: the message names its variables
            lines.append(message)
            continue
        variable = PREFIX + location[0].upper()
        given = error.get("input")
        if location[0] == "database_url" and isinstance(given, str):
            given = given.split(":", 1)[0] + ":..."  # a URL may carry a password
        if location[0] == "page_token_secret":
            given = "..."  # never log a secret, even a bad one
        lines.append(f"{variable}: {message[:1].lower()}{message[1:]} (got {given!r})")
    return "; ".join(lines)
