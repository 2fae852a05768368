"""Shared field checks."""

from __future__ import annotations

import math

import pytest

from service.domain import errors
from service.domain.validation import check_json_values, check_labels, require_id


@pytest.mark.parametrize(
    "labels",
    [{"env": "prod\n"}, {"env\n": "prod"}, {"Env": "prod"}, {"env": "Prod"}, {"e": "x" * 64}],
)
def test_bad_labels_are_reported(labels):
    assert check_labels(labels)


def test_good_labels_pass():
    assert check_labels({"env": "prod", "team-a": "risk_1", "empty": ""}) == []


@pytest.mark.parametrize("value", ["", "x" * 101, "a\x00b", "line\nbreak"])
def test_bad_ids_are_invalid_argument(value):
    with pytest.raises(errors.InvalidArgument):
        require_id(value, "simulation_id")


def test_json_values_report_nul_and_non_finite_numbers_with_paths():
    found = check_json_values(
        {"ok": 1.5, "bad": math.nan, "nested": {"list": ["fine", "b\x00"]}, "k\x00": True},
        "results",
    )
    assert [v.field for v in found] == [
        "results.bad",
        "results.nested.list[1]",
        "results['k\\x00']",
    ]
