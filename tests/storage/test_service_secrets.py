"""Contract tests of ServiceSecretRepository: named secrets every server shares."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage import AlreadyExists

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def test_a_secret_is_stored_once_and_the_first_one_stays(clean_database):
    db = clean_database
    assert db.run(lambda uow: uow.secrets.get("page_token")) is None

    db.run(lambda uow: uow.secrets.add("page_token", "first", T0))
    with pytest.raises(AlreadyExists) as taken:
        db.run(lambda uow: uow.secrets.add("page_token", "second", T0))
    assert (taken.value.entity, taken.value.field, taken.value.value) == (
        "service_secret",
        "name",
        "page_token",
    )

    assert db.run(lambda uow: uow.secrets.get("page_token")) == "first"
