"""Periodic background work owned by a server: health probing and purging."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PeriodicTask:
    """Runs ``action`` every ``interval`` seconds on a daemon thread until stopped.

    A failing run is logged and the task carries on: background upkeep must
    never take the server down.
    """

    def __init__(self, name: str, interval: float, action: Callable[[], object]):
        self.name = name
        self._interval = interval
        self._action = action
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        """Starts the thread; the first run happens at once."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Asks the thread to stop and waits for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._action()
            except Exception:  # noqa: BLE001 - keep the loop alive, log the cause
                log.exception("background task %s failed", self.name)
            self._stop.wait(self._interval)
