"""The filter tree compiled to SQL: the same answers on SQLite and PostgreSQL.

Filters are written in the list RPCs' language and parsed by the service's parser, so these
tests cover the whole way from text to rows; the tree is what the repositories receive.
"""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

from service.app.list_filters import parse_filter
from service.app.scenarios import FILTER_FIELDS as SCENARIO_FIELDS
from service.app.simulations import FILTER_FIELDS
from storage import (
    Comparison,
    Database,
    Filter,
    RetryPolicy,
    ScenarioQuery,
    SimulationQuery,
    sqlite_url_for,
)
from storage.repositories.filter_sql import compile_filter
from storage.repositories.simulations import _FILTER_FIELDS as SIMULATION_FILTER_FIELDS
from tests.storage.filter_corpus import (
    LABEL_KEYS,
    LABEL_VALUES,
    MODELS,
    ROLES,
    STATUSES,
    Corpus,
    config_document,
    store_corpus,
)

COUNT = 24


def _new_corpus() -> Corpus:
    return Corpus(
        tenant_id=str(uuid.uuid4()),
        other_tenant_id=str(uuid.uuid4()),
        scenario_id=str(uuid.uuid4()),
        simulation_ids=[f"sim-{n:02d}-{uuid.uuid4().hex[:6]}" for n in range(COUNT)],
    )


@pytest.fixture(scope="module")
def corpus(database: Database) -> Corpus:
    stored = _new_corpus()
    store_corpus(database, stored, COUNT)
    return stored


def ids(database: Database, corpus: Corpus, text: str | Filter) -> list[str]:
    """The ids of the corpus tenant's simulations matching ``text`` (or a filter tree, for what
    the language cannot spell), in id order."""
    tree = parse_filter(text, FILTER_FIELDS) if isinstance(text, str) else text
    query = SimulationQuery(limit=1000, filter=tree)
    rows = database.run(lambda uow: uow.simulations.list(corpus.tenant_id, query))
    found = sorted(row.id for row in rows)
    assert all(not found_id.startswith("other-") for found_id in found)
    return found


def expected(corpus: Corpus, predicate) -> list[str]:
    """The ids of the corpus simulations whose index satisfies ``predicate``."""
    return sorted(corpus.simulation_ids[n] for n in range(COUNT) if predicate(n))


def has_config(n: int) -> bool:
    return n % 5 != 4


def test_a_config_value_of_the_current_revision_matches(database, corpus):
    assert ids(database, corpus, 'config.model = "sim-large-1"') == expected(
        corpus, lambda n: has_config(n) and config_document(n)["model"] == "sim-large-1"
    )
    # The older revisions' model is never matched: only the current revision counts.
    assert ids(database, corpus, 'config.model = "sim-retired-0"') == []


def test_numbers_compare_as_numbers(database, corpus):
    assert ids(database, corpus, "config.max_turns >= 20") == expected(
        corpus, lambda n: has_config(n) and config_document(n)["max_turns"] >= 20
    )
    assert ids(database, corpus, "config.seed < 0") == expected(
        corpus, lambda n: has_config(n) and config_document(n).get("seed", 0) < 0
    )
    # Simulation 3 has max_turns 26 exactly: ">" leaves it out, as ">=" would not.
    assert ids(database, corpus, "config.max_turns > 26") == expected(
        corpus, lambda n: has_config(n) and config_document(n)["max_turns"] > 26
    )
    assert ids(database, corpus, "config.temperature > 0.5") == expected(
        corpus, lambda n: has_config(n) and config_document(n).get("temperature", 0) > 0.5
    )


def test_a_list_field_matches_when_some_element_does(database, corpus):
    def roles(n):
        return [a["role"] for a in config_document(n)["agents"]] if has_config(n) else []

    assert ids(database, corpus, 'config.agents.role = "buyer"') == expected(
        corpus, lambda n: "buyer" in roles(n)
    )
    assert ids(database, corpus, 'config.agents.role : "buyer"') == expected(
        corpus, lambda n: "buyer" in roles(n)
    )
    assert ids(database, corpus, 'config.agents.role > "c"') == expected(
        corpus, lambda n: any(role > "c" for role in roles(n))
    )
    assert ids(database, corpus, 'config.environment.rules : "be quick"') == expected(
        corpus,
        lambda n: (
            has_config(n)
            and "be quick" in config_document(n).get("environment", {}).get("rules", [])
        ),
    )


