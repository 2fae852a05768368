"""A PostgreSQL cluster of a test's own, to restart and freeze without touching the shared one.

Fault tests stop, restart or SIGSTOP their database; the server on 5432 serves every other
test and must never be disturbed, so each fault test runs ``initdb`` into a temporary
directory and starts a postmaster on a free port. PostgreSQL refuses to run as root: as root,
the binaries run as the ``postgres`` user.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]


def _binary(name: str) -> str | None:
    for directory in BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ScratchCluster:
    """One throwaway cluster: ``start``, ``stop``, ``freeze``/``thaw`` (SIGSTOP/SIGCONT)."""

    def __init__(self) -> None:
        initdb, self._pg_ctl = _binary("initdb"), _binary("pg_ctl")
        if not initdb or not self._pg_ctl:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.directory = Path(tempfile.mkdtemp(prefix="simconfig-scratch-pg-"))
        self.port = _free_port()
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self._data = self.directory / "data"
        self._run(initdb, "-D", str(self._data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the cluster's ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as_postgres, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Starts the postmaster and waits until it accepts connections."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            self._pg_ctl, "-D", str(self._data), "-l", str(self.directory / "log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stops the postmaster (``fast``: ends sessions, rolls back their transactions)."""
        self._run(self._pg_ctl, "-D", str(self._data), "-m", mode, "-w", "-t", "60", "stop")

    def _pids(self) -> list[int]:
        postmaster = int((self._data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True
        ).stdout.split()
        return [postmaster, *map(int, children)]

    def freeze(self) -> None:
        """SIGSTOPs the postmaster and every backend: connections stay open, nothing answers."""
        for pid in self._pids():
            _signal(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Resumes every process :meth:`freeze` stopped."""
        for pid in self._pids():
            _signal(pid, signal.SIGCONT)

    def destroy(self) -> None:
        """Stops the cluster (whatever its state) and deletes its files."""
        try:
            self.thaw()
        except (OSError, ValueError, FileNotFoundError):
            pass
        try:
            self._run(self._pg_ctl, "-D", str(self._data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)


def _signal(pid: int, signum: int) -> None:
    # A backend listed a moment ago may have exited since (its client disconnected).
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


@pytest.fixture
def scratch_postgres():
    """A started scratch cluster of this test's own, destroyed afterwards."""
    cluster = ScratchCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()
