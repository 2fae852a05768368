"""Config use cases: read, edit, validate, import, list revisions and roll back.

Every write validates the config with the one :class:`~service.domain.validation.ConfigValidator`,
checks the status rule in :mod:`service.domain.lifecycle`, and stores the revision with
:func:`service.app.simulation_writes.write_revision` in the same transaction as the status change.

The config view's etag is derived from the simulation id and its current revision number, so it
changes with every config write and with nothing else; the write itself is a compare-and-swap on
the simulation row, so two writers holding the same config etag never both win.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from simulation.v1 import config_pb2

import storage
from service.app.authentication import Principal
from service.app.conventions import fingerprint, first_result, utc_now
from service.app.page_tokens import IntRange, Page
from service.app.read_cache import ReadCache
from service.app.simulation_reads import page_of_simulation
from service.app.simulation_writes import (
    SimulationInput,
    create_simulation,
    record_event,
    replace_config,
    write_revision,
)
from service.app.transactions import transactional
from service.domain import errors, lifecycle
from service.domain.config_codec import (
    RevisionConfigs,
    config_from_document,
    config_to_document,
    sources_from_documents,
    sources_to_documents,
)
from service.domain.config_diff import ConfigDiff, diff_configs
from service.domain.validation import (
    ConfigValidator,
    check_request_id,
    check_text,
    require_id,
)

_TOP_LEVEL = frozenset(config_pb2.SimulationConfig.DESCRIPTOR.fields_by_name)
_ENVIRONMENT = frozenset(
    f"environment.{name}" for name in config_pb2.Environment.DESCRIPTOR.fields_by_name
)
CONFIG_MASK_PATHS = _TOP_LEVEL | _ENVIRONMENT
MAX_DESCRIPTION_CHARS = 1000


@dataclass(frozen=True)
class ConfigView:
    """A revision of a simulation's config (decoded), with the etag of the current config."""

    simulation_id: str
    revision: storage.ConfigRevision
    etag: str
    config: config_pb2.SimulationConfig


@dataclass(frozen=True)
class RevisionDiff:
    """What changed from revision ``from_revision`` (0: an empty config) to ``to_revision``."""

    simulation_id: str
    from_revision: int
    to_revision: int
    diff: ConfigDiff


@dataclass(frozen=True)
class ListedRevision:
    """A revision in a ListConfigRevisions page and the one before it (None for revision 1)."""

    record: storage.ConfigRevision
    previous: storage.ConfigRevision | None


def config_etag(simulation_id: str, revision: int) -> str:
    """The opaque etag of a simulation's config at ``revision``."""
    digest = hashlib.sha256(f"{simulation_id}:{revision}".encode()).hexdigest()[:16]
    return f"c{revision}-{digest}"


def _revision_of_etag(simulation_id: str, etag: str) -> int | None:
    """The revision number an etag of :func:`config_etag` stands for; None if it is not one."""
    number, dash, _ = etag[1:].partition("-")
    if not etag.startswith("c") or not dash or not (number.isascii() and number.isdigit()):
        return None
    if len(number) > 9:  # past any revision a simulation can have: never a current etag
        return None
    revision = int(number)
    return revision if config_etag(simulation_id, revision) == etag else None


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
                errors.Violation(f"{prefix}.{v.field}" if v.field else prefix, v.description)
                for v in violations
            ],
            reason="CONFIG_INVALID",
        )


def check_sources(
    validator: ConfigValidator, sources: list[config_pb2.Source]
) -> list[errors.Violation]:
    """Every violation of the request's ``sources`` (paths like ``sources[3].uri``)."""
    return validator.validate_sources(sources)


def replaces_everything(paths: list[str]) -> bool:
    """True for an empty mask or ``*``: the given config replaces the stored one whole."""
    return not paths or paths == ["*"]