def test_a_value_inside_an_object_is_found_by_its_whole_path(database, corpus):
    def description(n):
        return (
            config_document(n).get("environment", {}).get("description") if has_config(n) else None
        )

    for text, holds in (
        ('config.environment.description = "weather 1"', lambda d: d == "weather 1"),
        ('config.environment.description != "weather 1"', lambda d: d != "weather 1"),
        ('config.environment.description > "weather 0"', lambda d: d > "weather 0"),
    ):
        assert ids(database, corpus, text) == expected(
            corpus, lambda n, holds=holds: description(n) is not None and holds(description(n))
        ), text


def test_a_list_inside_an_object_matches_when_some_element_does(database, corpus):
    def rules(n):
        return config_document(n).get("environment", {}).get("rules", []) if has_config(n) else []

    assert ids(database, corpus, 'config.environment.rules != "no lying"') == expected(
        corpus, lambda n: any(rule != "no lying" for rule in rules(n))
    )
    assert ids(database, corpus, 'config.environment.rules < "c"') == expected(
        corpus, lambda n: any(rule < "c" for rule in rules(n))
    )


def test_lists_inside_list_elements_match_when_some_inner_element_does(database, corpus):
    # The language has no such field yet; the filter tree already takes any path.
    def goals(n):
        agents = config_document(n)["agents"] if has_config(n) else []
        return [goal for agent in agents for goal in agent["goals"]]

    path = ("agents", "*", "goals", "*")
    assert ids(database, corpus, Comparison("config", "=", "buy low", key=path)) == expected(
        corpus, lambda n: "buy low" in goals(n)
    )
    assert ids(database, corpus, Comparison("config", "<", "s", key=path)) == expected(
        corpus, lambda n: any(goal < "s" for goal in goals(n))
    )


def test_has_on_a_list_field_matches_as_equality_does(database, corpus):
    # The parser spells ``:`` on a list as "="; "has" is what other callers of the tree send.
    for path, value in ((("agents", "*", "role"), "buyer"), (("model",), "sim-large-1")):
        assert ids(database, corpus, Comparison("config", "has", value, key=path)) == ids(
            database, corpus, Comparison("config", "=", value, key=path)
        )
        assert ids(database, corpus, Comparison("config", "has", value, key=path)) != []


def test_strings_inside_the_config_compare_as_text(database, corpus):
    # Checked against the documents themselves: the generated filters below only compare
    # the engines with each other.
    def model(n):
        return config_document(n)["model"] if has_config(n) else None

    assert ids(database, corpus, 'config.model != "sim-small-1"') == expected(
        corpus, lambda n: model(n) is not None and model(n) != "sim-small-1"
    )
    assert ids(database, corpus, 'config.model <= "sim-small-1"') == expected(
        corpus, lambda n: model(n) is not None and model(n) <= "sim-small-1"
    )
    assert ids(database, corpus, 'config.agents.role <= "broker"') == expected(
        corpus,
        lambda n: (
            has_config(n)
            and any(agent["role"] <= "broker" for agent in config_document(n)["agents"])
        ),
    )


def test_label_inequality_matches_only_the_rows_that_have_the_label(database, corpus):
    def env(n):
        return LABEL_VALUES[n % 3] if n % 2 else None

    assert ids(database, corpus, 'labels.env != "dev"') == expected(
        corpus, lambda n: env(n) is not None and env(n) != "dev"
    )
    assert ids(database, corpus, 'labels.env = "dev"') == expected(
        corpus, lambda n: env(n) == "dev"
    )


def test_not_is_the_exact_complement_even_where_a_value_is_missing(database, corpus):
    everything = sorted(corpus.simulation_ids)
    for text in ("config.seed > 0", "labels.env = dev", 'config.model = "sim-small-1"'):
        matched = ids(database, corpus, text)
        assert sorted(matched + ids(database, corpus, f"NOT ({text})")) == everything


def test_and_or_and_parentheses_combine_conditions(database, corpus):
    assert ids(database, corpus, "status = RUNNING OR status = FAILED AND labels.env : *") == (
        expected(corpus, lambda n: STATUSES[n % 5] in ("RUNNING", "FAILED") and n % 2 == 1)
    )
    assert ids(database, corpus, "(status = RUNNING AND labels.env : *) OR status = FAILED") == (
        expected(
            corpus,
            lambda n: (STATUSES[n % 5] == "RUNNING" and n % 2 == 1) or STATUSES[n % 5] == "FAILED",
        )
    )


def test_times_enums_and_scenarios(database, corpus):
    assert ids(database, corpus, 'create_time >= "2026-01-01T20:00:00Z"') == expected(
        corpus, lambda n: n >= 20
    )
    assert ids(database, corpus, 'create_time < "2026-01-01T05:00:00+01:00"') == expected(
        corpus, lambda n: n < 4
    )
    assert ids(database, corpus, "status >= RUNNING") == expected(
        corpus, lambda n: STATUSES[n % 5] in ("RUNNING", "COMPLETED", "FAILED")
    )
    assert ids(database, corpus, 'scenario_id = ""') == expected(corpus, lambda n: n % 4 != 0)
    assert ids(database, corpus, f'scenario_id != "{corpus.scenario_id}"') == expected(
        corpus, lambda n: n % 4 != 0
    )


