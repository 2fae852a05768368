"""The benchmark's own database: never the one a URL points at, always a throwaway.

On PostgreSQL the URL names the server (and a database to connect to while creating and
dropping); the benchmark creates ``simconfig_bench_<random>`` beside it, because it loads a
million rows and must not leave them in anyone's data. Otherwise it is the embedded SQLite
file in a temporary directory, as ``simconfig serve`` would make with no settings.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

import storage


@dataclass(frozen=True)
class BenchDatabase:
    """Where the server under test keeps its data."""

    data_dir: Path
    # None: the embedded SQLite default in data_dir, exactly as the server picks it.
    server_url: str | None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the database, for the bulk loader."""
        return self.server_url or storage.sqlite_url_for(self.data_dir)

    @property
    def engine_name(self) -> str:
        return "PostgreSQL" if self.server_url else "SQLite"


def is_postgres(url: str | None) -> bool:
    return bool(url) and make_url(url).get_backend_name() == "postgresql"


@contextmanager
def bench_database(
    url: str | None, data_dir: Path, *, keep: bool = False
) -> Iterator[BenchDatabase]:
    """Yields a fresh database for one benchmark run, dropped afterwards unless ``keep``."""
    if not is_postgres(url):
        yield BenchDatabase(data_dir=data_dir, server_url=None)
        return
    name = f"simconfig_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield BenchDatabase(
            data_dir=data_dir,
            server_url=make_url(url).set(database=name).render_as_string(hide_password=False),
        )
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with admin.connect() as connection:
                # FORCE ends the connections a killed server may have left behind.
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def server_version(url: str) -> str:
    """The database engine and version, for the machine description."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                return "PostgreSQL " + connection.execute(text("SHOW server_version")).scalar()
            return "SQLite " + connection.execute(text("SELECT sqlite_version()")).scalar()
    finally:
        engine.dispose()
