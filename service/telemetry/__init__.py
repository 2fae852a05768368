"""What the server tells its operators: log lines, Prometheus metrics and OpenTelemetry traces."""