def test_scenarios_filter_by_count_and_time(database, corpus):
    query = ScenarioQuery(
        limit=10,
        filter=parse_filter(
            'simulation_count >= 1 AND create_time <= "2026-01-01T00:00:00Z" AND display_name = '
            '"filtered"',
            SCENARIO_FIELDS,
        ),
    )
    rows = database.run(lambda uow: uow.scenarios.list(corpus.tenant_id, query))
    assert [row.id for row in rows] == [corpus.scenario_id]
    query.filter = parse_filter("simulation_count > 100", SCENARIO_FIELDS)
    assert database.run(lambda uow: uow.scenarios.list(corpus.tenant_id, query)) == []


# -- the same ids on both engines -----------------------------------------------------------


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory, postgres_url):
    """The corpus on SQLite and on PostgreSQL, with the same ids."""
    stored = _new_corpus()
    engines = []
    for url in (sqlite_url_for(tmp_path_factory.mktemp("filters")), postgres_url):
        engine = Database(url, retry=RetryPolicy(max_attempts=5, max_seconds=5))
        engine.migrate()
        store_corpus(engine, stored, COUNT)
        engines.append(engine)
    yield stored, engines
    for engine in engines:
        engine.dispose()


OPERATORS = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
WORDS = st.text(alphabet="abcdeklmsuyBLS- 1ü", max_size=6)
TIMES = st.integers(min_value=-2, max_value=30).map(
    lambda hour: f'"2026-01-0{1 + (hour // 24) if hour >= 0 else 1}T{hour % 24:02d}:30:00Z"'
)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


COMPARISONS = st.one_of(
    st.builds(
        "config.model {} {}".format,
        OPERATORS,
        st.sampled_from(MODELS).map(_quoted) | WORDS.map(_quoted),
    ),
    st.builds("config.max_turns {} {}".format, OPERATORS, st.integers(-5, 50)),
    st.builds("config.seed {} {}".format, OPERATORS, st.integers(-3_000_000, 30_000_000)),
    st.builds(
        "config.temperature {} {}".format,
        OPERATORS,
        st.floats(0, 2, allow_nan=False).map(lambda x: f"{x:.2f}"),
    ),
    st.builds(
        "config.agents.role {} {}".format,
        OPERATORS | st.just(":"),
        st.sampled_from(ROLES).map(_quoted),
    ),
    st.builds(
        "config.agents.persona {} {}".format, OPERATORS, st.sampled_from(['"haggles"', '""'])
    ),
    st.builds(
        "config.environment.rules : {}".format,
        st.sampled_from(['"no lying"', '"be quick"', '"x"']),
    ),
    st.builds("config.title {} {}".format, OPERATORS, WORDS.map(_quoted)),
    st.builds("name {} {}".format, OPERATORS | st.just(":"), WORDS.map(_quoted)),
    st.builds("status {} {}".format, OPERATORS, st.sampled_from(STATUSES)),
    st.builds(
        "labels.{} {} {}".format,
        st.sampled_from(LABEL_KEYS),
        st.sampled_from(["=", "!=", ":"]),
        st.sampled_from(LABEL_VALUES).map(_quoted),
    ),
    st.builds("labels.{} : *".format, st.sampled_from(LABEL_KEYS)),
    st.builds("create_time {} {}".format, OPERATORS, TIMES),
    st.builds("update_time {} {}".format, OPERATORS, TIMES),
    st.builds("current_revision {} {}".format, OPERATORS, st.integers(0, 3)),
    st.sampled_from(['scenario_id = ""', 'scenario_id != ""']),
)

FILTERS = st.recursive(
    COMPARISONS,
    lambda inner: st.one_of(
        st.builds("{} AND {}".format, inner, inner),
        st.builds("{} OR {}".format, inner, inner),
        st.builds("NOT {}".format, inner),
        st.builds("({})".format, inner),
    ),
    max_leaves=6,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=FILTERS)
def test_generated_filters_match_the_same_ids_on_sqlite_and_postgresql(both_engines, text):
    stored, engines = both_engines
    query = SimulationQuery(limit=1000, filter=parse_filter(text, FILTER_FIELDS))
    answers = [
        sorted(
            row.id for row in engine.run(lambda uow: uow.simulations.list(stored.tenant_id, query))
        )
        for engine in engines
    ]
    assert answers[0] == answers[1], text
    assert not any(found.startswith("other-") for found in answers[0])


