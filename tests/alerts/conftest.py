"""Fixtures for the digest tests live in ``alerts_testkit`` (importable by the tests as well)."""

from alerts_testkit import seeded, smtp_server, ssl_server, tls_cert, tls_server  # noqa: F401
