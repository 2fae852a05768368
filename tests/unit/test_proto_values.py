"""Response timestamps: the fast conversion gives what protobuf's own conversion gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf import timestamp_pb2
from hypothesis import given
from hypothesis import strategies as st

from service.api.proto_values import timestamp

# Any offset a stored or computed datetime may carry, east or west of UTC.
offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def _reference(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets)
)
def test_timestamp_matches_protobufs_conversion(value):
    assert timestamp(value) == _reference(value)


def test_timestamp_before_the_epoch_keeps_positive_nanos():
    # 1969-12-31T23:59:59.5Z: one second and a half before would be wrong by a second.
    value = datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    assert timestamp(value) == timestamp_pb2.Timestamp(seconds=-1, nanos=500_000_000)


def test_timestamp_of_none_is_none():
    assert timestamp(None) is None
