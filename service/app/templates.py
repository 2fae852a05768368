"""Template use cases: CRUD with etags and soft delete, versions, and simulations from them.

A template's name, description and labels are edited in place; its config and default
architect parameters are versioned (each change adds a revision), so a simulation created from
revision N keeps naming revision N in its sources. Built-in presets (:mod:`service.domain.presets`)
are read like templates by every tenant and refuse every write.
"""

from __future__ import annotations

import builtins
import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from simulation.v1 import config_pb2

import storage
from service.app.authentication import Principal
from service.app.batches import ensure_request_id, replay_or_record, replayed_write
from service.app.configs import apply_mask, check_config
from service.app.conventions import check_etag, check_mask, fingerprint, first_result, utc_now
from service.app.list_filters import FilterField, parse_filter, parse_order_by
from service.app.page_tokens import Page, PageRequest
from service.app.simulation_writes import (
    SimulationInput,
    create_simulation,
    record_event,
    write_revision,
)
from service.app.transactions import transactional
from service.domain import errors, lifecycle
from service.domain.config_codec import (
    config_from_document,
    config_to_document,
    parameters_from_document,
    parameters_to_document,
)
from service.domain.presets import Preset, is_preset_id, presets
from service.domain.validation import (
    ConfigValidator,
    check_labels,
    check_request_id,
    check_text,
    require_id,
)

FILTER_FIELDS = {
    "display_name": FilterField("string", contains=True),
    "description": FilterField("string", contains=True),
    "labels": FilterField("labels"),
    "create_time": FilterField("timestamp"),
    "update_time": FilterField("timestamp"),
    "delete_time": FilterField("timestamp"),
}
ORDER_FIELDS = {"create_time", "display_name"}
# The one filter that lists the built-in presets instead of the tenant's templates.
BUILTIN_FILTER = "builtin = true"
# How often soft-deleted templates past their retention are purged, across all servers.
PURGE_INTERVAL = timedelta(minutes=5)
# Fields of a template that are versioned: changing one adds a revision.
VERSIONED_FIELDS = frozenset({"config", "parameters"})


@dataclass(frozen=True)
class TemplateInput:
    """The caller-writable fields of a template; ``parameters`` None means none."""

    display_name: str = ""
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    config: config_pb2.SimulationConfig | None = None
    parameters: config_pb2.ArchitectParameters | None = None

    @classmethod
    def fields(cls) -> set[str]:
        """The names of the writable fields (what an update mask may name)."""
        return {f.name for f in dataclasses.fields(cls)}

    def populated(self) -> set[str]:
        """The fields this input sets: what an empty update mask changes."""
        return {name for name in self.fields() if getattr(self, name)}

    def violations(
        self, validator: ConfigValidator, names: set[str], prefix: str = "template"
    ) -> list[errors.Violation]:
        """Every rule the fields in ``names`` break, with paths under ``prefix``."""
        found: list[errors.Violation] = []
        if "display_name" in names:
            found += check_text(
                self.display_name,
                f"{prefix}.display_name",
                max_length=200,
                required=True,
                single_line=True,
            )
        if "description" in names:
            found += check_text(self.description, f"{prefix}.description", max_length=4000)
        if "labels" in names:
            found += check_labels(self.labels, f"{prefix}.labels")
        if "config" in names:
            if self.config is None:
                found.append(errors.Violation(f"{prefix}.config", "is required"))
            else:
                found += [
                    errors.Violation(
                        f"{prefix}.config.{v.field}" if v.field else f"{prefix}.config",
                        v.description,
                    )
                    for v in validator.validate(self.config)
                ]
        if "parameters" in names and self.parameters is not None:
            found += validator.validate_parameters(
                self.parameters, field_prefix=f"{prefix}.parameters"
            )
        return found


@dataclass(frozen=True)
class TemplateView:
    """A template at one revision, as the API shows it; ``builtin`` for a preset."""

    template: storage.Template
    revision: storage.TemplateRevision
    builtin: bool = False

    @property
    def config(self) -> config_pb2.SimulationConfig:
        """The decoded config of the revision."""
        return config_from_document(self.revision.config)

    @property
    def parameters(self) -> config_pb2.ArchitectParameters | None:
        """The decoded default architect parameters, if the revision has any."""
        if self.revision.parameters is None:
            return None
        return parameters_from_document(self.revision.parameters)


