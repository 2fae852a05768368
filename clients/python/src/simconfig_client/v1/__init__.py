"""Stubs generated from protos/simulation/v1."""
