"""The README's walkthroughs work when pasted into a shell, and say what the README says.

Every ```sh block under a "Walkthrough" heading is run with bash, in order, against a real
``simconfig serve`` on the embedded database, with the demo key the server printed. A block is
cut into steps at its comments; each step's exit codes and output are checked against
``EXPECTED`` below, so a command that fails, or prints the wrong thing, fails the test. The
few commands the README shows failing on purpose must fail with the status it names.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.processes import ServerProcess, environment, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Step:
    """What one commented step of a walkthrough must do.

    ``fails`` names the gRPC status of each command that fails on purpose, in order (grpcurl
    exits with 64 + the code); every other command must exit 0. ``prints`` must all appear in
    the step's output and ``never`` must not.
    """

    fails: tuple[str, ...] = ()
    prints: tuple[str, ...] = ()
    never: tuple[str, ...] = ()


# Keyed by the step's first comment line (or "" for the lines before the first comment).
EXPECTED = {
    # -- Walkthrough with grpcurl --
    "": Step(),
    "a shell function that sends the key with every call": Step(),
    "What the server offers (reflection needs no key)": Step(
        prints=("simulation.v1.ScenarioService", "rpc CreateScenario", "grpc.health.v1.Health")
    ),
    "Create a scenario": Step(prints=('"display_name": "Pricing war"', '"team": "risk"')),
    "Keep its id and etag": Step(),
    "List, filter, page": Step(prints=('"display_name": "Pricing war"',)),
    "Get": Step(prints=('"display_name": "Pricing war"', '"etag"')),
    "Update only the description": Step(prints=('"description": "Q3 price moves"',)),
    "A stale etag is refused with ABORTED": Step(fails=("ABORTED",), prints=("Code: Aborted",)),
    "Soft-delete, see it with show_deleted, undelete": Step(prints=('"delete_time"',)),
    "Bad input is INVALID_ARGUMENT with every field violation listed": Step(
        fails=("INVALID_ARGUMENT",),
        prints=("Code: InvalidArgument", "scenario.display_name"),
    ),
    "Health (no key needed)": Step(prints=('"status": "SERVING"',)),
    # -- Walkthrough: configs, revisions and runs --
    "Bring your own config (bypasses the architect); lands in COMPLETED_CONFIG as revision 1": (
        Step()
    ),
    "Dry-run a broken config: every violation is listed with its path": Step(
        fails=("INVALID_ARGUMENT",),
        prints=(
            "Code: InvalidArgument",
            "config.title",
            "config.agents[0].id",
            "config.agents[2].id",
            "config.events[0].turn",
            "config.events[0].agent_ids[0]",
        ),
    ),
    "Read the current config and its etag": Step(
        prints=('"revision": 1', '"max_turns": 10', '"etag"')
    ),
    "Change only max_turns (revision 2), conditional on the etag": Step(
        prints=('"revision": 2', '"max_turns": 20')
    ),
    "The same etag again is now stale: ABORTED": Step(
        fails=("ABORTED",), prints=("Code: Aborted",)
    ),
    "Revisions, newest first; roll back to revision 1 (as a new revision 3)": Step(
        prints=('"revision": 3', '"origin": "ROLLBACK"', '"max_turns": 10')
    ),
    "The simulator runs it: start, then complete with results": Step(
        prints=(
            '"status": "RUNNING"',
            '"status": "COMPLETED"',
            '"sales": 42',
            '"summary": "alice sold first"',
        )
    ),
    "Editing after the run: back to COMPLETED_CONFIG, results and analysis cleared": Step(
        prints=('"title": "Market day, take 2"', '"status": "COMPLETED_CONFIG"'),
        never=('"sales": 42', '"summary"'),
    ),
    "The audit trail: every transition and config change, oldest first": Step(
        prints=('"kind": "CREATED"', '"kind": "CONFIG_CHANGED"', '"to_status": "RUNNING"')
    ),
    "Find simulations by status and label": Step(prints=('"name": "Market day"',)),
    # -- Walkthrough: what changed between revisions, and searching inside configs --
    "An auction with two revisions: the second runs longer and gives Bob a persona": Step(),
    "What changed from revision 1 to the current one, as a JSON Patch and as field paths": Step(
        prints=(
            '"path": "/agents/1/persona"',
            '"value": "haggles"',
            '"from_revision": 1',
            '"to_revision": 2',
            '"agents[1].persona"',
            '"max_turns"',
        ),
        never=('"/title"',),
    ),
    "Each listed revision names the fields it changed": Step(
        prints=('"agents[1].persona"', '"title"')
    ),
    "Search inside the current configs, with AND, OR, NOT and comparisons": Step(
        prints=('"name": "Auction"',), never=('"name": "Market day"',)
    ),
    "A mistake names what is wrong and where": Step(
        fails=("INVALID_ARGUMENT",),
        prints=("config.max_turns is a number; write it unquoted (at column 18)",),
    ),
    # -- Walkthrough: from a prompt to a config (the architect) --
    "Queue the architect and wait (bounded by the call's deadline) for the config": Step(),
    "The generated config: 15 turns, 5 agents, and the personas it drew on as sources": Step(
        prints=('"max_turns": 15', '"origin": "ARCHITECT"', '"sources"')
    ),
    "Re-run with another seed: revision 2, origin ARCHITECT": Step(
        prints=('"status": "COMPLETED_CONFIG"', '"config_revision": 2')
    ),
    "Out-of-range parameters are refused before anything is queued": Step(
        fails=("INVALID_ARGUMENT",),
        prints=("Code: InvalidArgument", "parameters.num_agents", "parameters.max_turns"),
    ),
    # -- Walkthrough: bulk operations --
    "Create three scenarios in one call (safe to retry with the same request_id)": Step(
        prints=('"display_name": "Q1 north"', '"display_name": "Q1 archive"')
    ),
    "Every bad item is named by its index; nothing is stored": Step(
        fails=("INVALID_ARGUMENT",),
        prints=("requests[1].scenario.display_name", "requests[2].scenario.display_name"),
    ),
    'Two simulations, then move both into "Q1 north" and read them back in one call': Step(
        prints=('"name": "stall 2"', '"name": "stall 1"', '"scenario_id"')
    ),
    "Delete two scenarios at once; the one holding simulations needs force": Step(
        prints=('"display_name": "Q1 archive"', '"delete_time"')
    ),
    # -- Walkthrough: templates --
    "The built-in presets, readable by every tenant": Step(
        prints=('"id": "preset-market-day"', '"builtin": true')
    ),
    "Save a template of your own (revision 1)": Step(),
    "Start a simulation from it, overriding max_turns only": Step(
        prints=('"origin": "TEMPLATE"', '"max_turns": 30', "/revisions/1")
    ),
    "Edit the template's config: revision 2; the simulation above keeps revision 1's config": (
        Step(prints=('"revision": 2', '"max_turns": 12'))
    ),
    "Save a simulation's config back as a new template": Step(
        prints=('"display_name": "Stall, long day"', '"max_turns": 30')
    ),
    "Presets cannot be changed": Step(fails=("FAILED_PRECONDITION",), prints=("TEMPLATE_BUILTIN",)),
    # -- Walkthrough: watching changes as they happen --
    "A simulation to watch": Step(),
    "Its history, then whatever commits next (-max-time ends the stream: DEADLINE_EXCEEDED)": (
        Step(
            fails=("DEADLINE_EXCEEDED",),
            prints=('"kind": "CREATED"', '"kind": "CONFIG_CHANGED"', '"resume_token"'),
            never=('"to_status": "RUNNING"',),
        )
    ),
    "Continue after the last event seen: only what happened since arrives": Step(
        fails=("DEADLINE_EXCEEDED",),
        prints=('"to_status": "RUNNING"',),
        never=('"kind": "CREATED"', '"kind": "CONFIG_CHANGED"'),
    ),
    # -- Walkthrough: webhooks --
    "Register an endpoint for status changes: the signing secret is in this answer only": Step(
        prints=('"secret": "whsec_', '"state": "ACTIVE"', '"STATUS_CHANGED"')
    ),
    "Cloud metadata, loopback and private addresses are refused (unless the operator allows them)": (
        Step(fails=("INVALID_ARGUMENT",), prints=("webhook.url", "link-local"))
    ),
    "The tenant's endpoints (secrets are never shown again; RotateWebhookSecret makes a new one)": (
        Step(prints=('"description": "run dashboard"',), never=("whsec_",))
    ),
}


def walkthrough_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    blocks = []
    for section in re.split(r"^## ", text, flags=re.MULTILINE):
        title = section.splitlines()[0] if section else ""
        if "Walkthrough" in title:
            for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
                blocks.append((title, block))
    return blocks


def steps_of(block: str) -> list[tuple[str, str]]:
    """The block cut at its comments: (first comment line, the commands under it).

    Comments sit between whole commands in the README, so each step is complete shell.
    """
    steps: list[tuple[str, list[str]]] = [("", [])]
    for line in block.splitlines():
        if line.startswith("#"):
            if steps[-1][1]:
                steps.append((line.lstrip("# ").strip(), []))
            continue
        steps[-1][1].append(line)
    return [(title, "\n".join(lines)) for title, lines in steps if "".join(lines).strip()]


def instrumented(steps: list[tuple[str, str]]) -> str:
    """One script running the steps in order (they share variables and functions).

    An ERR trap records the exit code of every top-level command that fails (a pipeline fails
    when any part does), and markers split the output by step.
    """
    lines = ["exec 2>&1", "set -o pipefail", "failed=()", "trap 'failed+=($?)' ERR"]
    for index, (_, code) in enumerate(steps):
        lines += [
            f"printf '\\n::step %s\\n' {index}",
            code,
            f"printf '\\n::end %s %s\\n' {index} \"${{failed[*]}}\"",
            "failed=()",
        ]
    return "\n".join(lines) + "\n"


def run_steps(steps, address: str, key: str) -> list[tuple[str, list[int]]]:
    """Runs the steps against ``address``; returns each step's output and failed exit codes."""
    script = instrumented(steps).replace("127.0.0.1:50051", address)
    env = dict(os.environ, SIMCONFIG_API_KEY=key)
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    outputs = []
    for index in range(len(steps)):
        match = re.search(
            rf"^::step {index}\n(.*?)^::end {index} ([\d ]*)$",
            result.stdout,
            flags=re.DOTALL | re.MULTILINE,
        )
        assert match, f"step {index} did not finish:\n{result.stdout}"
        outputs.append((match.group(1), [int(code) for code in match.group(2).split()]))
    return outputs