class TemplateOperations:
    """The TemplateService use cases over a :class:`storage.Database`."""

    def __init__(
        self,
        database: storage.Database,
        validator: ConfigValidator | None = None,
        *,
        retention: timedelta = timedelta(days=30),
    ):
        self._database = database
        self._validator = validator or ConfigValidator()
        self._retention = retention

    @transactional
    def create(
        self,
        principal: Principal,
        values: TemplateInput,
        *,
        request_id: str = "",
        validate_only: bool = False,
    ) -> TemplateView:
        """Creates a template at revision 1; the same ``request_id`` returns the first result."""
        violations = [
            *values.violations(self._validator, TemplateInput.fields()),
            *check_request_id(request_id),
        ]
        if violations:
            raise errors.InvalidArgument(violations)
        request = fingerprint(rpc="CreateTemplate", **_fingerprinted(values))
        template, first = self._new(principal, values, request_id, request)
        with self._database.unit_of_work() as uow:
            if request_id:
                existing = uow.templates.get_by_request_id(principal.tenant_id, request_id)
                if existing is not None:
                    first_result(existing, existing.request_fingerprint, request, "template")
                    return _view(uow, existing)
            if validate_only:
                _ensure_name_free(uow, principal.tenant_id, values.display_name)
                return TemplateView(dataclasses.replace(template, id=""), first)
            stored = uow.templates.add(template, first)
            uow.commit()
        return TemplateView(stored, first)

    @transactional
    def get(self, principal: Principal, template_id: str, revision: int = 0) -> TemplateView:
        """A template (live or soft-deleted) or a preset, at ``revision`` (0: the current)."""
        require_id(template_id, "template_id")
        if revision < 0:
            raise errors.InvalidArgument.field("revision", "must be 0 (current) or positive")
        if is_preset_id(template_id):
            return _preset_view(template_id, revision)
        with self._database.read_unit_of_work() as uow:
            template = uow.templates.get(principal.tenant_id, template_id, include_deleted=True)
            return _view(uow, template, revision)

    @transactional
    def list(
        self,
        principal: Principal,
        *,
        page_size: int = 0,
        page_token: str = "",
        filter_text: str = "",
        order_by: str = "",
        show_deleted: bool = False,
    ) -> Page:
        """Lists the tenant's templates one keyset page at a time (or the presets)."""
        if " ".join(filter_text.split()) == BUILTIN_FILTER:
            parse_order_by(order_by, ORDER_FIELDS)
            return Page([_preset_view(preset_id) for preset_id in presets()], "")
        condition = parse_filter(filter_text, FILTER_FIELDS)
        sort_field, descending = parse_order_by(order_by, ORDER_FIELDS)
        paging = PageRequest(
            principal.tenant_id,
            page_size,
            page_token,
            cursor_types=(datetime if sort_field == "create_time" else str, str),
            kind="templates",
            filter=filter_text,
            order_by=order_by,
            show_deleted=show_deleted,
        )
        query = storage.TemplateQuery(
            limit=paging.limit,
            order_by=sort_field,
            descending=descending,
            after=paging.after,
            show_deleted=show_deleted,
            filter=condition,
        )
        with self._database.read_unit_of_work() as uow:
            rows = uow.templates.list(principal.tenant_id, query)
            revisions = uow.templates.current_revisions(principal.tenant_id, rows)
        views = [TemplateView(row, revisions[row.id]) for row in rows]
        return paging.page(views, lambda view: storage.cursor_of(view.template, sort_field))

    @transactional
    def update(
        self,
        principal: Principal,
        template_id: str,
        values: TemplateInput,
        *,
        mask: builtins.list[str],
        etag: str = "",
        request_id: str = "",
    ) -> TemplateView:
        """Changes the masked fields; a change of config or parameters adds a revision.

        A retry with the same ``request_id`` and arguments returns the template as it is now
        instead of writing another revision.
        """
        require_id(template_id, "template.id")
        _refuse_preset(template_id)
        paths = set(check_mask(mask, TemplateInput.fields(), values.populated()))
        violations = [*values.violations(self._validator, paths), *check_request_id(request_id)]
        if violations:
            raise errors.InvalidArgument(violations)
        tenant_id = principal.tenant_id
        request = fingerprint(
            rpc="UpdateTemplate",
            template_id=template_id,
            values=_fingerprinted(values),
            mask=mask,
            etag=etag,
        )
        with self._database.unit_of_work() as uow:
            if replayed_write(
                uow,
                tenant_id,
                "UpdateTemplate",
                request_id,
                request,
                template_id,
                noun="template write",
            ):
                return _view(uow, uow.templates.get(tenant_id, template_id, include_deleted=True))
            current = uow.templates.get(
                tenant_id, template_id, include_deleted=True, for_update=True
            )
            if current.delete_time is not None:
                raise errors.FailedPrecondition(
                    f"template {template_id!r} is deleted; undelete it first",
                    [errors.PreconditionViolation("STATE", f"templates/{template_id}", "deleted")],
                    reason="TEMPLATE_DELETED",
                )
            check_etag(etag, current.etag, "template", template_id)
            if not paths:
                return _view(uow, current)
            now = utc_now()
            latest = uow.templates.get_revision(tenant_id, template_id, current.current_revision)
            changed = dataclasses.replace(
                current,
                **{name: getattr(values, name) for name in paths - VERSIONED_FIELDS},
                update_time=now,
            )
            if paths & VERSIONED_FIELDS:
                latest = storage.TemplateRevision(
                    tenant_id=tenant_id,
                    template_id=template_id,
                    revision=current.current_revision + 1,
                    config=config_to_document(values.config)
                    if "config" in paths and values.config is not None
                    else latest.config,
                    parameters=_parameters_document(values.parameters)
                    if "parameters" in paths
                    else latest.parameters,
                    create_time=now,
                    actor=principal.key_id,
                )
                uow.templates.add_revision(latest)
                changed = dataclasses.replace(changed, current_revision=latest.revision)
            updated = uow.templates.update(changed, expected_etag=current.etag)
            uow.commit()
        return TemplateView(updated, latest)

    @transactional
    def delete(
        self, principal: Principal, template_id: str, *, etag: str = "", request_id: str = ""
    ) -> TemplateView:
        """Soft-deletes a template; simulations created from it are not touched.

        A retry with the same ``request_id`` and arguments returns the template as it is now
        (deleted, unless undeleted since) instead of NOT_FOUND.
        """
        require_id(template_id, "template_id")
        _refuse_preset(template_id)
        ensure_request_id(request_id)
        tenant_id = principal.tenant_id
        request = fingerprint(rpc="DeleteTemplate", template_id=template_id, etag=etag)
        with self._database.unit_of_work() as uow:
            if replayed_write(
                uow,
                tenant_id,
                "DeleteTemplate",
                request_id,
                request,
                template_id,
                noun="template write",
            ):
                return _view(uow, uow.templates.get(tenant_id, template_id, include_deleted=True))
            current = uow.templates.get(tenant_id, template_id, for_update=True)
            check_etag(etag, current.etag, "template", template_id)
            now = utc_now()
            deleted = uow.templates.update(
                dataclasses.replace(
                    current, delete_time=now, purge_time=now + self._retention, update_time=now
                ),
                expected_etag=current.etag,
            )
            view = _view(uow, deleted)
            uow.commit()
        return view

    @transactional
    def undelete(
        self, principal: Principal, template_id: str, *, etag: str = "", request_id: str = ""
    ) -> TemplateView:
        """Restores a soft-deleted template.

        A retry with the same ``request_id`` and arguments returns the template as it is now
        instead of FAILED_PRECONDITION.
        """
        require_id(template_id, "template_id")
        _refuse_preset(template_id)
        ensure_request_id(request_id)
        tenant_id = principal.tenant_id
        request = fingerprint(rpc="UndeleteTemplate", template_id=template_id, etag=etag)
        with self._database.unit_of_work() as uow:
            if replayed_write(
                uow,
                tenant_id,
                "UndeleteTemplate",
                request_id,
                request,
                template_id,
                noun="template write",
            ):
                return _view(uow, uow.templates.get(tenant_id, template_id, include_deleted=True))
            current = uow.templates.get(
                tenant_id, template_id, include_deleted=True, for_update=True
            )
            if current.delete_time is None:
                raise errors.FailedPrecondition(
                    f"template {template_id!r} is not deleted",
                    [errors.PreconditionViolation("STATE", f"templates/{template_id}", "live")],
                    reason="TEMPLATE_NOT_DELETED",
                )
            check_etag(etag, current.etag, "template", template_id)
            restored = uow.templates.update(
                dataclasses.replace(
                    current, delete_time=None, purge_time=None, update_time=utc_now()
                ),
                expected_etag=current.etag,
            )
            view = _view(uow, restored)
            uow.commit()
        return view

    @transactional
    def create_simulation(
        self,
        principal: Principal,
        template_id: str,
        values: SimulationInput,
        *,
        template_revision: int = 0,
        overrides: config_pb2.SimulationConfig | None = None,
        mask: Sequence[str] = (),
        request_id: str = "",
        validate_only: bool = False,
    ) -> storage.Simulation:
        """A simulation in COMPLETED_CONFIG whose revision 1 is the template's config.

        The fields named in ``mask`` come from ``overrides``; the result is validated whole.
        The revision's origin is TEMPLATE and its one source names the template revision.
        """
        require_id(template_id, "template_id")
        if template_revision < 0:
            raise errors.InvalidArgument.field(
                "template_revision", "must be 0 (current) or positive"
            )
        mask = list(mask)
        violations = [*values.violations(), *check_request_id(request_id)]
        if mask == ["*"]:
            violations.append(
                errors.Violation("update_mask", "name the fields to override; `*` is not allowed")
            )
        if violations:
            raise errors.InvalidArgument(violations)
        view = self.get(principal, template_id, template_revision)
        if view.template.delete_time is not None:
            raise storage.NotFound("template", template_id)
        config = view.config
        if mask:
            config = apply_mask(config, overrides or config_pb2.SimulationConfig(), mask)
        check_config(self._validator, config)
        source = config_pb2.Source(
            uri=f"templates/{view.template.id}/revisions/{view.revision.revision}",
            title=view.template.display_name,
            snippet=view.template.description[:200],
        )
        actor = principal.key_id

        def store(uow: storage.UnitOfWork, added: storage.Simulation, now) -> storage.Simulation:
            record_event(
                uow,
                added,
                "CREATED",
                actor,
                now,
                to_status=lifecycle.COMPLETED_CONFIG,
                revision=1,
                reason=f"created from template {view.template.id} revision {view.revision.revision}",
            )
            created, _ = write_revision(
                uow,
                added,
                config=config,
                sources=[source],
                origin="TEMPLATE",
                actor=actor,
                description=f"from template {view.template.display_name!r}",
                now=now,
            )
            return created

        request = fingerprint(
            rpc="CreateSimulationFromTemplate",
            name=values.name,
            prompt=values.prompt,
            labels=dict(values.labels),
            scenario_id=values.scenario_id,
            template_id=template_id,
            template_revision=view.revision.revision,
            config=config_to_document(config),
        )
        return create_simulation(
            self._database,
            principal.tenant_id,
            values,
            with_config=True,
            request_id=request_id,
            fingerprint=request,
            architect_parameters=view.revision.parameters,
            validate_only=validate_only,
            store=store,
        )

    @transactional
    def save_as_template(
        self,
        principal: Principal,
        simulation_id: str,
        values: TemplateInput,
        *,
        revision: int = 0,
        request_id: str = "",
    ) -> TemplateView:
        """A new template from a simulation's current config (or ``revision``) and parameters.

        A retry with the same ``request_id`` and arguments returns the template the first
        call created, as it is now, instead of creating another.
        """
        require_id(simulation_id, "simulation_id")
        if revision < 0:
            raise errors.InvalidArgument.field("revision", "must be 0 (current) or positive")
        violations = [
            *values.violations(self._validator, {"display_name", "description", "labels"}),
            *check_request_id(request_id),
        ]
        if violations:
            raise errors.InvalidArgument(violations)
        tenant_id = principal.tenant_id
        request = fingerprint(
            rpc="SaveAsTemplate",
            simulation_id=simulation_id,
            revision=revision,
            display_name=values.display_name,
            description=values.description,
            labels=dict(values.labels),
        )
        template_id = str(uuid.uuid4())
        with self._database.unit_of_work() as uow:
            # First: a retry answers even when the simulation is gone since.
            replayed = replay_or_record(
                uow,
                tenant_id,
                "SaveAsTemplate",
                request_id,
                request,
                [template_id],
                noun="template",
            )
            if replayed is not None:
                return _view(uow, uow.templates.get(tenant_id, replayed[0], include_deleted=True))
            simulation = uow.simulations.get(tenant_id, simulation_id)
            number = revision or simulation.current_revision
            if number == 0:
                raise storage.NotFound("config revision", f"{simulation_id}@current")
            source = uow.revisions.get(tenant_id, simulation_id, number)
            saved = dataclasses.replace(
                values,
                config=config_from_document(source.config),
                parameters=None
                if simulation.architect_parameters is None
                else parameters_from_document(simulation.architect_parameters),
            )
            template, first = self._new(principal, saved, "", None, template_id=template_id)
            stored = uow.templates.add(template, first)
            uow.commit()
        return TemplateView(stored, first)

    @transactional
    def purge_expired(self) -> int:
        """Hard-deletes templates whose retention is over; at most once per interval."""
        with self._database.unit_of_work() as uow:
            now = utc_now()
            if not uow.periodic_runs.claim("template-purge", now, PURGE_INTERVAL):
                return 0
            purged = uow.templates.purge_expired(now)
            uow.commit()
        return purged

    def _new(
        self,
        principal: Principal,
        values: TemplateInput,
        request_id: str,
        request_fingerprint: str | None,
        *,
        template_id: str = "",
    ) -> tuple[storage.Template, storage.TemplateRevision]:
        now = utc_now()
        template = storage.Template(
            id=template_id or str(uuid.uuid4()),
            tenant_id=principal.tenant_id,
            display_name=values.display_name,
            description=values.description,
            labels=dict(values.labels),
            current_revision=1,
            create_time=now,
            update_time=now,
            request_id=request_id or None,
            request_fingerprint=request_fingerprint if request_id else None,
        )
        first = storage.TemplateRevision(
            tenant_id=principal.tenant_id,
            template_id=template.id,
            revision=1,
            config=config_to_document(values.config or config_pb2.SimulationConfig()),
            parameters=_parameters_document(values.parameters),
            create_time=now,
            actor=principal.key_id,
        )
        return template, first


