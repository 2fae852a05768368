"""Config use cases: read, edit, validate, import, list revisions and roll back.

Every write validates the config with the one :class:`~service.validation.ConfigValidator`,
checks the status rule in :mod:`service.lifecycle`, and stores the revision with
:func:`service.simulation_steps.write_revision` in the same transaction as the status change.

The config view's etag is derived from the simulation id and its current revision number, so it
changes with every config write and with nothing else; the write itself is a compare-and-swap on
the simulation row, so two writers holding the same config etag never both win.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from simulation.v1 import config_pb2

import storage
from service import errors, lifecycle
from service.auth import Principal
from service.config_codec import (
    config_from_document,
    config_to_document,
    sources_from_documents,
    sources_to_documents,
)
from service.fields import check_request_id, check_text, request_fingerprint, require_id, utc_now
from service.pagination import IntRange, Page, PageRequest
from service.simulation_steps import (
    SimulationInput,
    check_input,
    create_simulation,
    load_simulation,
    load_with_sources,
    record_event,
    run_write,
    write_revision,
)
from service.validation import ConfigValidator

_TOP_LEVEL = frozenset(config_pb2.SimulationConfig.DESCRIPTOR.fields_by_name)
_ENVIRONMENT = frozenset(
    f"environment.{name}" for name in config_pb2.Environment.DESCRIPTOR.fields_by_name
)
CONFIG_MASK_PATHS = _TOP_LEVEL | _ENVIRONMENT
MAX_DESCRIPTION_CHARS = 1000


@dataclass(frozen=True)
class ConfigView:
    """A revision of a simulation's config, with the etag of the current config."""

    simulation_id: str
    revision: storage.ConfigRevision
    etag: str


def config_etag(simulation_id: str, revision: int) -> str:
    """The opaque etag of a simulation's config at ``revision``."""
    digest = hashlib.sha256(f"{simulation_id}:{revision}".encode()).hexdigest()[:16]
    return f"c{revision}-{digest}"


def check_config(
    validator: ConfigValidator, config: config_pb2.SimulationConfig, prefix: str = "config"
) -> None:
    """Raises ``InvalidArgument`` (reason CONFIG_INVALID) listing every violation of ``config``.

    Paths name the request field (``config.agents[3].id``) so callers can map them to input.
    """
    violations = validator.validate(config)
    if violations:
        raise errors.InvalidArgument(
            [
                errors.FieldViolation(f"{prefix}.{v.field}" if v.field else prefix, v.description)
                for v in violations
            ],
            reason="CONFIG_INVALID",
        )


def check_sources(
    validator: ConfigValidator, sources: list[config_pb2.Source]
) -> list[errors.FieldViolation]:
    """Every violation of the request's ``sources`` (paths like ``sources[3].uri``)."""
    return [
        errors.FieldViolation(v.field, v.description) for v in validator.validate_sources(sources)
    ]


def apply_mask(
    current: config_pb2.SimulationConfig, given: config_pb2.SimulationConfig, paths: list[str]
) -> config_pb2.SimulationConfig:
    """``current`` with the fields named by ``paths`` replaced by those of ``given``.

    An empty mask or ``*`` replaces the whole config. Unknown paths are ``INVALID_ARGUMENT``.
    """
    if not paths or paths == ["*"]:
        return given
    unknown = [
        errors.FieldViolation(
            f"update_mask.paths[{index}]",
            f"unknown config field {path!r}; allowed: {', '.join(sorted(CONFIG_MASK_PATHS))}",
        )
        for index, path in enumerate(paths)
        if path not in CONFIG_MASK_PATHS
    ]
    if unknown:
        raise errors.InvalidArgument(unknown, reason="UPDATE_MASK_INVALID")
    merged = config_pb2.SimulationConfig()
    merged.CopyFrom(current)
    for path in paths:
        head, _, tail = path.partition(".")
        if tail:
            _replace_field(merged.environment, given.environment, tail)
        else:
            _replace_field(merged, given, head)
    return merged


def _replace_field(target, source, name: str) -> None:
    descriptor = target.DESCRIPTOR.fields_by_name[name]
    target.ClearField(name)
    if descriptor.is_repeated:
        getattr(target, name).MergeFrom(getattr(source, name))
    elif descriptor.has_presence:
        # Unset in the request means unset after the update (e.g. temperature back to default).
        if source.HasField(name):
            if descriptor.message_type is not None:
                getattr(target, name).CopyFrom(getattr(source, name))
            else:
                setattr(target, name, getattr(source, name))
    else:
        setattr(target, name, getattr(source, name))


