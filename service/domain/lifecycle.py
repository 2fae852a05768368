"""The simulation status machine: the one place that decides which status changes are legal.

``PENDING -> GENERATING_CONFIG -> COMPLETED_CONFIG -> RUNNING -> COMPLETED``; any status that is
not final can fail; a config edit or rollback moves ``COMPLETED_CONFIG``, ``COMPLETED`` or
``FAILED`` (back) to ``COMPLETED_CONFIG``; re-running the architect moves every status but
``GENERATING_CONFIG`` and ``RUNNING`` back to ``PENDING``.

Statuses are the names of ``simulation.v1.Simulation.Status``, stored as plain strings.
"""

from __future__ import annotations

from service.domain import errors

PENDING = "PENDING"
GENERATING_CONFIG = "GENERATING_CONFIG"
COMPLETED_CONFIG = "COMPLETED_CONFIG"
RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"

STATUSES = (PENDING, GENERATING_CONFIG, COMPLETED_CONFIG, RUNNING, COMPLETED, FAILED)

# Statuses whose config may be edited or rolled back; the write lands in COMPLETED_CONFIG.
CONFIG_EDITABLE = frozenset({COMPLETED_CONFIG, COMPLETED, FAILED})
# Statuses from which the architect may be (re-)queued; the simulation goes to PENDING.
ARCHITECT_QUEUEABLE = frozenset({PENDING, COMPLETED_CONFIG, COMPLETED, FAILED})
# Work is in progress: the simulation must not be deleted under it.
# Someone is working on it: an architect job is queued or running, or a simulator runs it.
BUSY = frozenset({PENDING, GENERATING_CONFIG, RUNNING})

_FORWARD = {
    PENDING: {GENERATING_CONFIG},
    GENERATING_CONFIG: {COMPLETED_CONFIG},
    COMPLETED_CONFIG: {RUNNING},
    RUNNING: {COMPLETED},
    COMPLETED: set(),
    FAILED: set(),
}
# COMPLETED is final for a run: a finished run cannot fail afterwards (FailRun's contract).
_CAN_FAIL = frozenset({PENDING, GENERATING_CONFIG, COMPLETED_CONFIG, RUNNING})


def allowed_targets(current: str) -> frozenset[str]:
    """Every status ``current`` may move to (config edits included)."""
    targets = set(_FORWARD.get(current, ()))
    if current in _CAN_FAIL:
        targets.add(FAILED)
    if current in CONFIG_EDITABLE:
        targets.add(COMPLETED_CONFIG)
    if current in ARCHITECT_QUEUEABLE:
        targets.add(PENDING)
    return frozenset(targets)


def is_legal(current: str, target: str) -> bool:
    """True when ``current -> target`` is a legal transition."""
    return target in allowed_targets(current)


def _illegal(message: str, current: str, simulation_id: str) -> errors.FailedPrecondition:
    return errors.FailedPrecondition(
        message,
        [errors.PreconditionViolation("STATUS", f"simulations/{simulation_id}", current)],
        reason="ILLEGAL_TRANSITION",
        metadata={"status": current},
    )


def check_transition(current: str, target: str, *, simulation_id: str) -> None:
    """Raises ``FailedPrecondition`` naming ``current`` when ``current -> target`` is illegal."""
    if not is_legal(current, target):
        raise _illegal(
            f"simulation {simulation_id!r} is {current}; it cannot move to {target}",
            current,
            simulation_id,
        )


def can_edit_config(status: str) -> bool:
    """True when the config may be edited or rolled back in ``status``."""
    return status in CONFIG_EDITABLE


def check_config_edit(current: str, *, simulation_id: str) -> None:
    """Raises ``FailedPrecondition`` naming ``current`` when the config may not change now."""
    if not can_edit_config(current):
        raise _illegal(
            f"simulation {simulation_id!r} is {current}; its config can only change in "
            f"{', '.join(sorted(CONFIG_EDITABLE))}",
            current,
            simulation_id,
        )


def can_queue_architect(status: str) -> bool:
    """True when the architect may be (re-)run in ``status`` (the simulation goes to PENDING)."""
    return status in ARCHITECT_QUEUEABLE


def check_deletable(current: str, *, simulation_id: str) -> None:
    """Raises ``FailedPrecondition`` while the architect or a run is working on the simulation."""
    if current in BUSY:
        raise _illegal(
            f"simulation {simulation_id!r} is {current}; wait until it finishes before deleting",
            current,
            simulation_id,
        )
