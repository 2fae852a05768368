"""Several server processes on one port, as gRPC's multiprocessing example does it.

Python runs one thread of bytecode at a time, so one process uses about one core. ``serve``
with ``SIMCONFIG_PROCESSES`` > 1 forks that many children *before any gRPC object exists*;
each builds its own server and database pool and binds the same port with
``grpc.so_reuseport``, and the kernel spreads incoming connections across them.

The parent only supervises: it first makes sure nobody else listens on the port (a taken port
still fails loudly, before any child starts) and holds it for its children; it restarts a
child that dies; on SIGTERM or SIGINT it passes the signal on and waits for every child to
drain within the grace period. Work that must not multiply is coordinated in the database:
architect jobs are claimed once, and periodic tasks claim their runs.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("simconfig")

# How long a starting child may take to report that it serves.
STARTUP_TIMEOUT_S = 60.0
# A child that dies sooner than this after starting is restarted after a growing pause, so a
# child that cannot start does not spin.
_HEALTHY_UPTIME_S = 10.0
_MAX_RESTART_DELAY_S = 30.0
# Time children get beyond the grace period to exit before they are killed.
_EXIT_MARGIN_S = 5.0
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def reserve_port(host: str, port: int) -> tuple[socket.socket, int]:
    """Checks that no one listens on ``host:port`` and holds it for this server's processes.

    Returns the held socket (bound, not listening: it takes no connections) and the port, which
    is a free one when ``port`` is 0. Raises OSError naming the address when it is taken.
    """
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    # Without SO_REUSEPORT a bind fails while any other socket listens on the port.
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        port = probe.getsockname()[1]
    held = socket.socket(family, socket.SOCK_STREAM)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        held.bind((*address[:1], port, *address[2:]))
    except OSError as exc:
        held.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return held, port


@dataclass
class _Child:
    index: int
    pid: int
    started: float
    ready_pipe: int | None = None
    failures: int = 0


class Supervisor:
    """Runs ``count`` children of ``child_main`` and keeps them running until told to stop.

    ``child_main(index, report_ready)`` runs in the forked child: it must build the server,
    call ``report_ready()`` once it serves, serve until SIGTERM/SIGINT, and return the exit
    code. Nothing gRPC may exist in the parent when children are forked.
    """

    def __init__(
        self,
        count: int,
        child_main: Callable[[int, Callable[[], None]], int],
        *,
        grace_period: float,
        held_port: socket.socket | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self._count = count
        # Told the pid of every child that exited (its live metrics are dropped).
        self._on_exit = on_exit
        self._child_main = child_main
        self._grace_period = grace_period
        self._held_port = held_port
        self._children: dict[int, _Child] = {}
        # Children to start again: (when, index, failures so far).
        self._restarts: list[tuple[float, int, int]] = []
        self._received: list[int] = []

    def run(self, on_ready: Callable[[], None] = lambda: None) -> int:
        """Starts the children, waits until all serve, then supervises; returns the exit code."""
        previous = {
            sig: signal.signal(sig, self._record) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for index in range(self._count):
                self._start(index)
            if not self._await_ready():
                self._stop_children()
                return 1
            on_ready()
            while not self._received:
                self._reap()
                self._start_due()
                self._note_ready(timeout=0.2)
            log.info(
                "received %s, stopping %d server processes (grace %.1fs)",
                signal.Signals(self._received[0]).name,
                len(self._children),
                self._grace_period,
            )
            self._stop_children()
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _record(self, signum, _frame) -> None:
        # Only record: taking a lock in a signal handler (logging) can deadlock.
        self._received.append(signum)

    def _start(self, index: int, failures: int = 0) -> None:
        read_end, write_end = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child
            _die_with_parent(parent)
            os.close(read_end)
            for other in self._children.values():
                if other.ready_pipe is not None:
                    os.close(other.ready_pipe)
            code = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                if self._held_port is not None:
                    self._held_port.close()
                code = self._child_main(index, lambda: _report_ready(write_end))
            except BaseException:  # noqa: BLE001 - a child must never return into the parent's code
                log.exception("server process %d failed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(write_end)
        self._children[pid] = _Child(index, pid, time.monotonic(), read_end, failures)

    def _await_ready(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        waiting = {
            child.ready_pipe: child
            for child in self._children.values()
            if child.ready_pipe is not None
        }
        while waiting:
            if self._received:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.error("server processes did not start within %.0fs", STARTUP_TIMEOUT_S)
                return False
            readable, _, _ = select.select(list(waiting), [], [], min(remaining, 0.2))
            for fd in readable:
                child = waiting.pop(fd)
                ready = os.read(fd, 1) == b"R"
                os.close(fd)
                child.ready_pipe = None
                if not ready:
                    log.error("server process %d exited before serving", child.index)
                    return False
        return True

    def _reap(self) -> None:
        """Notes every child that died and schedules its restart."""
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self._children.pop(pid, None)
            if child is None:
                continue
            self._exited(pid)
            if child.ready_pipe is not None:
                os.close(child.ready_pipe)
            uptime = time.monotonic() - child.started
            failures = 0 if uptime >= _HEALTHY_UPTIME_S else child.failures + 1
            delay = min(_MAX_RESTART_DELAY_S, 0.5 * (2**failures - 1))
            log.warning(
                "server process %d (pid %d) %s after %.1fs; restarting it%s",
                child.index,
                pid,
                _describe(status),
                uptime,
                f" in {delay:.1f}s" if delay else "",
            )
            self._restarts.append((time.monotonic() + delay, child.index, failures))

    def _note_ready(self, timeout: float) -> None:
        """Waits up to ``timeout`` for restarted children to report that they serve again."""
        pipes = {c.ready_pipe: c for c in self._children.values() if c.ready_pipe is not None}
        if not pipes:
            time.sleep(timeout)
            return
        readable, _, _ = select.select(list(pipes), [], [], timeout)
        for fd in readable:
            child = pipes[fd]
            if os.read(fd, 1) == b"R":
                log.info("server process %d (pid %d) serves again", child.index, child.pid)
            os.close(fd)
            child.ready_pipe = None

    def _start_due(self) -> None:
        now = time.monotonic()
        due = [entry for entry in self._restarts if entry[0] <= now]
        self._restarts = [entry for entry in self._restarts if entry[0] > now]
        for _, index, failures in due:
            self._start(index, failures)

    def _stop_children(self) -> None:
        for pid in list(self._children):
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace_period + _EXIT_MARGIN_S
        while self._children and time.monotonic() < deadline:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.05)
                continue
            child = self._children.pop(pid, None)
            self._exited(pid)
            if child is not None and status != 0:
                log.warning("server process %d %s while stopping", child.index, _describe(status))
        for pid, child in list(self._children.items()):
            log.error("server process %d did not stop in time; killing it", child.index)
            _signal(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self._exited(pid)
        self._children.clear()

    def _exited(self, pid: int) -> None:
        if self._on_exit is not None:
            self._on_exit(pid)


def _die_with_parent(parent: int) -> None:
    """Has the kernel kill this child if the parent dies, however it dies (Linux).

    A supervisor killed with SIGKILL must not leave its children serving on as orphans:
    the server as a whole dies, as a single process would, and its work is picked up by
    another replica.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _report_ready(fd: int) -> None:
    os.write(fd, b"R")
    os.close(fd)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"