def apply_mask(
    current: config_pb2.SimulationConfig, given: config_pb2.SimulationConfig, paths: list[str]
) -> config_pb2.SimulationConfig:
    """``current`` with the fields named by ``paths`` replaced by those of ``given``.

    An empty mask or ``*`` replaces the whole config. Unknown paths are ``INVALID_ARGUMENT``.
    """
    if replaces_everything(paths):
        return given
    unknown = [
        errors.Violation(
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

    def __init__(
        self,
        database: storage.Database,
        validator: ConfigValidator | None = None,
        revision_configs: RevisionConfigs | None = None,
        cache: ReadCache[ConfigView] | None = None,
    ):
        self._database = database
        self._validator = validator or ConfigValidator()
        self._configs = revision_configs or RevisionConfigs()
        # Warm current configs by simulation id from memory (service.app.read_cache); without
        # one, a cache with no room: every read goes to the database.
        self._cache: ReadCache[ConfigView] = (
            cache if cache is not None else ReadCache(max_entries=0)
        )

    def config_of(self, revision: storage.ConfigRevision) -> config_pb2.SimulationConfig:
        """The decoded config of a stored revision."""
        return self._configs.config(
            revision.tenant_id, revision.simulation_id, revision.revision, revision.config
        )

    @transactional
    def get_config(self, principal: Principal, simulation_id: str, revision: int = 0) -> ConfigView:
        """The current config, or revision ``revision`` (1 or more)."""
        require_id(simulation_id, "simulation_id")
        if revision < 0:
            raise errors.InvalidArgument.field("revision", "must be 0 (current) or a revision ≥ 1")
        if revision:
            return self._read_config(principal.tenant_id, simulation_id, revision)
        # Only the current config is kept in memory: the one services read again and again.
        tenant_id = principal.tenant_id
        return self._cache.read_through(
            simulation_id,
            tenant_id,
            _tenant_of_view,
            lambda: self._read_config(tenant_id, simulation_id, 0),
        )

    def _read_config(self, tenant_id: str, simulation_id: str, revision: int) -> ConfigView:
        with self._database.read_unit_of_work() as uow:
            current, stored = uow.revisions.get_of_live_simulation(
                tenant_id, simulation_id, revision
            )
        if stored is None:
            if not revision:
                raise errors.NotFound("config", simulation_id)
            raise errors.NotFound("config_revision", f"{simulation_id}@{revision}")
        return ConfigView(
            simulation_id, stored, config_etag(simulation_id, current), self.config_of(stored)
        )

    def validate_config(self, config: config_pb2.SimulationConfig) -> None:
        """Raises ``InvalidArgument`` with every violation; stores nothing."""
        check_config(self._validator, config)

    @transactional
    def update_config(
        self,
        principal: Principal,
        simulation_id: str,
        config: config_pb2.SimulationConfig,
        *,
        sources: Sequence[config_pb2.Source] = (),
        mask: Sequence[str] = (),
        etag: str = "",
        description: str = "",
        validate_only: bool = False,
        request_id: str = "",
    ) -> ConfigView:
        """Writes a new revision (origin EDIT); the simulation returns to COMPLETED_CONFIG.

        A retry with the same ``request_id`` and arguments returns the revision the first
        attempt wrote (AIP-155), whatever happened since.
        """
        require_id(simulation_id, "simulation_id")
        _check_description(description)
        # Only the sources sent: stored ones are kept as they were.
        source_violations = [
            *check_sources(self._validator, list(sources)),
            *check_request_id(request_id),
        ]
        if source_violations:
            raise errors.InvalidArgument(source_violations)
        mask = list(mask)
        # Bad mask paths are reported before anything is read.
        apply_mask(config_pb2.SimulationConfig(), config, mask)
        whole = replaces_everything(mask)
        # Only a request id is bound to its arguments: without one there is nothing to compare.
        request = (
            fingerprint(
                rpc="UpdateConfig",
                config=config.SerializeToString(deterministic=True).hex(),
                sources=[source.SerializeToString(deterministic=True).hex() for source in sources],
                mask=mask,
                etag=etag,
                description=description,
            )
            if request_id
            else ""
        )
        with self._database.unit_of_work() as uow:
            replayed = (
                None
                if validate_only
                else self._replayed(uow, principal, simulation_id, request_id, request)
            )
            if replayed is not None:
                return replayed
            expected = _revision_of_etag(simulation_id, etag)
            if (
                whole
                and expected is not None
                and not validate_only
                and not self._validator.validate(config)
            ):
                # The common edit (a whole valid config, with its etag): one statement that
                # checks and writes. If it wrote nothing, the usual path below says why.
                written = replace_config(
                    uow,
                    principal.tenant_id,
                    simulation_id,
                    expected_revision=expected,
                    config=config,
                    sources=list(sources),
                    actor=principal.key_id,
                    description=description,
                    now=utc_now(),
                    request_id=request_id,
                    request_fingerprint=request or None,
                )
                if written is not None:
                    uow.commit()
                    view = ConfigView(
                        simulation_id, written[1], config_etag(simulation_id, expected + 1), config
                    )
                    self._remember(view)
                    return view
            current, stored = self._editable(
                uow, principal, simulation_id, etag, with_config=not whole
            )
            if whole:
                merged = config
            else:
                base = (
                    config_from_document(stored.config) if stored else config_pb2.SimulationConfig()
                )
                merged = apply_mask(base, config, mask)
            check_config(self._validator, merged)
            kept = list(sources) or (sources_from_documents(stored.sources) if stored else [])
            view = self._write(
                uow,
                principal,
                current,
                merged,
                kept,
                "EDIT",
                description,
                validate_only,
                request_id=request_id,
                request_fingerprint=request or None,
            )
            if validate_only:
                return view
            uow.commit()
        self._remember(view)
        return view

    @transactional
    def rollback(
        self,
        principal: Principal,
        simulation_id: str,
        revision: int,
        *,
        etag: str = "",
        description: str = "",
        request_id: str = "",
    ) -> ConfigView:
        """Writes a new revision (origin ROLLBACK) copying ``revision``; it must still be valid.

        A retry with the same ``request_id`` and arguments returns the revision the first
        attempt wrote (AIP-155).
        """
        require_id(simulation_id, "simulation_id")
        if revision <= 0:
            raise errors.InvalidArgument.field("revision", f"must be 1 or more, got {revision}")
        _check_description(description)
        request_id_violations = check_request_id(request_id)
        if request_id_violations:
            raise errors.InvalidArgument(request_id_violations)
        request = fingerprint(
            rpc="RollbackConfig", revision=revision, etag=etag, description=description
        )
        with self._database.unit_of_work() as uow:
            replayed = self._replayed(uow, principal, simulation_id, request_id, request)
            if replayed is not None:
                return replayed
            current, _ = self._editable(uow, principal, simulation_id, etag, with_config=False)
            target = uow.revisions.get(principal.tenant_id, simulation_id, revision)
            config = config_from_document(target.config)
            # Rules may have tightened since the revision was written.
            check_config(self._validator, config)
            note = description or f"rollback to revision {revision}"
            sources = sources_from_documents(target.sources)
            view = self._write(
                uow,
                principal,
                current,
                config,
                sources,
                "ROLLBACK",
                note,
                False,
                request_id=request_id,
                request_fingerprint=request,
            )
            uow.commit()
        self._remember(view)
        return view

    @transactional
    def create_with_config(
        self,
        principal: Principal,
        values: SimulationInput,
        config: config_pb2.SimulationConfig,
        *,
        sources: Sequence[config_pb2.Source] = (),
        request_id: str = "",
        validate_only: bool = False,
    ) -> storage.Simulation:
        """Creates a simulation in COMPLETED_CONFIG with revision 1 (origin IMPORT)."""
        violations = [
            *values.violations(),
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

        request = fingerprint(
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
            fingerprint=request,
            validate_only=validate_only,
            store=store,
        )

    @transactional
    def diff_revisions(
        self, principal: Principal, simulation_id: str, from_revision: int = 0, to_revision: int = 0
    ) -> RevisionDiff:
        """The JSON Patch and changed paths from one revision of the config to another.

        ``to_revision`` 0 is the current revision; ``from_revision`` 0 the one before
        ``to_revision`` (an empty config before revision 1). Either may be the older one.
        """
        require_id(simulation_id, "simulation_id")
        for field, number in (("from_revision", from_revision), ("to_revision", to_revision)):
            if number < 0:
                raise errors.InvalidArgument.field(
                    field, f"must be 0 or a revision number of 1 or more, got {number}"
                )
        tenant_id = principal.tenant_id
        with self._database.read_unit_of_work() as uow:
            current, after = uow.revisions.get_of_live_simulation(
                tenant_id, simulation_id, to_revision
            )
            if after is None:
                if not to_revision:
                    raise errors.NotFound("config", simulation_id)
                raise errors.NotFound("config_revision", f"{simulation_id}@{to_revision}")
            from_number = from_revision or after.revision - 1
            before = (
                uow.revisions.get(tenant_id, simulation_id, from_number) if from_number else None
            )
        diff = diff_configs(
            self.config_of(before) if before is not None else None, self.config_of(after)
        )
        return RevisionDiff(simulation_id, from_number, after.revision, diff)

    def changes_of(self, listed: ListedRevision) -> ConfigDiff:
        """What a listed revision changed from the one before it."""
        previous = listed.previous
        return diff_configs(
            self.config_of(previous) if previous is not None else None,
            self.config_of(listed.record),
        )

    @transactional
    def list_revisions(
        self, principal: Principal, simulation_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> Page:
        """Revisions newest first, one page at a time, each a :class:`ListedRevision`."""
        return page_of_simulation(
            self._database,
            principal,
            simulation_id,
            page_size=page_size,
            page_token=page_token,
            kind="config_revisions",
            cursor_range=IntRange(1, 2**31),
            read=lambda uow, before, limit: _with_previous(
                uow, principal.tenant_id, simulation_id, before, limit
            ),
            cursor_of=lambda listed: listed.record.revision,
        )

    # -- shared steps ----------------------------------------------------------------------------

    def _editable(
        self, uow, principal: Principal, simulation_id: str, etag: str, *, with_config: bool = True
    ):
        """The simulation, locked, and its current revision, once etag and status allow an edit.

        ``with_config=False``: the revision's config is left out (empty), for a whole replacement.
        """
        current, stored = uow.revisions.lock_simulation_with_current(
            principal.tenant_id, simulation_id, with_config=with_config
        )
        if etag and etag != config_etag(simulation_id, current.current_revision):
            raise errors.EtagMismatch("config", simulation_id)
        lifecycle.check_config_edit(current.status, simulation_id=simulation_id)
        return current, stored

    def _replayed(
        self, uow, principal: Principal, simulation_id: str, request_id: str, request: str
    ) -> ConfigView | None:
        """The view of the revision a request with ``request_id`` already wrote, or None.

        A request id reused with other arguments is ``INVALID_ARGUMENT`` (REQUEST_ID_REUSED).
        """
        if not request_id:
            return None
        prior = uow.revisions.find_by_request(principal.tenant_id, simulation_id, request_id)
        if prior is None:
            return None
        first_result(prior, prior.request_fingerprint, request, "config revision")
        return ConfigView(
            simulation_id,
            prior,
            config_etag(simulation_id, prior.revision),
            config_from_document(prior.config),
        )

    def _write(
        self,
        uow,
        principal,
        current,
        config,
        sources,
        origin,
        description,
        dry_run,
        *,
        request_id: str = "",
        request_fingerprint: str | None = None,
    ):
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
            return ConfigView(current.id, preview, config_etag(current.id, number), config)
        updated, revision = write_revision(
            uow,
            current,
            config=config,
            sources=sources,
            origin=origin,
            actor=principal.key_id,
            description=description,
            now=now,
            request_id=request_id,
            request_fingerprint=request_fingerprint,
        )
        return ConfigView(
            current.id, revision, config_etag(current.id, updated.current_revision), config
        )

    def _remember(self, view: ConfigView) -> None:
        # Only once committed: a revision number of a rolled-back write is written again.
        # Decoding it again for the next read would cost more than the write's own queries.
        revision = view.revision
        self._configs.remember(
            revision.tenant_id, revision.simulation_id, revision.revision, view.config
        )


def _tenant_of_view(view: ConfigView) -> str:
    return view.revision.tenant_id


def _with_previous(
    uow: storage.ReadUnitOfWork, tenant_id: str, simulation_id: str, before: int | None, limit: int
) -> list[ListedRevision]:
    """Up to ``limit`` revisions, newest first, each with the revision before it.

    Revision numbers run 1, 2, 3, … with no gaps, so each row's predecessor is the next row,
    and the last one's is the row a full page reads past its end (or none: it is revision 1).
    """
    rows = uow.revisions.list_of_live_simulation(
        tenant_id, simulation_id, before_revision=before, limit=limit
    )
    listed = []
    for index, row in enumerate(rows):
        previous = rows[index + 1] if index + 1 < len(rows) else None
        if previous is None and row.revision > 1 and len(rows) < limit:
            previous = uow.revisions.get(tenant_id, simulation_id, row.revision - 1)
        listed.append(ListedRevision(row, previous))
    return listed


def _check_description(description: str) -> None:
    violations = check_text(description, "description", max_length=MAX_DESCRIPTION_CHARS)
    if violations:
        raise errors.InvalidArgument(violations)
