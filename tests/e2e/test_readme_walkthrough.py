"""The README's walkthroughs work when pasted into a shell.

Every ```sh block under a "Walkthrough" heading is run with bash, in order,
against a real ``simconfig serve`` on the embedded database, with the demo key
the server printed.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.processes import ServerProcess, environment, free_port

ROOT = Path(__file__).resolve().parents[2]
# Output that means a pasted command itself was wrong (not an expected API error).
BROKEN = (
    "command not found",
    "error getting request data",
    "Failed to dial",
    "Usage:",
    "Traceback",
    "Too many arguments",
)


def walkthrough_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    blocks = []
    for section in re.split(r"^## ", text, flags=re.MULTILINE):
        title = section.splitlines()[0] if section else ""
        if "Walkthrough" in title:
            for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
                blocks.append((title, block))
    return blocks


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


@pytest.mark.parametrize("title, block", walkthrough_blocks(), ids=lambda v: v[:30])
def test_walkthrough_block_runs_when_pasted(demo_server, title, block):
    key = re.search(r"export SIMCONFIG_API_KEY=(\S+)", demo_server.output).group(1)
    script = block.replace("127.0.0.1:50051", demo_server.address)
    env = dict(os.environ, SIMCONFIG_API_KEY=key)
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    for marker in BROKEN:
        assert marker not in output, f"{title}: {marker!r} in output:\n{output}"
    # Expected failures in the walkthrough are labelled; everything else succeeds.
    assert "Code: Internal" not in output and "Code: Unimplemented" not in output, output
    assert '"status": "SERVING"' in output or "SERVING" not in block, output
