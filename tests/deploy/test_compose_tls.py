"""deploy/compose.tls.yaml: the stack with HTTPS at the gateway and mutual TLS behind it.

No container runs here. The overlay is read as Compose merges it over compose.yaml; the
certificates are the ones `make compose-certs` writes; every path a container is given is
mapped back to the file it mounts, and those files are shown to work: the server's settings
load them, Envoy accepts the gateway config rendered with them, and a real server started with
the servers' settings answers the image's health check and the gateway's client certificate
(under the name the gateway asks for) while refusing a client without one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path, PurePosixPath

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.settings import Settings
from tests.deploy import images
from tests.e2e import gateway_stack
from tests.processes import ServerProcess, environment, free_port

OVERLAY = yaml.safe_load((images.DEPLOY / "compose.tls.yaml").read_text())
BASE = images.read_compose()["services"]
GATEWAY_ENV_FILES = (
    images.DEPLOY / "compose.gateway.env",
    images.DEPLOY / "compose.gateway-tls.env",
)
GATEWAY_TLS_ENV = images.read_env_file(GATEWAY_ENV_FILES[1])
GATEWAY = gateway_stack.gateway_module()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """What `make compose-certs` writes, written by the same command into a scratch dir."""
    directory = tmp_path_factory.mktemp("compose-tls")
    makefile = (images.REPO / "Makefile").read_text()
    recipe = makefile.split("\ncompose-certs:", 1)[1].split("\n\n", 1)[0].strip()
    assert recipe == "python3 deploy/certificates.py deploy/tls"
    subprocess.run(
        [sys.executable, "deploy/certificates.py", str(directory)],
        cwd=images.REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return directory


def mount(service: str) -> tuple[Path, PurePosixPath]:
    """The overlay's one bind mount of a service: (host directory, container directory)."""
    (spec,) = OVERLAY["services"][service]["volumes"]
    source, target, mode = spec.split(":")
    assert mode == "ro", spec
    return (images.DEPLOY / source).resolve(), PurePosixPath(target)


def on_host(service: str, container_path: str, certificates: Path) -> Path:
    """Where a file a container reads really is, with `certificates` as deploy/tls/."""
    host_dir, container_dir = mount(service)
    assert host_dir == images.DEPLOY / "tls"
    relative = PurePosixPath(container_path).relative_to(container_dir)
    return certificates / relative


def server_environment(certificates: Path) -> dict[str, str]:
    """The overlay's server variables with their paths mapped to the certificates made."""
    env = images.environment(OVERLAY["services"]["server"])
    return {name: str(on_host("server", value, certificates)) for name, value in env.items()}


def test_the_overlay_only_adds_tls_settings_and_the_certificate_mount_to_the_stack():
    assert set(OVERLAY["services"]) == {"server", "gateway"} <= set(BASE)
    server_env = images.environment(OVERLAY["services"]["server"])
    assert (
        set(server_env)
        == {
            "SIMCONFIG_TLS_CERT",
            "SIMCONFIG_TLS_KEY",
            "SIMCONFIG_TLS_CLIENT_CA",
        }
        <= images.server_settings()
    )
    assert set(GATEWAY_TLS_ENV) <= images.gateway_settings()
    # Both get deploy/tls read-only at the same place; nothing else changes.
    assert mount("server") == mount("gateway")
    for service, spec in OVERLAY["services"].items():
        assert set(spec) <= {"environment", "volumes"}, service
    # The keys stay out of git and out of every image's build context.
    assert "deploy/tls/" in (images.REPO / ".gitignore").read_text().split()
    assert "deploy/tls" in (images.REPO / ".dockerignore").read_text().split()


def test_the_gateway_reaches_the_servers_by_the_name_their_certificate_carries():
    base_env = images.read_env_file(GATEWAY_ENV_FILES[0])
    assert GATEWAY_TLS_ENV["SIMCONFIG_GATEWAY_UPSTREAM_SERVER_NAME"] == base_env["SIMCONFIG_HOST"]
    text = (images.DEPLOY / "certificates.py").read_text()
    assert f"DNS:{base_env['SIMCONFIG_HOST']}," in text


def test_the_servers_settings_load_the_development_certificates(certificates):
    env = {**images.read_dockerfile().env, **server_environment(certificates)}

    settings = Settings.from_env(env)

    assert settings.uses_tls and settings.tls_client_ca is not None


