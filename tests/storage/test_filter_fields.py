"""Filter fields as the repositories take them: the filter tree, on SQLite and PostgreSQL.

The list language spells only part of the tree (labels take ``=``, ``!=`` and ``:``; a time
that is not set is written ``NOT``); these tests pin down the rest of what each kind of field
answers, since other callers build trees directly.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import Comparison, Filter, Negation, ScenarioQuery, Template, TemplateQuery
from tests.storage.test_templates import _template, add


@pytest.fixture
def labelled(make, tenant_id) -> str:
    """Scenarios named a to d, whose label ``k`` is "Dev-Ops", "50%_off", "dev", and unset."""
    for name, labels in (
        ("a", {"k": "Dev-Ops"}),
        ("b", {"k": "50%_off"}),
        ("c", {"k": "dev"}),
        ("d", {"other": "dev"}),
    ):
        make.scenario(tenant_id, display_name=name, labels=labels)
    return tenant_id


def _scenario_names(database, tenant_id: str, tree: Filter, show_deleted: bool = False):
    query = ScenarioQuery(limit=50, filter=tree, show_deleted=show_deleted)
    return sorted(
        s.display_name for s in database.run(lambda uow: uow.scenarios.list(tenant_id, query))
    )


def test_a_label_contains_test_is_a_literal_case_insensitive_substring_match(database, labelled):
    def names(needle: str, negated: bool = False) -> list[str]:
        tree: Filter = Comparison("labels", "contains", needle, key="k")
        return _scenario_names(database, labelled, Negation(tree) if negated else tree)

    assert names("DEV") == ["a", "c"]
    assert names("%_") == ["b"]
    # "_" and "%" are not wildcards: "0_" is not in "50%_off".
    assert names("0_") == []
    # A missing label contains nothing, so it matches the negation.
    assert names("dev", negated=True) == ["b", "d"]


def test_has_with_a_value_on_a_label_is_equality(database, labelled):
    assert _scenario_names(database, labelled, Comparison("labels", "has", "dev", key="k")) == ["c"]
    assert _scenario_names(database, labelled, Comparison("labels", "has", None, key="k")) == [
        "a",
        "b",
        "c",
    ]


def test_labels_order_by_code_point_and_a_missing_label_is_in_no_range(database, labelled):
    # Code points: "5" < "D" < "c" < "d".
    below = Comparison("labels", "<", "c", key="k")
    assert _scenario_names(database, labelled, below) == ["a", "b"]
    assert _scenario_names(database, labelled, Negation(below)) == ["c", "d"]
    at_least = Comparison("labels", ">=", "D", key="k")
    assert _scenario_names(database, labelled, at_least) == ["a", "c"]


@pytest.mark.parametrize("field", ["display_name", "description"])
def test_text_columns_order_by_code_point(database, make, tenant_id, field):
    for name in ("B", "a", "b"):
        make.scenario(tenant_id, display_name=name, description=name)
    # Code points: "B" < "a" < "b".
    assert _scenario_names(database, tenant_id, Comparison(field, ">", "a")) == ["b"]
    assert _scenario_names(database, tenant_id, Comparison(field, "<=", "a")) == ["B", "a"]


def test_a_time_that_is_not_set_is_in_no_range_and_in_every_negated_one(database, make, tenant_id):
    deleted_at = make.now - timedelta(hours=1)
    make.scenario(tenant_id, display_name="live")
    make.scenario(tenant_id, display_name="gone", delete_time=deleted_at)
    for template in (
        _template(tenant_id, make.now, display_name="live"),
        _template(tenant_id, make.now, display_name="gone", delete_time=deleted_at),
    ):
        add(database, template)

    def names(tree: Filter) -> tuple[list[str], list[str]]:
        scenarios = _scenario_names(database, tenant_id, tree, show_deleted=True)
        query = TemplateQuery(limit=50, filter=tree, show_deleted=True)
        templates: list[Template] = database.run(lambda uow: uow.templates.list(tenant_id, query))
        return scenarios, sorted(t.display_name for t in templates)

    before_now = Comparison("delete_time", "<", make.now)
    assert names(before_now) == (["gone"], ["gone"])
    assert names(Negation(before_now)) == (["live"], ["live"])
    other_time = Comparison("delete_time", "!=", make.now)
    assert names(other_time) == (["gone"], ["gone"])
    assert names(Negation(other_time)) == (["live"], ["live"])
