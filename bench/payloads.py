"""The messages the benchmark sends: realistic sizes, so the reply sizes are realistic too."""

from __future__ import annotations

from simulation.v1 import config_pb2, scenario_pb2

AGENTS = 20
ROLES = ("buyer", "seller", "regulator", "analyst", "journalist")


def scenario(display_name: str) -> scenario_pb2.Scenario:
    """A scenario as a person would file one: a name, a sentence and two labels."""
    return scenario_pb2.Scenario(
        display_name=display_name,
        description="Quarterly pricing study: how competitors react to a 5% price cut.",
        labels={"team": "pricing", "stage": "draft"},
    )


def config(max_turns: int = 20, agents: int = AGENTS) -> config_pb2.SimulationConfig:
    """A config with ``agents`` agents, each with a persona, attributes and goals."""
    return config_pb2.SimulationConfig(
        title="Market day",
        objective="Observe how prices settle when buyers talk to each other.",
        max_turns=max_turns,
        model="sim-small-1",
        temperature=0.7,
        seed=42,
        agents=[
            config_pb2.Agent(
                id=f"agent-{i:02d}",
                name=f"Agent {i}",
                role=ROLES[i % len(ROLES)],
                persona="Careful with money, curious about new products, trusts friends.",
                attributes={"budget": str(100 + i * 10), "region": "north" if i % 2 else "south"},
                goals=["buy what the household needs", "spend less than last week"],
            )
            for i in range(agents)
        ],
        environment=config_pb2.Environment(
            description="A town market with ten stalls, open from dawn to noon.",
            rules=["prices are posted", "no haggling after noon"],
            parameters={"stalls": "10"},
        ),
        events=[
            config_pb2.ScheduledEvent(
                turn=min(3, max_turns), description="Rain starts", agent_ids=["agent-00"]
            )
        ],
        metrics=[
            config_pb2.Metric(name="sales", kind=config_pb2.Metric.COUNTER),
            config_pb2.Metric(name="satisfaction", kind=config_pb2.Metric.SCORE),
        ],
    )
