"""Property test: a contains-filter is a literal, case-insensitive substring match.

LIKE wildcards and escape characters in the search text must match themselves, on both engines.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import Comparison, ScenarioQuery

NAMES = ["a%b", "a_b", "axb", "A/B", "a\\b", "100%", "x_y_z", "plain", "ABC", "%_/\\"]


@settings(
    max_examples=40,
    deadline=None,
    # The fixtures' rows are the same for every example, so sharing them is intended.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(needle=st.text(alphabet="abxAB%_/\\0 ", min_size=1, max_size=3))
def test_display_name_contains_matches_exactly_the_names_holding_the_text(
    database, make, tenant_id, needle
):
    if not hasattr(make, "seeded"):
        for name in NAMES:
            make.scenario(tenant_id, display_name=name)
        make.seeded = True

    query = ScenarioQuery(limit=100, filter=Comparison("display_name", "contains", needle))
    found = database.run(lambda uow: uow.scenarios.list(tenant_id, query))

    expected = sorted(name for name in NAMES if needle.lower() in name.lower())
    assert sorted(s.display_name for s in found) == expected
