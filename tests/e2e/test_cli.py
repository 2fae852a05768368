"""The simconfig command line, run as a user would run it."""

from __future__ import annotations

import json
import re

from tests.processes import ServerProcess, environment, free_port, grpcurl, simconfig, status_name


def test_tenant_and_key_commands(tmp_path):
    env = environment(tmp_path)
    assert simconfig(env, "migrate").returncode == 0
    tenant_id = simconfig(env, "tenants", "create", "acme").stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", tenant_id)
    assert "acme" in simconfig(env, "tenants", "list").stdout

    created = simconfig(env, "keys", "create", "--tenant", tenant_id, "--scope", "read")
    key = created.stdout.strip()
    assert key.startswith("sck_") and "shown only once" in created.stderr
    key_id = key.split("_")[1]
    listing = simconfig(env, "keys", "list", "--tenant", tenant_id).stdout
    assert key_id in listing and "read" in listing and "active" in listing
    assert key not in listing  # the secret is never shown again

    assert simconfig(env, "keys", "revoke", key_id).returncode == 0
    assert "revoked" in simconfig(env, "keys", "list", "--tenant", tenant_id).stdout


def test_list_commands_print_a_header_or_json(tmp_path):
    env = environment(tmp_path)
    simconfig(env, "migrate")
    tenant_id = simconfig(env, "tenants", "create", "acme").stdout.strip()
    key_id = simconfig(env, "keys", "create", "--tenant", tenant_id).stdout.strip().split("_")[1]

    header, row = simconfig(env, "tenants", "list").stdout.splitlines()
    assert header.split("\t") == ["ID", "NAME", "CREATE_TIME"]
    assert row.split("\t")[:2] == [tenant_id, "acme"]
    header, row = simconfig(env, "keys", "list", "--tenant", tenant_id).stdout.splitlines()
    assert header.split("\t") == ["ID", "SCOPE", "STATE", "CREATE_TIME", "DESCRIPTION"]
    assert row.split("\t")[:3] == [key_id, "write", "active"]

    (tenant,) = json.loads(simconfig(env, "tenants", "list", "--json").stdout)
    assert (tenant["id"], tenant["name"]) == (tenant_id, "acme") and tenant["create_time"]
    (key,) = json.loads(simconfig(env, "keys", "list", "--tenant", tenant_id, "--json").stdout)
    assert (key["id"], key["scope"], key["state"]) == (key_id, "write", "active")


def test_bad_arguments_exit_non_zero_with_a_message(tmp_path):
    env = environment(tmp_path)
    simconfig(env, "migrate")
    cases = [
        ("keys", "create"),  # --tenant missing
        ("keys", "create", "--tenant", "nope"),
        ("keys", "create", "--tenant", "x", "--scope", "admin"),
        ("keys", "revoke", "nope"),
        ("tenants", "create", ""),
        ("frobnicate",),
    ]
    for args in cases:
        result = simconfig(env, *args, check=False)
        assert result.returncode != 0, args
        assert result.stderr.strip(), args
        assert "Traceback" not in result.stderr, (args, result.stderr)


def test_bad_setting_names_the_variable(tmp_path):
    env = environment(tmp_path, SIMCONFIG_PORT="not-a-port")
    result = simconfig(env, "serve", check=False)
    assert result.returncode == 2
    assert "SIMCONFIG_PORT" in result.stderr


def test_serve_creates_a_demo_tenant_once_and_stops_gracefully(tmp_path):
    env = environment(tmp_path, free_port())
    first = ServerProcess(env).wait_ready()
    try:
        match = re.search(r"SIMCONFIG_API_KEY=(sck_\S+)", first.output)
        assert match, first.output
        assert "grpcurl" in first.output
        code, body, output = grpcurl(
            first.address, "simulation.v1.ScenarioService/ListScenarios", {}, match.group(1)
        )
        assert code == 0, output
    finally:
        assert first.stop() == 0
    assert "stopped" in first.output

    second = ServerProcess(environment(tmp_path, free_port())).wait_ready()
    try:
        assert "SIMCONFIG_API_KEY=" not in second.output
        code, _, _ = grpcurl(
            second.address, "simulation.v1.ScenarioService/ListScenarios", {}, match.group(1)
        )
        assert status_name(code) == "OK"
    finally:
        second.stop()


def test_admin_commands_on_an_unmigrated_database_say_to_migrate(tmp_path):
    env = environment(tmp_path)
    result = simconfig(env, "tenants", "create", "acme", check=False)
    assert result.returncode == 1
    assert "simconfig migrate" in result.stderr and "Traceback" not in result.stderr


def test_serve_never_creates_a_demo_tenant_on_postgresql(tmp_path, empty_postgres_url):
    env = environment(tmp_path, free_port(), empty_postgres_url)
    server = ServerProcess(env).wait_ready()
    try:
        assert "SIMCONFIG_API_KEY=" not in server.output
        assert "database: postgresql" in server.output
    finally:
        server.stop()
    assert simconfig(env, "tenants", "list").stdout.splitlines() == ["ID\tNAME\tCREATE_TIME"]


def test_serve_refuses_a_database_without_the_current_schema(tmp_path):
    env = environment(tmp_path, free_port())
    result = simconfig(env, "serve", "--no-migrate", check=False)
    assert result.returncode == 1
    assert "simconfig migrate" in result.stderr and "Traceback" not in result.stderr


def test_an_unusable_data_dir_names_the_variable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = environment(blocker)
    for args in (("serve",), ("tenants", "list")):
        result = simconfig(env, *args, check=False)
        assert result.returncode == 2, result.stderr
        assert "SIMCONFIG_DATA_DIR" in result.stderr and "Traceback" not in result.stderr


def test_a_taken_port_fails_before_any_demo_key_is_printed(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = environment(tmp_path, port)
        result = simconfig(env, "serve", check=False)
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "SIMCONFIG_API_KEY" not in result.stdout + result.stderr
    # The next start on a free port still gets its demo key.
    server = ServerProcess(environment(tmp_path, free_port())).wait_ready()
    try:
        assert "SIMCONFIG_API_KEY=" in server.output
    finally:
        server.stop()