class ConfigOperations:
    """The ConfigService use cases (all but RunArchitect) over a :class:`storage.Database`."""

    def __init__(self, database: storage.Database, validator: ConfigValidator | None = None):
        self._database = database
        self._validator = validator or ConfigValidator()

    def get_config(self, principal: Principal, simulation_id: str, revision: int = 0) -> ConfigView:
        """The current config, or revision ``revision`` (1 or more)."""
        require_id(simulation_id, "simulation_id")
        if revision < 0:
            raise errors.InvalidArgument.field("revision", "must be 0 (current) or a revision ≥ 1")

        def read(uow) -> ConfigView:
            simulation = load_simulation(uow, principal.tenant_id, simulation_id)
            number = revision or simulation.current_revision
            if not number:
                raise errors.NotFound("config", simulation_id)
            stored = self._revision(uow, principal.tenant_id, simulation_id, number)
            return ConfigView(
                simulation_id, stored, config_etag(simulation_id, simulation.current_revision)
            )

        return self._database.run(read)

    def validate_config(self, config: config_pb2.SimulationConfig) -> None:
        """Raises ``InvalidArgument`` with every violation; stores nothing."""
        check_config(self._validator, config)

    def update_config(
        self,
        principal: Principal,
        simulation_id: str,
        config: config_pb2.SimulationConfig,
        *,
        sources: list[config_pb2.Source] = (),
        mask: list[str] = (),
        etag: str = "",
        description: str = "",
        validate_only: bool = False,
    ) -> ConfigView:
        """Writes a new revision (origin EDIT); the simulation returns to COMPLETED_CONFIG."""
        require_id(simulation_id, "simulation_id")
        _check_description(description)
        # Only the sources sent: stored ones are kept as they were.
        source_violations = check_sources(self._validator, list(sources))
        if source_violations:
            raise errors.InvalidArgument(source_violations)
        mask = list(mask)
        # Bad mask paths are reported before anything is read.
        apply_mask(config_pb2.SimulationConfig(), config, mask)

        def update(uow: storage.UnitOfWork) -> ConfigView:
            current, stored = self._editable(uow, principal, simulation_id, etag)
            base = config_from_document(stored.config) if stored else config_pb2.SimulationConfig()
            merged = apply_mask(base, config, mask)
            check_config(self._validator, merged)
            kept = list(sources) or (sources_from_documents(stored.sources) if stored else [])
            return self._write(
                uow, principal, current, merged, kept, "EDIT", description, validate_only
            )

        return run_write(self._database, update, simulation_id, etag)

    def rollback(
        self,
        principal: Principal,
        simulation_id: str,
        revision: int,
        *,
        etag: str = "",
        description: str = "",
    ) -> ConfigView:
        """Writes a new revision (origin ROLLBACK) copying ``revision``; it must still be valid."""
        require_id(simulation_id, "simulation_id")
        if revision <= 0:
            raise errors.InvalidArgument.field("revision", f"must be 1 or more, got {revision}")
        _check_description(description)

        def rollback(uow: storage.UnitOfWork) -> ConfigView:
            current, _ = self._editable(uow, principal, simulation_id, etag)
            target = self._revision(uow, principal.tenant_id, simulation_id, revision)
            config = config_from_document(target.config)
            # Rules may have tightened since the revision was written.
            check_config(self._validator, config)
            note = description or f"rollback to revision {revision}"
            sources = sources_from_documents(target.sources)
            return self._write(uow, principal, current, config, sources, "ROLLBACK", note, False)

        return run_write(self._database, rollback, simulation_id, etag)

    def create_with_config(
        self,
        principal: Principal,
        values: SimulationInput,
        config: config_pb2.SimulationConfig,
        *,
        sources: list[config_pb2.Source] = (),
        request_id: str = "",
        validate_only: bool = False,
    ) -> storage.Simulation:
        """Creates a simulation in COMPLETED_CONFIG with revision 1 (origin IMPORT)."""
        violations = [
            *check_input(values),
            *check_request_id(request_id),
            *check_sources(self._validator, list(sources)),
        ]
        reason = None
        try:
            check_config(self._validator, config)
        except errors.InvalidArgument as exc:
            # Report the request's and the config's problems in one BadRequest.
            reason = None if violations else exc.reason
            violations.extend(exc.violations)
        if violations:
            raise errors.InvalidArgument(violations, reason=reason)
        actor = principal.key_id

        def store(uow: storage.UnitOfWork, added: storage.Simulation, now) -> storage.Simulation:
            # The trail shows how the simulation got its status: created with revision 1.
            record_event(
                uow,
                added,
                "CREATED",
                actor,
                now,
                to_status=lifecycle.COMPLETED_CONFIG,
                revision=1,
                reason="created with config",
            )
            created, _ = write_revision(
                uow,
                added,
                config=config,
                sources=list(sources),
                origin="IMPORT",
                actor=actor,
                description="imported config",
                now=now,
            )
            return created

        fingerprint = request_fingerprint(
            rpc="CreateSimulationWithConfig",
            name=values.name,
            prompt=values.prompt,
            labels=dict(values.labels),
            scenario_id=values.scenario_id,
            config=config_to_document(config),
            sources=sources_to_documents(sources),
        )
        return create_simulation(
            self._database,
            principal.tenant_id,
            values,
            with_config=True,
            request_id=request_id,
            fingerprint=fingerprint,
            validate_only=validate_only,
            store=store,
        )

    def simulation_with_sources(
        self, principal: Principal, simulation_id: str
    ) -> tuple[storage.Simulation, list[dict]]:
        """A simulation and the sources of its current config revision."""
        require_id(simulation_id, "simulation_id")
        return self._database.run(
            lambda uow: load_with_sources(uow, principal.tenant_id, simulation_id)
        )

    def list_revisions(
        self, principal: Principal, simulation_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> Page:
        """Revisions newest first, one page at a time."""
        require_id(simulation_id, "simulation_id")
        paging = PageRequest(
            principal.tenant_id,
            page_size,
            page_token,
            cursor_types=(IntRange(1, 2**31),),
            kind="config_revisions",
            simulation_id=simulation_id,
        )

        def read(uow):
            load_simulation(uow, principal.tenant_id, simulation_id)
            return uow.revisions.list(
                principal.tenant_id,
                simulation_id,
                before_revision=paging.after[0] if paging.after else None,
                limit=paging.limit,
            )

        return paging.page(self._database.run(read), lambda row: (row.revision,))

    # -- shared steps ----------------------------------------------------------------------------

    def _editable(self, uow, principal: Principal, simulation_id: str, etag: str):
        """The simulation and its current revision, once etag and status allow an edit."""
        current = load_simulation(uow, principal.tenant_id, simulation_id, for_update=True)
        if etag and etag != config_etag(simulation_id, current.current_revision):
            raise errors.EtagMismatch("config", simulation_id)
        lifecycle.check_config_edit(current.status, simulation_id=simulation_id)
        stored = None
        if current.current_revision:
            stored = self._revision(
                uow, principal.tenant_id, simulation_id, current.current_revision
            )
        return current, stored

    def _write(self, uow, principal, current, config, sources, origin, description, dry_run):
        now = utc_now()
        if dry_run:
            number = current.current_revision
            preview = storage.ConfigRevision(
                tenant_id=current.tenant_id,
                simulation_id=current.id,
                revision=number + 1,
                config=config_to_document(config),
                sources=sources_to_documents(sources),
                create_time=now,
                actor=principal.key_id,
                origin=origin,
                description=description,
            )
            return ConfigView(current.id, preview, config_etag(current.id, number))
        updated, revision = write_revision(
            uow,
            current,
            config=config,
            sources=sources,
            origin=origin,
            actor=principal.key_id,
            description=description,
            now=now,
        )
        return ConfigView(current.id, revision, config_etag(current.id, updated.current_revision))

    @staticmethod
    def _revision(uow, tenant_id: str, simulation_id: str, number: int) -> storage.ConfigRevision:
        try:
            return uow.revisions.get(tenant_id, simulation_id, number)
        except storage.NotFound:
            raise errors.NotFound("config_revision", f"{simulation_id}@{number}") from None


def _check_description(description: str) -> None:
    violations = check_text(description, "description", max_length=MAX_DESCRIPTION_CHARS)
    if violations:
        raise errors.InvalidArgument(violations)