# -- the index PostgreSQL uses --------------------------------------------------------------

_SEED_SIMULATIONS = """
INSERT INTO simulations (id, tenant_id, name, prompt, labels, status, current_revision,
                         create_time, update_time, etag)
SELECT 'sim-' || n, :tenant_id, 'simulation ' || n, '', '{}', 'COMPLETED_CONFIG', 1,
       now() - n * interval '1 second', now(), 'etag'
FROM generate_series(1, :count) AS n
"""
_SEED_REVISIONS = """
INSERT INTO config_revisions (tenant_id, simulation_id, revision, config, sources, create_time,
                              actor, origin, description)
SELECT :tenant_id, 'sim-' || n, 1,
       jsonb_build_object('schema_version', 2, 'model',
                          CASE WHEN n % 1000 = 0 THEN 'sim-rare-1' ELSE 'sim-small-1' END,
                          'max_turns', n % 100,
                          'agents', jsonb_build_array(jsonb_build_object(
                              'id', 'a', 'role', CASE WHEN n % 500 = 0 THEN 'auditor'
                                                      ELSE 'buyer' END))),
       '[]', now(), 'key', 'IMPORT', ''
FROM generate_series(1, :count) AS n
"""


def test_has_on_postgresql_asks_the_index_as_equality_does():
    # The tree's "has" on a list is equality; on PostgreSQL both must become the containment
    # the GIN index answers (see the plans below), not a walk of every document.
    def sql(op: str) -> str:
        comparison = Comparison("config", op, "buyer", key=("agents", "*", "role"))
        condition = compile_filter(comparison, SIMULATION_FILTER_FIELDS, "postgresql")
        return str(condition.compile(dialect=postgresql.dialect()))

    assert "simconfig_config_matches" in sql("=")
    assert sql("has") == sql("=")


def test_a_field_or_an_operator_the_repository_does_not_know_is_refused_by_name():
    with pytest.raises(ValueError, match=r"cannot filter on 'prompt'; expected one of \['config'"):
        compile_filter(Comparison("prompt", "=", "x"), SIMULATION_FILTER_FIELDS, "sqlite")
    with pytest.raises(ValueError, match="unknown comparison '~'"):
        compile_filter(Comparison("name", "~", "x"), SIMULATION_FILTER_FIELDS, "sqlite")


@pytest.mark.parametrize(
    "text",
    ['config.model = "sim-rare-1"', 'config.agents.role = "auditor" AND status = COMPLETED_CONFIG'],
)
def test_postgresql_answers_a_selective_config_filter_from_the_gin_index(empty_postgres_url, text):
    from sqlalchemy import event
    from sqlalchemy import text as sql

    database = Database(empty_postgres_url)
    database.migrate()
    tenant_id = str(uuid.uuid4())
    try:
        with database.engine.begin() as connection:
            for statement in (_SEED_SIMULATIONS, _SEED_REVISIONS):
                connection.execute(sql(statement), {"tenant_id": tenant_id, "count": 20_000})
        # What autovacuum does after a bulk load: statistics, and the GIN index's pending
        # list merged (until then every search reads that list through).
        with database.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.execute(sql("VACUUM ANALYZE simulations"))
            connection.execute(sql("VACUUM ANALYZE config_revisions"))
        sent = []

        def remember(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("SELECT SIMULATIONS.ID"):
                sent.append((statement, parameters))

        event.listen(database.engine, "before_cursor_execute", remember)
        query = SimulationQuery(limit=51, filter=parse_filter(text, FILTER_FIELDS))
        rows = database.run(lambda uow: uow.simulations.list(tenant_id, query))
        event.remove(database.engine, "before_cursor_execute", remember)
        assert len(rows) in (20, 40) and len(sent) == 1
        statement, parameters = sent[0]
        with database.engine.connect() as connection:
            cursor = connection.connection.dbapi_connection.cursor()
            cursor.execute("EXPLAIN " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        # The plan starts from the few matching revisions (migration 0020's function, which
        # the tenant wall lets use the index), not from every simulation of the tenant...
        assert "Function Scan on simconfig_config_matches" in plan, plan
        assert "simulations_pkey" in plan, plan
        # ...and the function finds them through the GIN index.
        contained = json.dumps({"model": "sim-rare-1"})
        with database.engine.connect() as connection:
            inner = "\n".join(
                row[0]
                for row in connection.execute(
                    sql(
                        "EXPLAIN SELECT simulation_id, revision FROM config_revisions "
                        "WHERE config @> CAST(:document AS jsonb)"
                    ),
                    {"document": contained},
                )
            )
        assert "ix_config_revisions_config" in inner, inner
    finally:
        database.dispose()
