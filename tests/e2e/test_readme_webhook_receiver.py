"""The README's 20-line webhook receiver, run as it is printed, verifies real deliveries."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import grpc
from simulation.v1 import config_service_pb2 as cpb
from simulation.v1 import config_service_pb2_grpc, simulation_pb2, webhook_service_pb2_grpc
from simulation.v1 import webhook_service_pb2 as wpb

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from tests.processes import free_port
from tests.unit.simulation_api import valid_config

ROOT = Path(__file__).resolve().parents[2]


def readme_receiver() -> str:
    text = (ROOT / "README.md").read_text()
    (code,) = re.findall(r"```python\n(# receiver\.py.*?)```", text, flags=re.DOTALL)
    return code


def test_the_readme_receiver_has_at_most_20_lines_of_code():
    code = [line for line in readme_receiver().splitlines() if line.strip()]
    assert len([line for line in code if not line.lstrip().startswith("#")]) <= 20


def test_the_readme_receiver_verifies_and_prints_real_deliveries(tmp_path, migrated_sqlite_url):
    database = storage.Database(migrated_sqlite_url)
    tenant = tenants.new_tenant(database, "readme-receiver")
    key = [("x-api-key", tenants.issue_key(database, tenant.id).secret)]
    settings = Settings(
        port=0,
        data_dir=tmp_path,
        architect_workers=0,
        webhook_allow_private=True,
        webhook_poll_seconds=0.05,
        webhook_retry_base_seconds=0.1,
        webhook_retry_max_seconds=0.5,
    )
    server, port = create_server(settings, database=database)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    receiver = None
    try:
        receiver_port = free_port()
        created = webhook_service_pb2_grpc.WebhookServiceStub(channel).CreateWebhook(
            wpb.CreateWebhookRequest(
                webhook=wpb.Webhook(url=f"http://127.0.0.1:{receiver_port}/hooks")
            ),
            metadata=key,
        )
        script = tmp_path / "receiver.py"
        script.write_text(readme_receiver())
        env = dict(os.environ, WEBHOOK_SECRET=created.secret, PORT=str(receiver_port))
        receiver = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda: [lines.put(line) for line in receiver.stdout], daemon=True
        ).start()
        sim = (
            config_service_pb2_grpc.ConfigServiceStub(channel)
            .CreateSimulationWithConfig(
                cpb.CreateSimulationWithConfigRequest(
                    simulation=simulation_pb2.Simulation(name="printed"), config=valid_config()
                ),
                metadata=key,
            )
            .simulation.id
        )
        # Deliveries are retried until the receiver is up, so its start-up needs no wait.
        assert lines.get(timeout=30).split() == ["simulation.created", sim]
    finally:
        if receiver is not None:
            receiver.kill()
            receiver.wait()
        channel.close()
        server.stop(0)
        database.dispose()
