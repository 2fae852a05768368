"""Change notifications from PostgreSQL (``LISTEN``/``NOTIFY``) on a connection of their own.

Triggers created by the migrations ``NOTIFY`` a channel when a row changes (e.g. an API key is
revoked); a :class:`NotificationListener` in every server process hears it within milliseconds
and calls back. The listener cannot know what it missed while its connection was down, so it
reports that with ``on_sync(False)`` and, once listening again, ``on_sync(True)``: subscribers
then treat everything they cached as stale.

SQLite has no notifications; there :meth:`storage.Database.listener` returns ``None`` and
callers fall back to short expiry times.
"""

from __future__ import annotations

import logging
import select
import selectors
import socket
import threading
from collections.abc import Callable, Iterator, Mapping

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

# Channels the migrations' triggers notify; the payload names the changed row.
API_KEYS_CHANNEL = "simconfig_api_keys"
# Payload: the tenant id of a committed simulation event (migration 0010).
EVENTS_CHANNEL = "simconfig_events"
# Payload: the id of a scenario row updated or deleted (migration 0017).
SCENARIOS_CHANNEL = "simconfig_scenarios"
# Payload: the id of a simulation row updated or deleted (migration 0017).
SIMULATIONS_CHANNEL = "simconfig_simulations"
# No payload: a webhook delivery became due (migration 0015).
WEBHOOK_DELIVERIES_CHANNEL = "simconfig_webhook_deliveries"

_RECONNECT_MIN_S = 0.1
_RECONNECT_MAX_S = 2.0
# How often the loop wakes without a notification, as a safety net: a stop request wakes it
# at once through a socket pair of its own.
_POLL_S = 0.5


class NotificationListener:
    """Calls ``handlers[channel](payload)`` for each notification on the listened channels.

    Runs on a daemon thread with its own autocommit connection, reconnecting with a capped
    backoff when it is lost. ``on_sync(True)`` is called each time listening (re)starts and
    ``on_sync(False)`` each time the connection is lost: between the two, notifications may be
    missed. Callbacks run on the listener thread and must be quick. ``connect_timeout`` is in
    whole seconds, as libpq takes it.
    """

    def __init__(
        self,
        conninfo: str,
        handlers: Mapping[str, Callable[[str], None]],
        on_sync: Callable[[bool], None] = lambda _synced: None,
        *,
        connect_timeout: int = 5,
    ) -> None:
        self._conninfo = conninfo
        self._handlers = dict(handlers)
        self._on_sync = on_sync
        self._connect_timeout = connect_timeout
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="db-notifications", daemon=True)
        self._connection: psycopg.Connection | None = None
        # The listening connection's socket while it listens, and whether notifications read
        # from it are being handed out right now: see maybe_behind().
        self._fd: int | None = None
        self._dispatching = False
        # Written to by stop(), so the wait for a notification ends then, not at the next poll.
        self._stop_reader, self._stop_writer = socket.socketpair()

    def start(self, wait: float = 0.0) -> bool:
        """Start listening on the background thread; True once it listens.

        ``wait`` seconds at most are spent waiting for the first ``LISTEN`` to succeed, so a
        server can start with its caches' change feed already delivering.
        """
        self._thread.start()
        return self._listening.wait(wait)

    def maybe_behind(self) -> bool:
        """True unless every notification that reached this process was handed out.

        False means the socket holds nothing unread and no notification is being handed out
        at this moment. PostgreSQL sends a notification to listeners as the notifying
        transaction commits, before its client hears of the commit, so a reader that checks
        this first sees the changes every caller could already know of. True also while not
        listening. Costs one non-blocking poll of the socket, no round trip.
        """
        fd = self._fd
        if fd is None or self._dispatching:
            return True
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0)) or self._dispatching or self._fd != fd

    def stop(self, timeout: float = 2.0) -> None:
        """Stop listening and close the connection."""
        self._stop.set()
        try:
            self._stop_writer.send(b"\0")
        except OSError:  # already stopped: the socket pair is closed
            pass
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        try:
            self._listen()
        finally:
            self._stop_reader.close()
            self._stop_writer.close()

    def _listen(self) -> None:
        delay = _RECONNECT_MIN_S
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=self._connect_timeout
                ) as connection:
                    for channel in self._handlers:
                        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    delay = _RECONNECT_MIN_S
                    self._on_sync(True)
                    try:
                        self._receive(connection)
                    finally:
                        self._on_sync(False)
            except psycopg.Error as exc:
                if self._stop.is_set():
                    return
                logger.warning("database notifications interrupted (%s); reconnecting", exc)
                self._stop.wait(delay)
                delay = min(delay * 2, _RECONNECT_MAX_S)

    def _receive(self, connection: psycopg.Connection) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(connection.fileno(), selectors.EVENT_READ)
            selector.register(self._stop_reader, selectors.EVENT_READ)
            self._fd = connection.fileno()
            try:
                while not self._stop.is_set():
                    # What has arrived (or was read along with an earlier reply), without
                    # waiting; then wait for more, or for a stop. Marked as being handed out
                    # before the socket is read, so maybe_behind() never sees a gap.
                    self._dispatching = True
                    try:
                        self._dispatch(connection.notifies(timeout=0))
                    finally:
                        self._dispatching = False
                    if not self._listening.is_set():
                        # Listening, and caught up with what arrived before: from here on
                        # maybe_behind() answers from the socket.
                        self._listening.set()
                    selector.select(_POLL_S)
            finally:
                self._fd = None

    def _dispatch(self, notifies: Iterator[psycopg.Notify]) -> None:
        for notify in notifies:
            handler = self._handlers.get(notify.channel)
            if handler is not None:
                try:
                    handler(notify.payload)
                except Exception:  # noqa: BLE001 - a bad callback must not stop the feed
                    logger.exception("notification handler for %s failed", notify.channel)