def grpcurl_exit_code(status: str) -> int:
    """grpcurl exits with 64 plus the gRPC status code of a failed call."""
    return 64 + grpc.StatusCode[status].value[0]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("readme")
    process = ServerProcess(environment(data_dir, free_port()))
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def test_readme_has_walkthroughs():
    assert walkthrough_blocks()


def test_every_walkthrough_step_has_an_expectation_and_every_expectation_a_step():
    titles = [title for _, block in walkthrough_blocks() for title, _ in steps_of(block)]
    assert sorted(set(titles)) == sorted(EXPECTED)


@pytest.mark.parametrize("title, block", walkthrough_blocks(), ids=lambda v: v[:30])
def test_walkthrough_block_runs_when_pasted(demo_server, title, block):
    key = re.search(r"export SIMCONFIG_API_KEY=(\S+)", demo_server.output).group(1)
    steps = steps_of(block)

    outcomes = run_steps(steps, demo_server.address, key)

    for (step, _), (output, failed) in zip(steps, outcomes, strict=True):
        expected = EXPECTED[step]
        where = f"{title} / {step!r}:\n{output}"
        assert failed == [grpcurl_exit_code(s) for s in expected.fails], where
        for text in expected.prints:
            assert text in output, f"{text!r} missing from {where}"
        for text in expected.never:
            assert text not in output, f"{text!r} printed by {where}"
