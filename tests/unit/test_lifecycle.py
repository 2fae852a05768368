"""The status machine: every legal transition, and illegal ones named by their current status."""

from __future__ import annotations

import itertools

import pytest
from simulation.v1 import simulation_pb2

from service.domain import errors, lifecycle

LEGAL = {
    ("PENDING", "GENERATING_CONFIG"),
    ("GENERATING_CONFIG", "COMPLETED_CONFIG"),
    ("COMPLETED_CONFIG", "RUNNING"),
    ("RUNNING", "COMPLETED"),
    ("PENDING", "FAILED"),
    ("GENERATING_CONFIG", "FAILED"),
    ("COMPLETED_CONFIG", "FAILED"),
    ("RUNNING", "FAILED"),
    # Config edits and rollbacks.
    ("COMPLETED_CONFIG", "COMPLETED_CONFIG"),
    ("COMPLETED", "COMPLETED_CONFIG"),
    ("FAILED", "COMPLETED_CONFIG"),
    # Re-running the architect.
    ("PENDING", "PENDING"),
    ("COMPLETED_CONFIG", "PENDING"),
    ("COMPLETED", "PENDING"),
    ("FAILED", "PENDING"),
}


def test_statuses_are_the_proto_status_names():
    names = set(simulation_pb2.Simulation.Status.keys()) - {"STATUS_UNSPECIFIED"}
    assert set(lifecycle.STATUSES) == names


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_transitions_pass(current, target):
    lifecycle.check_transition(current, target, simulation_id="s1")
    assert lifecycle.is_legal(current, target)


ILLEGAL = sorted(set(itertools.product(lifecycle.STATUSES, repeat=2)) - LEGAL)


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_transitions_are_failed_preconditions_naming_the_current_status(current, target):
    with pytest.raises(errors.FailedPrecondition) as raised:
        lifecycle.check_transition(current, target, simulation_id="s1")
    error = raised.value
    assert error.reason == "ILLEGAL_TRANSITION" and current in error.message
    assert error.metadata == {"status": current}
    assert [(v.type, v.subject, v.description) for v in error.violations] == [
        ("STATUS", "simulations/s1", current)
    ]


def test_a_completed_run_cannot_fail_afterwards():
    assert not lifecycle.is_legal("COMPLETED", "FAILED")
    assert not lifecycle.is_legal("FAILED", "FAILED")


@pytest.mark.parametrize("status", lifecycle.STATUSES)
def test_config_edits_are_allowed_only_after_generation_and_outside_runs(status):
    editable = status in {"COMPLETED_CONFIG", "COMPLETED", "FAILED"}
    assert lifecycle.can_edit_config(status) is editable
    if editable:
        assert lifecycle.check_config_edit(status, simulation_id="s1") is None
    else:
        with pytest.raises(errors.FailedPrecondition, match=status) as raised:
            lifecycle.check_config_edit(status, simulation_id="s1")
        error = raised.value
        assert "COMPLETED, COMPLETED_CONFIG, FAILED" in error.message
        assert (error.reason, error.metadata) == ("ILLEGAL_TRANSITION", {"status": status})
        assert [(v.type, v.subject, v.description) for v in error.violations] == [
            ("STATUS", "simulations/s1", status)
        ]


@pytest.mark.parametrize("status", lifecycle.STATUSES)
def test_the_architect_can_be_queued_unless_it_or_a_run_is_working(status):
    assert lifecycle.can_queue_architect(status) is (status not in {"GENERATING_CONFIG", "RUNNING"})


BUSY = {"PENDING", "GENERATING_CONFIG", "RUNNING"}


@pytest.mark.parametrize("status", sorted(BUSY))
def test_a_busy_simulation_cannot_be_deleted(status):
    with pytest.raises(errors.FailedPrecondition) as raised:
        lifecycle.check_deletable(status, simulation_id="s1")
    error = raised.value
    assert error.reason == "ILLEGAL_TRANSITION" and status in error.message
    assert error.metadata == {"status": status}
    assert [(v.type, v.subject, v.description) for v in error.violations] == [
        ("STATUS", "simulations/s1", status)
    ]


@pytest.mark.parametrize("status", sorted(set(lifecycle.STATUSES) - BUSY))
def test_an_idle_simulation_can_be_deleted(status):
    # check_deletable answers by raising or not; returning is the "yes".
    assert lifecycle.check_deletable(status, simulation_id="s1") is None


def test_a_status_the_machine_does_not_know_can_move_nowhere():
    assert lifecycle.allowed_targets("ARCHIVED") == frozenset()
    assert not lifecycle.is_legal("ARCHIVED", "PENDING")
