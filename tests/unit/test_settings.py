"""Settings come from SIMCONFIG_* variables and bad values name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings, SettingsError


def test_defaults_use_the_embedded_database_on_localhost():
    settings = Settings.from_env({})
    assert settings.uses_embedded_database
    assert settings.address == "127.0.0.1:50051"
    assert settings.data_dir == Path("data")


def test_values_are_read_and_typed():
    settings = Settings.from_env(
        {
            "SIMCONFIG_DATABASE_URL": "postgresql+psycopg://u@h/db",
            "SIMCONFIG_PORT": "6000",
            "SIMCONFIG_GRACE_PERIOD": "2.5",
            "SIMCONFIG_MIGRATE_ON_START": "false",
            "SIMCONFIG_LOG_LEVEL": "debug",
        }
    )
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert (settings.port, settings.grace_period, settings.migrate_on_start) == (6000, 2.5, False)
    assert settings.log_level == "DEBUG"
    assert not settings.uses_embedded_database


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIMCONFIG_PORT", "http"),
        ("SIMCONFIG_PORT", "70000"),
        ("SIMCONFIG_DATABASE_URL", "mysql://x"),
        ("SIMCONFIG_WORKER_THREADS", "0"),
        ("SIMCONFIG_LOG_LEVEL", "loud"),
        ("SIMCONFIG_MIGRATE_ON_START", "maybe"),
        ("SIMCONFIG_GRACE_PERIOD", "-1"),
        ("SIMCONFIG_ARCHITECT_ENGINE", "magic"),
    ],
)
def test_bad_values_fail_with_the_variable_named(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_remote_architect_needs_an_address():
    with pytest.raises(SettingsError, match="SIMCONFIG_ARCHITECT_ADDRESS"):
        Settings.from_env({"SIMCONFIG_ARCHITECT_ENGINE": "remote"})


def test_operations_settings_default_to_text_logs_local_metrics_and_no_tracing():
    settings = Settings.from_env({})

    assert settings.log_format == "text"
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 9464)
    assert settings.tracing_mode({}) is None
    assert not settings.uses_tls


@pytest.mark.parametrize(
    "name, value",
    [
        ("SIMCONFIG_LOG_FORMAT", "xml"),
        ("SIMCONFIG_METRICS_PORT", "70000"),
        ("SIMCONFIG_TRACING", "jaeger"),
    ],
)
def test_bad_operations_settings_name_their_variable(name, value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})

    assert name in str(caught.value)


def test_tracing_is_on_for_console_or_otlp_or_an_otlp_endpoint():
    assert Settings.from_env({"SIMCONFIG_TRACING": "Console"}).tracing_mode({}) == "console"
    assert Settings.from_env({"SIMCONFIG_TRACING": "otlp"}).tracing_mode({}) == "otlp"
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    assert Settings.from_env({}).tracing_mode(endpoint) == "otlp"
    assert Settings.from_env({"SIMCONFIG_LOG_FORMAT": " JSON "}).log_format == "json"


def test_watch_streams_default_to_half_the_worker_threads():
    assert Settings.from_env({"SIMCONFIG_WORKER_THREADS": "8"}).watch_stream_limit == 4
    assert Settings.from_env({"SIMCONFIG_WORKER_THREADS": "1"}).watch_stream_limit == 1
    explicit = {"SIMCONFIG_WORKER_THREADS": "8", "SIMCONFIG_WATCH_MAX_STREAMS": "6"}
    assert Settings.from_env(explicit).watch_stream_limit == 6


def test_watch_streams_must_leave_a_thread_for_other_calls():
    with pytest.raises(SettingsError, match="SIMCONFIG_WATCH_MAX_STREAMS"):
        Settings.from_env({"SIMCONFIG_WORKER_THREADS": "4", "SIMCONFIG_WATCH_MAX_STREAMS": "4"})


def test_a_short_page_token_secret_is_refused_without_showing_it():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"SIMCONFIG_PAGE_TOKEN_SECRET": "hunter2"})
    assert "SIMCONFIG_PAGE_TOKEN_SECRET" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_webhook_deliveries_are_kept_seven_days_unless_told_otherwise():
    assert Settings.from_env({}).webhook_delivery_retention_days == 7
    configured = Settings.from_env({"SIMCONFIG_WEBHOOK_DELIVERY_RETENTION_DAYS": "30"})
    assert configured.webhook_delivery_retention_days == 30
    with pytest.raises(SettingsError, match="SIMCONFIG_WEBHOOK_DELIVERY_RETENTION_DAYS"):
        Settings.from_env({"SIMCONFIG_WEBHOOK_DELIVERY_RETENTION_DAYS": "0"})
