"""request_id (AIP-155): a retry gets the first result, a different request is refused.

The comparison is with the request that created the resource (its fingerprint), not with the
resource as it is now: edits do not break a late retry, and differences that are not stored on
the resource (architect parameters, the imported config) are still caught. The scenario case
runs on the fake database in test_scenario_use_cases.py.
"""

from __future__ import annotations

import pytest
from simulation.v1 import config_pb2

from service.app.configs import ConfigOperations
from service.app.simulation_writes import SimulationInput
from service.architect.jobs import ArchitectOperations, PromptedSimulation
from service.domain import errors
from service.domain.validation import ConfigValidator
from tests.unit.simulation_api import valid_config


def test_a_create_with_config_reusing_an_id_with_another_config_is_refused(database, principals):
    alice = principals["alice"]
    ops = ConfigOperations(database, ConfigValidator())
    first = ops.create_with_config(
        alice, SimulationInput(name="Sim"), valid_config(), request_id="c-1"
    )
    assert (
        ops.create_with_config(
            alice, SimulationInput(name="Sim"), valid_config(), request_id="c-1"
        ).id
        == first.id
    )

    with pytest.raises(errors.InvalidArgument) as caught:
        ops.create_with_config(
            alice, SimulationInput(name="Sim"), valid_config(title="Other"), request_id="c-1"
        )
    assert caught.value.reason == "REQUEST_ID_REUSED"


def test_a_create_from_a_prompt_reusing_an_id_with_other_parameters_is_refused(
    database, principals
):
    alice = principals["alice"]
    ops = ArchitectOperations(database, ConfigValidator())

    def create(num_agents: int):
        return ops.create_simulation(
            alice,
            PromptedSimulation(
                simulation=SimulationInput(name="Sim", prompt="a market"),
                parameters=config_pb2.ArchitectParameters(num_agents=num_agents, max_turns=5),
                request_id="p-1",
            ),
        )

    first = create(3)
    assert create(3).id == first.id
    with pytest.raises(errors.InvalidArgument) as caught:
        create(4)
    assert caught.value.reason == "REQUEST_ID_REUSED"
