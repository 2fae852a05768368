"""TemplateService through a real server on both engines: key scopes and tenant isolation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from simulation.v1 import (
    config_pb2,
    config_service_pb2,
    config_service_pb2_grpc,
    simulation_pb2,
    template_pb2,
    template_service_pb2,
    template_service_pb2_grpc,
)

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings

T = template_service_pb2
CONFIG = config_pb2.SimulationConfig(
    title="Market",
    max_turns=10,
    model="sim-small-1",
    agents=[config_pb2.Agent(id="a", name="A")],
)


@dataclass
class Caller:
    """Stubs that call with one key."""

    metadata: tuple
    templates: template_service_pb2_grpc.TemplateServiceStub
    configs: config_service_pb2_grpc.ConfigServiceStub


@dataclass
class Running:
    database: storage.Database
    tenant_id: str
    writer: Caller
    reader: Caller
    stranger: Caller


@pytest.fixture(params=["sqlite", "postgresql"])
def running(request, tmp_path) -> Iterator[Running]:
    name = "migrated_sqlite_url" if request.param == "sqlite" else "migrated_postgres_url"
    database = storage.Database(request.getfixturevalue(name))
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0), database=database
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def caller(tenant_id: str, scope: str) -> Caller:
        key = tenants.issue_key(database, tenant_id, scope).secret
        return Caller(
            (("x-api-key", key),),
            template_service_pb2_grpc.TemplateServiceStub(channel),
            config_service_pb2_grpc.ConfigServiceStub(channel),
        )

    acme = tenants.new_tenant(database, "acme").id
    other = tenants.new_tenant(database, "other").id
    yield Running(
        database, acme, caller(acme, "write"), caller(acme, "read"), caller(other, "write")
    )
    channel.close()
    server.stop(0)
    database.dispose()


def _template(caller: Caller, name: str = "Market") -> template_pb2.Template:
    return caller.templates.CreateTemplate(
        T.CreateTemplateRequest(template=template_pb2.Template(display_name=name, config=CONFIG)),
        metadata=caller.metadata,
        timeout=10,
    ).template


def _simulation(caller: Caller) -> simulation_pb2.Simulation:
    return caller.configs.CreateSimulationWithConfig(
        config_service_pb2.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name="Sim"), config=CONFIG
        ),
        metadata=caller.metadata,
        timeout=10,
    ).simulation


def _writes(template_id: str, simulation_id: str) -> dict:
    """Every mutating TemplateService RPC, as a call with a caller's stubs."""
    return {
        "CreateTemplate": lambda c: c.templates.CreateTemplate(
            T.CreateTemplateRequest(
                template=template_pb2.Template(display_name="New", config=CONFIG)
            ),
            metadata=c.metadata,
            timeout=10,
        ),
        "UpdateTemplate": lambda c: c.templates.UpdateTemplate(
            T.UpdateTemplateRequest(
                template=template_pb2.Template(id=template_id, description="changed")
            ),
            metadata=c.metadata,
            timeout=10,
        ),
        "DeleteTemplate": lambda c: c.templates.DeleteTemplate(
            T.DeleteTemplateRequest(template_id=template_id), metadata=c.metadata, timeout=10
        ),
        "UndeleteTemplate": lambda c: c.templates.UndeleteTemplate(
            T.UndeleteTemplateRequest(template_id=template_id), metadata=c.metadata, timeout=10
        ),
        "CreateSimulationFromTemplate": lambda c: c.templates.CreateSimulationFromTemplate(
            T.CreateSimulationFromTemplateRequest(
                template_id=template_id, simulation=simulation_pb2.Simulation(name="From")
            ),
            metadata=c.metadata,
            timeout=10,
        ),
        "SaveAsTemplate": lambda c: c.templates.SaveAsTemplate(
            T.SaveAsTemplateRequest(
                simulation_id=simulation_id, template=template_pb2.Template(display_name="Saved")
            ),
            metadata=c.metadata,
            timeout=10,
        ),
    }


def _reads(template_id: str) -> dict:
    return {
        "GetTemplate": lambda c: c.templates.GetTemplate(
            T.GetTemplateRequest(template_id=template_id), metadata=c.metadata, timeout=10
        ),
        "ListTemplates": lambda c: c.templates.ListTemplates(
            T.ListTemplatesRequest(), metadata=c.metadata, timeout=10
        ),
    }


def _stored(running: Running) -> tuple:
    with running.database.read_unit_of_work() as uow:
        templates = uow.templates.list(
            running.tenant_id, storage.TemplateQuery(limit=100, show_deleted=True)
        )
        simulations = uow.simulations.list(running.tenant_id, storage.SimulationQuery(limit=100))
    return sorted((t.id, t.etag) for t in templates), sorted(s.id for s in simulations)


@pytest.mark.parametrize("rpc", list(_writes("", "")))
def test_a_read_only_key_cannot_call_template_writes(running, rpc):
    template = _template(running.writer)
    simulation = _simulation(running.writer)
    before = _stored(running)

    with pytest.raises(grpc.RpcError) as caught:
        _writes(template.id, simulation.id)[rpc](running.reader)

    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _stored(running) == before


@pytest.mark.parametrize("rpc", list(_reads("")))
def test_a_read_only_key_can_read_templates(running, rpc):
    template = _template(running.writer)

    assert _reads(template.id)[rpc](running.reader)


@pytest.mark.parametrize(
    "rpc", ["GetTemplate", *[rpc for rpc in _writes("", "") if rpc != "CreateTemplate"]]
)
def test_another_tenants_template_or_simulation_is_not_found(running, rpc):
    template = _template(running.writer)
    simulation = _simulation(running.writer)
    before = _stored(running)
    calls = {**_reads(template.id), **_writes(template.id, simulation.id)}

    with pytest.raises(grpc.RpcError) as caught:
        calls[rpc](running.stranger)

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert _stored(running) == before
    assert list(_reads("")["ListTemplates"](running.stranger).templates) == []
