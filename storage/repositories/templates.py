"""Templates and their revisions: tenant-scoped, soft-deletable, compare-and-swap on the etag."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import uuid4

from sqlalchemy import delete, insert, select, tuple_

from storage.driver_errors import UniqueRule
from storage.errors import Conflict, NotFound
from storage.records import Template, TemplateQuery, TemplateRevision
from storage.repositories.base import RecordTable, SqlRepository, columns_of
from storage.repositories.filter_sql import ColumnField, FilterField, LabelsField, compile_filter
from storage.repositories.keyset import keyset_page, sort_column
from storage.schema import template_revisions, templates

_ORDERINGS = ("create_time", "display_name")
# What a ListTemplates filter can name.
_FILTER_FIELDS: dict[str, FilterField] = {
    "display_name": ColumnField(templates.c.display_name, text=True),
    "description": ColumnField(templates.c.description, text=True),
    "labels": LabelsField(templates.c.labels),
    "create_time": ColumnField(templates.c.create_time),
    "update_time": ColumnField(templates.c.update_time),
    "delete_time": ColumnField(templates.c.delete_time),
}
# The record is the column list: see RecordTable.
COLUMNS = RecordTable(
    Template,
    templates,
    keys=("tenant_id", "id"),
    fixed=("create_time", "request_id", "request_fingerprint"),
)


def _display_name_rule(template: Template) -> UniqueRule:
    return UniqueRule(
        "uq_templates_tenant_live_display_name",
        ("tenant_id", "display_name"),
        "display_name",
        template.display_name,
    )


class TemplateRepository(SqlRepository):
    """Stores templates and their revisions; every method is scoped by tenant id."""

    def add(self, template: Template, first: TemplateRevision) -> Template:
        """Store a new template with its revision 1; return the template as stored.

        AlreadyExists(field="display_name") when a live template of the tenant has the name,
        AlreadyExists(field="request_id") when the request id was used before.
        """
        stored = replace(template, etag=uuid4().hex)
        self._write(
            COLUMNS.insert,
            COLUMNS.insert_values(stored),
            entity="template",
            uniques=(
                _display_name_rule(template),
                UniqueRule(
                    "uq_templates_tenant_request_id",
                    ("tenant_id", "request_id"),
                    "request_id",
                    template.request_id or "",
                ),
                UniqueRule("templates_pkey", ("id",), "id", template.id),
            ),
            savepoint=True,
        )
        self.add_revision(first)
        return stored

    def add_revision(self, revision: TemplateRevision) -> None:
        """Store a revision; the caller moves the template's ``current_revision`` to it."""
        self._execute(insert(template_revisions).values(columns_of(revision)))

    def get(
        self,
        tenant_id: str,
        template_id: str,
        *,
        include_deleted: bool = False,
        for_update: bool = False,
    ) -> Template:
        """Return the template; NotFound when missing (or deleted, unless ``include_deleted``)."""
        statement = select(templates).where(
            templates.c.tenant_id == tenant_id, templates.c.id == template_id
        )
        if not include_deleted:
            statement = statement.where(templates.c.delete_time.is_(None))
        if for_update:
            statement = statement.with_for_update()
        row = self._execute(statement).first()
        if row is None:
            raise NotFound("template", template_id)
        return Template(**row._mapping)

    def get_revision(self, tenant_id: str, template_id: str, revision: int) -> TemplateRevision:
        """Return one revision of the template; NotFound when it has no such revision."""
        row = self._execute(
            select(template_revisions).where(
                template_revisions.c.tenant_id == tenant_id,
                template_revisions.c.template_id == template_id,
                template_revisions.c.revision == revision,
            )
        ).first()
        if row is None:
            raise NotFound("template revision", f"{template_id}@{revision}")
        return TemplateRevision(**row._mapping)

    def current_revisions(
        self, tenant_id: str, listed: list[Template]
    ) -> dict[str, TemplateRevision]:
        """The current revision of each template in ``listed``, keyed by template id.

        One statement for a whole page of templates.
        """
        if not listed:
            return {}
        rows = self._execute(
            select(template_revisions).where(
                template_revisions.c.tenant_id == tenant_id,
                tuple_(template_revisions.c.template_id, template_revisions.c.revision).in_(
                    [(t.id, t.current_revision) for t in listed]
                ),
            )
        )
        return {row.template_id: TemplateRevision(**row._mapping) for row in rows}

    def get_by_request_id(self, tenant_id: str, request_id: str) -> Template | None:
        """Return the template created by ``request_id``, if any (for idempotent creates)."""
        row = self._execute(
            select(templates).where(
                templates.c.tenant_id == tenant_id, templates.c.request_id == request_id
            )
        ).first()
        return None if row is None else Template(**row._mapping)

    def list(self, tenant_id: str, query: TemplateQuery) -> list[Template]:
        """Return one keyset page of the tenant's templates matching ``query``."""
        statement = select(templates).where(templates.c.tenant_id == tenant_id)
        if not query.show_deleted:
            statement = statement.where(templates.c.delete_time.is_(None))
        if query.filter is not None:
            dialect = self._connection.dialect.name
            statement = statement.where(compile_filter(query.filter, _FILTER_FIELDS, dialect))
        statement = keyset_page(
            statement,
            templates,
            sort_column(templates, query.order_by, _ORDERINGS),
            descending=query.descending,
            after=query.after,
            limit=query.limit,
        )
        return [Template(**row._mapping) for row in self._execute(statement)]

    def update(self, template: Template, *, expected_etag: str) -> Template:
        """Write the mutable fields if the stored etag is ``expected_etag``; return the new row.

        Conflict when the etag differs, NotFound when the row is missing, AlreadyExists when
        the new display name clashes with another live template.
        """
        fresh = replace(template, etag=uuid4().hex)
        count = self._write(
            COLUMNS.update,
            COLUMNS.update_values(fresh, expected_etag),
            entity="template",
            uniques=(_display_name_rule(template),),
            savepoint=True,
        )
        if count == 0:
            self.get(template.tenant_id, template.id, include_deleted=True)
            raise Conflict("template", template.id)
        return fresh

    def purge_expired(self, now: datetime) -> int:
        """Hard-delete soft-deleted templates whose purge_time has passed, in every tenant.

        Their revisions go with them (the foreign key cascades); simulations created from them
        keep their own copy of the config. Returns the number of templates purged.
        """
        result = self._execute(
            delete(templates).where(
                templates.c.delete_time.is_not(None), templates.c.purge_time <= now
            )
        )
        return result.rowcount