def render_tls_config(out: Path) -> dict:
    """What `make compose-config-tls` runs, writing to `out`; returns the config."""
    makefile = (images.REPO / "Makefile").read_text()
    recipe = makefile.split("\ncompose-config-tls:", 1)[1].split("\n\n", 1)[0]
    assert ". deploy/compose.gateway.env && . deploy/compose.gateway-tls.env" in recipe
    sources = " && ".join(f'. "{path}"' for path in GATEWAY_ENV_FILES)
    script = f'set -a && {sources} && set +a && "{sys.executable}" deploy/gateway.py render "{out}"'
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMCONFIG_")}
    subprocess.run(["bash", "-c", script], cwd=images.REPO, env=env, check=True, timeout=120)
    return yaml.safe_load(out.read_text())


def test_the_rendered_gateway_config_speaks_tls_both_ways_with_mounted_files(tmp_path):
    config = render_tls_config(tmp_path / "envoy.compose.yaml")

    (listener,) = config["static_resources"]["listeners"]
    downstream = listener["filter_chains"][0]["transport_socket"]["typed_config"]
    (served,) = downstream["common_tls_context"]["tls_certificates"]
    assert served["certificate_chain"]["filename"] == GATEWAY_TLS_ENV["SIMCONFIG_GATEWAY_TLS_CERT"]
    (cluster,) = config["static_resources"]["clusters"]
    upstream = cluster["transport_socket"]["typed_config"]
    assert upstream["sni"] == "server"
    (shown,) = upstream["common_tls_context"]["tls_certificates"]
    assert shown["private_key"]["filename"] == GATEWAY_TLS_ENV["SIMCONFIG_GATEWAY_UPSTREAM_KEY"]
    # Every file the config names is in the directory the overlay mounts into the gateway.
    _, container_dir = mount("gateway")
    for name, value in GATEWAY_TLS_ENV.items():
        if value.startswith("/"):
            assert PurePosixPath(value).parent == container_dir, name


def test_envoy_accepts_the_tls_config_with_the_development_certificates(tmp_path, certificates):
    envoy = gateway_stack.envoy_binary()
    if envoy is None:
        if os.environ.get("SIMCONFIG_REQUIRE_ENVOY") == "1":
            pytest.fail("SIMCONFIG_REQUIRE_ENVOY=1 but no working Envoy binary was found")
        pytest.skip("Envoy binary not found")
    rendered = tmp_path / "envoy.compose.yaml"
    render_tls_config(rendered)
    _, container_dir = mount("gateway")
    local = (
        rendered.read_text()
        .replace(
            images.read_env_file(GATEWAY_ENV_FILES[0])["SIMCONFIG_GATEWAY_DESCRIPTOR"],
            str(GATEWAY.DESCRIPTOR),
        )
        .replace(str(container_dir), str(certificates))
    )
    done = subprocess.run(
        [envoy, "--mode", "validate", "--config-yaml", local, "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def health(channel: grpc.Channel) -> int:
    request = health_pb2.HealthCheckRequest()
    return health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status


def test_a_server_with_the_overlays_settings_lets_in_the_gateway_and_its_health_check_only(
    tmp_path, certificates
):
    port = free_port()
    tls = server_environment(certificates)
    server = ServerProcess(
        environment(tmp_path, port, SIMCONFIG_DEMO_TENANT="false", **tls)
    ).wait_ready()
    try:
        # The image's HEALTHCHECK, with the server's own settings, as in its container.
        check_env = {k: v for k, v in os.environ.items() if not k.startswith("SIMCONFIG_")}
        check_env.update(tls, SIMCONFIG_PORT=str(port))
        done = subprocess.run(
            [sys.executable, str(images.DEPLOY / "healthcheck.py")],
            env=check_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr

        # The gateway: trusts ca.pem, asks for the name `server`, shows gateway.pem.
        def gateway_file(variable: str) -> bytes:
            return on_host("gateway", GATEWAY_TLS_ENV[variable], certificates).read_bytes()

        root = gateway_file("SIMCONFIG_GATEWAY_UPSTREAM_CA")
        override = (("grpc.ssl_target_name_override", "server"),)
        gateway = grpc.ssl_channel_credentials(
            root_certificates=root,
            private_key=gateway_file("SIMCONFIG_GATEWAY_UPSTREAM_KEY"),
            certificate_chain=gateway_file("SIMCONFIG_GATEWAY_UPSTREAM_CERT"),
        )
        with grpc.secure_channel(f"127.0.0.1:{port}", gateway, options=override) as channel:
            assert health(channel) == health_pb2.HealthCheckResponse.SERVING

        anonymous = grpc.ssl_channel_credentials(root_certificates=root)
        with grpc.secure_channel(f"127.0.0.1:{port}", anonymous, options=override) as channel:
            with pytest.raises(grpc.RpcError) as refused:
                health(channel)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()
