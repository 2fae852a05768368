"""Contract of the template repository, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from storage import (
    AlreadyExists,
    Comparison,
    Conflict,
    NotFound,
    Template,
    TemplateQuery,
    TemplateRevision,
    cursor_of,
)
from tests.storage.row_locks import SQLITE_WRITE_LOCK, refused_row_locks


def _template(tenant_id: str, now, **overrides) -> Template:
    values = {
        "id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "display_name": f"template {uuid.uuid4().hex[:8]}",
        "description": "",
        "labels": {},
        "current_revision": 1,
        "create_time": now,
        "update_time": now,
    }
    return Template(**(values | overrides))


def _revision(template: Template, revision: int = 1, **overrides) -> TemplateRevision:
    values = {
        "tenant_id": template.tenant_id,
        "template_id": template.id,
        "revision": revision,
        "config": {"schema_version": 2, "title": f"v{revision}"},
        "parameters": {"num_agents": 3},
        "create_time": template.create_time,
        "actor": "key-1",
    }
    return TemplateRevision(**(values | overrides))


def add(database, template: Template) -> Template:
    return database.run(lambda uow: uow.templates.add(template, _revision(template)))


def test_an_added_template_reads_back_with_its_first_revision(database, make, tenant_id):
    record = _template(tenant_id, make.now, labels={"team": "risk"}, description="d")

    stored = add(database, record)

    assert stored.etag
    fetched = database.run(lambda uow: uow.templates.get(tenant_id, record.id))
    assert fetched == dataclasses.replace(
        stored, create_time=fetched.create_time, update_time=fetched.update_time
    )
    revision = database.run(lambda uow: uow.templates.get_revision(tenant_id, record.id, 1))
    assert revision.config == {"schema_version": 2, "title": "v1"}
    assert revision.parameters == {"num_agents": 3}


def test_another_tenants_template_and_revisions_are_not_found(
    database, make, tenant_id, other_tenant_id
):
    record = add(database, _template(tenant_id, make.now))

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.templates.get(other_tenant_id, record.id))
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.templates.get_revision(other_tenant_id, record.id, 1))
    assert database.run(lambda uow: uow.templates.list(other_tenant_id, TemplateQuery(10))) == []


def test_live_display_names_are_unique_per_tenant(database, make, tenant_id, other_tenant_id):
    first = add(database, _template(tenant_id, make.now, display_name="Market"))

    with pytest.raises(AlreadyExists) as raised:
        add(database, _template(tenant_id, make.now, display_name="Market"))
    assert raised.value.field == "display_name"
    add(database, _template(other_tenant_id, make.now, display_name="Market"))
    # A deleted template frees its name.
    database.run(
        lambda uow: uow.templates.update(
            dataclasses.replace(first, delete_time=make.now), expected_etag=first.etag
        )
    )
    add(database, _template(tenant_id, make.now, display_name="Market"))


def test_request_ids_are_unique_per_tenant(database, make, tenant_id):
    record = add(database, _template(tenant_id, make.now, request_id="r1"))

    with pytest.raises(AlreadyExists) as raised:
        add(database, _template(tenant_id, make.now, request_id="r1"))
    assert (raised.value.entity, raised.value.field, raised.value.value) == (
        "template",
        "request_id",
        "r1",
    )
    assert (
        database.run(lambda uow: uow.templates.get_by_request_id(tenant_id, "r1")).id == record.id
    )


def test_update_is_a_compare_and_swap_on_the_etag(database, make, tenant_id):
    stored = add(database, _template(tenant_id, make.now))

    updated = database.run(
        lambda uow: uow.templates.update(
            dataclasses.replace(stored, description="new"), expected_etag=stored.etag
        )
    )

    assert updated.etag != stored.etag
    with pytest.raises(Conflict):
        database.run(
            lambda uow: uow.templates.update(
                dataclasses.replace(stored, description="late"), expected_etag=stored.etag
            )
        )
    assert database.run(lambda uow: uow.templates.get(tenant_id, stored.id)).description == "new"


def test_revisions_are_kept_when_the_template_moves_on(database, make, tenant_id):
    stored = add(database, _template(tenant_id, make.now))

    def second_revision(uow):
        uow.templates.add_revision(_revision(stored, 2, config={"title": "v2"}, parameters=None))
        return uow.templates.update(
            dataclasses.replace(stored, current_revision=2), expected_etag=stored.etag
        )

    database.run(second_revision)

    assert database.run(lambda uow: uow.templates.get(tenant_id, stored.id)).current_revision == 2
    first = database.run(lambda uow: uow.templates.get_revision(tenant_id, stored.id, 1))
    second = database.run(lambda uow: uow.templates.get_revision(tenant_id, stored.id, 2))
    assert (first.config["title"], second.config, second.parameters) == (
        "v1",
        {"title": "v2"},
        None,
    )


def test_soft_deleted_templates_are_hidden_unless_asked_for(database, make, tenant_id):
    stored = add(database, _template(tenant_id, make.now))
    database.run(
        lambda uow: uow.templates.update(
            dataclasses.replace(
                stored, delete_time=make.now, purge_time=make.now + timedelta(days=1)
            ),
            expected_etag=stored.etag,
        )
    )

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.templates.get(tenant_id, stored.id))
    assert database.run(lambda uow: uow.templates.get(tenant_id, stored.id, include_deleted=True))
    assert database.run(lambda uow: uow.templates.list(tenant_id, TemplateQuery(10))) == []
    shown = database.run(
        lambda uow: uow.templates.list(tenant_id, TemplateQuery(10, show_deleted=True))
    )
    assert [t.id for t in shown] == [stored.id]


def test_list_filters_and_pages_by_keyset(database, make, tenant_id):
    names = ["delta", "alpha", "charlie", "bravo"]
    for name in names:
        add(database, _template(tenant_id, make.now, display_name=name, labels={"kind": name[0]}))

    first = database.run(
        lambda uow: uow.templates.list(tenant_id, TemplateQuery(2, order_by="display_name"))
    )
    rest = database.run(
        lambda uow: uow.templates.list(
            tenant_id,
            TemplateQuery(10, order_by="display_name", after=cursor_of(first[-1], "display_name")),
        )
    )
    labelled = database.run(
        lambda uow: uow.templates.list(
            tenant_id, TemplateQuery(10, filter=Comparison("labels", "=", "c", key="kind"))
        )
    )
    containing = database.run(
        lambda uow: uow.templates.list(
            tenant_id, TemplateQuery(10, filter=Comparison("display_name", "contains", "RAV"))
        )
    )

    assert [t.display_name for t in first] == ["alpha", "bravo"]
    assert [t.display_name for t in first + rest] == sorted(names)
    assert [t.display_name for t in labelled] == ["charlie"]
    assert [t.display_name for t in containing] == ["bravo"]


def test_purge_removes_only_templates_past_their_purge_time_with_their_revisions(
    clean_database, make
):
    db = clean_database
    tenant_id = make.tenant()
    due = add(db, _template(tenant_id, make.now))
    later = add(db, _template(tenant_id, make.now))
    live = add(db, _template(tenant_id, make.now))
    for record, purge_time in ((due, make.now), (later, make.now + timedelta(days=1))):
        db.run(
            lambda uow, record=record, purge_time=purge_time: uow.templates.update(
                dataclasses.replace(record, delete_time=make.now, purge_time=purge_time),
                expected_etag=record.etag,
            )
        )

    assert db.run(lambda uow: uow.templates.purge_expired(make.now)) == 1

    with pytest.raises(NotFound):
        db.run(lambda uow: uow.templates.get(tenant_id, due.id, include_deleted=True))
    with pytest.raises(NotFound):
        db.run(lambda uow: uow.templates.get_revision(tenant_id, due.id, 1))
    assert db.run(lambda uow: uow.templates.get(tenant_id, later.id, include_deleted=True))
    assert db.run(lambda uow: uow.templates.get(tenant_id, live.id))


def test_the_current_revisions_of_a_page_are_read_in_one_call(database, make, tenant_id):
    first = add(database, _template(tenant_id, make.now))
    second = add(database, _template(tenant_id, make.now))

    def move_on(uow):
        uow.templates.add_revision(_revision(second, 2, config={"title": "v2"}))
        return uow.templates.update(
            dataclasses.replace(second, current_revision=2), expected_etag=second.etag
        )

    second = database.run(move_on)

    found = database.run(lambda uow: uow.templates.current_revisions(tenant_id, [first, second]))

    assert {k: v.revision for k, v in found.items()} == {first.id: 1, second.id: 2}
    assert found[second.id].config == {"title": "v2"}
    assert database.run(lambda uow: uow.templates.current_revisions(tenant_id, [])) == {}


def test_templates_are_listed_newest_name_first_when_descending(database, make, tenant_id):
    for name in ("alpha", "charlie", "bravo"):
        add(database, _template(tenant_id, make.now, display_name=name))

    listed = database.run(
        lambda uow: uow.templates.list(
            tenant_id, TemplateQuery(2, order_by="display_name", descending=True)
        )
    )

    assert [t.display_name for t in listed] == ["charlie", "bravo"]


def test_refusals_name_the_template_and_what_was_asked_for(database, make, tenant_id):
    taken = add(database, _template(tenant_id, make.now, display_name="Taken"))
    stored = add(database, _template(tenant_id, make.now))
    missing_id = str(uuid.uuid4())

    with pytest.raises(NotFound) as missing:
        database.run(lambda uow: uow.templates.get(tenant_id, missing_id))
    assert (missing.value.entity, missing.value.id) == ("template", missing_id)
    with pytest.raises(NotFound) as no_revision:
        database.run(lambda uow: uow.templates.get_revision(tenant_id, stored.id, 7))
    assert (no_revision.value.entity, no_revision.value.id) == (
        "template revision",
        f"{stored.id}@7",
    )
    with pytest.raises(Conflict) as stale:
        database.run(lambda uow: uow.templates.update(stored, expected_etag="stale"))
    assert (stale.value.entity, stale.value.id) == ("template", stored.id)
    with pytest.raises(AlreadyExists) as clash:
        database.run(
            lambda uow: uow.templates.update(
                dataclasses.replace(stored, display_name=taken.display_name),
                expected_etag=stored.etag,
            )
        )
    assert (clash.value.entity, clash.value.field, clash.value.value) == (
        "template",
        "display_name",
        "Taken",
    )


def test_a_name_clash_leaves_the_unit_of_work_usable(database, make, tenant_id):
    taken = add(database, _template(tenant_id, make.now, display_name="Taken"))
    stored = add(database, _template(tenant_id, make.now))
    other = _template(tenant_id, make.now)

    with database.unit_of_work() as uow:
        with pytest.raises(AlreadyExists):
            uow.templates.update(
                dataclasses.replace(stored, display_name=taken.display_name),
                expected_etag=stored.etag,
            )
        with pytest.raises(AlreadyExists):
            clashing = _template(tenant_id, make.now, display_name=taken.display_name)
            uow.templates.add(clashing, _revision(clashing))
        uow.templates.add(other, _revision(other))
        uow.commit()

    assert database.run(lambda uow: uow.templates.get(tenant_id, other.id)).id == other.id


def test_a_stale_update_of_a_deleted_template_is_a_conflict(database, make, tenant_id):
    stored = add(database, _template(tenant_id, make.now))
    deleted = database.run(
        lambda uow: uow.templates.update(
            dataclasses.replace(stored, delete_time=make.now), expected_etag=stored.etag
        )
    )

    with pytest.raises(Conflict):
        database.run(lambda uow: uow.templates.update(deleted, expected_etag=stored.etag))


def test_request_ids_and_current_revisions_are_read_within_the_tenant(
    database, make, tenant_id, other_tenant_id
):
    record = add(database, _template(tenant_id, make.now, request_id="r1"))

    assert database.run(lambda uow: uow.templates.get_by_request_id(tenant_id, "r2")) is None
    assert database.run(lambda uow: uow.templates.get_by_request_id(other_tenant_id, "r1")) is None
    assert (
        database.run(lambda uow: uow.templates.current_revisions(other_tenant_id, [record])) == {}
    )
    # A revision written but not (yet) made current.
    database.run(lambda uow: uow.templates.add_revision(_revision(record, 2)))

    # And one moved on to its revision 2: whatever order rows come in, only the current count.
    moved = add(database, _template(tenant_id, make.now))

    def move_on(uow):
        uow.templates.add_revision(_revision(moved, 2))
        return uow.templates.update(
            dataclasses.replace(moved, current_revision=2), expected_etag=moved.etag
        )

    moved = database.run(move_on)

    current = database.run(lambda uow: uow.templates.current_revisions(tenant_id, [record, moved]))
    assert {k: v.revision for k, v in current.items()} == {record.id: 1, moved.id: 2}


@pytest.mark.parametrize("for_update", [False, True])
def test_get_locks_the_row_only_when_asked_to(database, make, tenant_id, for_update):
    stored = add(database, _template(tenant_id, make.now))

    with database.unit_of_work() as uow:
        if for_update:
            found = uow.templates.get(tenant_id, stored.id, for_update=True)
        else:
            found = uow.templates.get(tenant_id, stored.id)  # the default: no lock
        held = refused_row_locks(database, "templates", stored.id)

    assert found.id == stored.id
    if database.dialect == "sqlite":
        # One writer at a time: the transaction holds the database's write lock whatever it read.
        assert held == {SQLITE_WRITE_LOCK}
    else:
        assert held == ({"KEY SHARE", "SHARE", "NO KEY UPDATE", "UPDATE"} if for_update else set())


def test_a_template_id_is_taken_once(database, make, tenant_id):
    stored = add(database, _template(tenant_id, make.now))

    with pytest.raises(AlreadyExists) as taken:
        add(database, _template(tenant_id, make.now, id=stored.id))

    assert (taken.value.entity, taken.value.field, taken.value.value) == (
        "template",
        "id",
        stored.id,
    )


def test_purge_leaves_a_restored_template_that_kept_its_purge_time(clean_database, make):
    db = clean_database
    tenant_id = make.tenant()
    restored = add(db, _template(tenant_id, make.now, purge_time=make.now - timedelta(days=1)))

    assert db.run(lambda uow: uow.templates.purge_expired(make.now)) == 0
    assert db.run(lambda uow: uow.templates.get(tenant_id, restored.id)).id == restored.id