def _parameters_document(parameters: config_pb2.ArchitectParameters | None):
    return None if parameters is None else parameters_to_document(parameters)


def _fingerprinted(values: TemplateInput) -> dict:
    return {
        "display_name": values.display_name,
        "description": values.description,
        "labels": dict(values.labels),
        "config": config_to_document(values.config or config_pb2.SimulationConfig()),
        "parameters": _parameters_document(values.parameters),
    }


def _view(uow, template: storage.Template, revision: int = 0) -> TemplateView:
    number = revision or template.current_revision
    return TemplateView(
        template, uow.templates.get_revision(template.tenant_id, template.id, number)
    )


def _preset_view(preset_id: str, revision: int = 0) -> TemplateView:
    preset: Preset | None = presets().get(preset_id)
    if preset is None or revision > 1:
        raise storage.NotFound("template", preset_id)
    epoch = datetime(2026, 1, 1, tzinfo=UTC)
    template = storage.Template(
        id=preset.id,
        tenant_id="",
        display_name=preset.display_name,
        description=preset.description,
        labels=dict(preset.labels),
        current_revision=1,
        create_time=epoch,
        update_time=epoch,
    )
    first = storage.TemplateRevision(
        tenant_id="",
        template_id=preset.id,
        revision=1,
        config=config_to_document(preset.config),
        parameters=_parameters_document(preset.parameters),
        create_time=epoch,
        actor="",
    )
    return TemplateView(template, first, builtin=True)


def _refuse_preset(template_id: str) -> None:
    if is_preset_id(template_id) and template_id in presets():
        raise errors.FailedPrecondition(
            f"template {template_id!r} is a built-in preset and cannot be changed; "
            "create a template of your own from its config instead",
            [errors.PreconditionViolation("BUILTIN", f"templates/{template_id}", "read-only")],
            reason="TEMPLATE_BUILTIN",
        )


def _ensure_name_free(uow: storage.UnitOfWork, tenant_id: str, name: str) -> None:
    same_name = storage.Comparison("display_name", "=", name)
    clash = uow.templates.list(tenant_id, storage.TemplateQuery(limit=1, filter=same_name))
    if clash:
        raise storage.AlreadyExists("template", "display_name", name)
