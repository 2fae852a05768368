"""What the deployment files say, read the way Docker and Compose read them.

No container engine runs where the tests do, so the tests read the Dockerfile and
``deploy/compose.yaml`` themselves and run what they say outside a container.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from service.settings import PREFIX, Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


@dataclass
class Dockerfile:
    """The instructions of a single-stage Dockerfile that say how its container runs."""

    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    # (sources relative to the build context, absolute destination in the image)
    copies: list[tuple[list[str], str]] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    expose: list[int] = field(default_factory=list)
    healthcheck_options: dict[str, str] = field(default_factory=dict)
    healthcheck: list[str] = field(default_factory=list)

    def host_path(self, container_path: str) -> Path | None:
        """The file of the build context that COPY put at `container_path`, if any."""
        for sources, destination in self.copies:
            if container_path == destination and len(sources) == 1:
                return REPO / sources[0]
            prefix = destination.rstrip("/") + "/"
            if container_path.startswith(prefix) and len(sources) == 1:
                return REPO / sources[0] / container_path.removeprefix(prefix)
        return None


def _logical_lines(text: str) -> list[str]:
    """Instructions one per line: continuations joined, comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not current):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        lines.append(current + line)
        current = ""
    return lines


def read_dockerfile(path: Path = REPO / "Dockerfile") -> Dockerfile:
    parsed = Dockerfile()
    for line in _logical_lines(path.read_text()):
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                parsed.env[name] = value
        elif instruction == "WORKDIR":
            parsed.workdir = posixpath.join(parsed.workdir, rest)
        elif instruction == "COPY":
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            destination = posixpath.normpath(posixpath.join(parsed.workdir, words[-1]))
            parsed.copies.append((words[:-1], destination))
        elif instruction == "ENTRYPOINT":
            parsed.entrypoint = json.loads(rest)
        elif instruction == "CMD":
            parsed.cmd = json.loads(rest)
        elif instruction == "EXPOSE":
            parsed.expose = [int(port.split("/")[0]) for port in rest.split()]
        elif instruction == "HEALTHCHECK":
            options, _, command = rest.partition(" CMD ")
            for option in options.split():
                name, _, value = option.removeprefix("--").partition("=")
                parsed.healthcheck_options[name] = value
            parsed.healthcheck = json.loads(command)
    return parsed


def read_compose(path: Path = DEPLOY / "compose.yaml") -> dict:
    """The compose file as Compose sees it (YAML merge keys resolved), before interpolation."""
    return yaml.safe_load(path.read_text())


def environment(service: dict) -> dict[str, str]:
    """A compose service's `environment`, in either of its two forms."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}")


def interpolated(value: str, values: dict[str, str]) -> str:
    """`${NAME}`, `${NAME:?message}`, `${NAME:-default}` replaced by values[NAME]."""
    return INTERPOLATION.sub(lambda match: values[match.group(1)], value)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as `set -a; . FILE` and Compose's env_file read these simple ones."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


def server_settings() -> set[str]:
    """Every SIMCONFIG_* variable the server reads: one per field of its Settings."""
    return {PREFIX + name.upper() for name in Settings.model_fields}


def gateway_settings() -> set[str]:
    """Every SIMCONFIG_* variable deploy/gateway.py reads."""
    return set(re.findall(r"\bSIMCONFIG_[A-Z0-9_]+\b", (DEPLOY / "gateway.py").read_text()))
