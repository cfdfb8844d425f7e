"""Test suites (tests/unit, tests/integration) and the shared Podman sandbox (tests.sandbox)."""
