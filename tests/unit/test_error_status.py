"""The status mapping keeps every error small enough for a default client to receive."""

from __future__ import annotations

from google.rpc import error_details_pb2

from service.api.error_status import (
    MAX_BAD_REQUEST_BYTES,
    MAX_FIELD_VIOLATIONS,
    bad_request_for,
    status_for,
)
from service.domain.errors import InvalidArgument, Violation


def test_keeps_every_violation_when_there_are_few():
    violations = [Violation(f"agents[{i}].id", "is required") for i in range(3)]
    bad_request = bad_request_for(violations)
    assert [v.field for v in bad_request.field_violations] == [v.field for v in violations]


def test_keeps_the_first_100_violations_and_counts_the_rest():
    violations = [Violation(f"f{i}", "bad") for i in range(1000)]
    bad_request = bad_request_for(violations)
    shown = bad_request.field_violations
    assert len(shown) == MAX_FIELD_VIOLATIONS + 1
    assert [v.field for v in shown[:3]] == ["f0", "f1", "f2"]
    assert shown[-1].field == ""
    assert shown[-1].description.startswith("900 more violations not shown")


def test_stops_at_the_byte_budget_before_the_count_limit():
    violations = [Violation(f"agents[{i}].persona", "x" * 250) for i in range(100)]
    bad_request = bad_request_for(violations)
    assert bad_request.ByteSize() < MAX_BAD_REQUEST_BYTES + 100
    assert len(bad_request.field_violations) < 20
    assert "more violations not shown" in bad_request.field_violations[-1].description


def test_shortens_huge_paths_descriptions_and_messages():
    error = InvalidArgument([Violation("labels['" + "k" * 100_000 + "']", "d" * 100_000)])
    status = status_for(error)
    assert status.ByteSize() < 2_000
    bad_request = error_details_pb2.BadRequest()
    assert status.details[1].Unpack(bad_request)
    assert bad_request.field_violations[0].field.endswith("…")
    assert bad_request.field_violations[0].description.endswith("…")


def test_a_commit_with_an_unknown_outcome_has_its_own_reason_and_says_how_to_retry():
    import storage

    status = status_for(storage.CommitOutcomeUnknown("lost during COMMIT"))
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "COMMIT_OUTCOME_UNKNOWN"
    assert status.code == 14  # UNAVAILABLE: retrying is the right move
    assert "same request_id" in status.message


def test_a_transaction_past_its_deadline_is_deadline_exceeded():
    import storage

    status = status_for(storage.DeadlineExceeded("late"))
    assert status.code == 4  # DEADLINE_EXCEEDED
    assert "nothing was applied" in status.message
