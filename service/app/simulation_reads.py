"""Reads of a simulation and what hangs off it, shared by the simulation and config use cases.

A simulation with its current revision's sources (GetSimulation, and the answer of a
``wait: true`` architect call), and pages of its revisions or events. Each is one statement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import storage
from service.app.authentication import Principal
from service.app.page_tokens import IntRange, Page, PageRequest
from service.domain.validation import require_id


def simulation_with_sources(
    database: storage.Database, principal: Principal, simulation_id: str
) -> tuple[storage.Simulation, list[dict[str, Any]]]:
    """The caller's live simulation and the sources of its current config revision."""
    require_id(simulation_id, "simulation_id")
    with database.read_unit_of_work() as uow:
        return uow.simulations.get_with_sources(principal.tenant_id, simulation_id)


def page_of_simulation(
    database: storage.Database,
    principal: Principal,
    simulation_id: str,
    *,
    page_size: int,
    page_token: str,
    kind: str,
    cursor_range: IntRange,
    read: Callable[[storage.ReadUnitOfWork, int | None, int], list[Any]],
    cursor_of: Callable[[Any], int],
) -> Page:
    """One page of a live simulation's revisions or events (NotFound without the simulation).

    ``read(uow, cursor, limit)`` reads the rows past ``cursor`` (None: from the start), and
    ``cursor_of(row)`` is the integer the next page starts after; page tokens carry it.
    """
    require_id(simulation_id, "simulation_id")
    paging = PageRequest(
        principal.tenant_id,
        page_size,
        page_token,
        cursor_types=(cursor_range,),
        kind=kind,
        simulation_id=simulation_id,
    )
    with database.read_unit_of_work() as uow:
        rows = read(uow, paging.after[0] if paging.after else None, paging.limit)
    return paging.page(rows, lambda row: (cursor_of(row),))
