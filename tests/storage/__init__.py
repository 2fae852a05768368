"""Storage contract tests: one suite, run against SQLite and PostgreSQL."""
