"""`connect.diagnose`'s rules, each against transport errors recorded from real servers
(tests/connect_errors.json, written by record_connect_errors.py): the error names what went
wrong and the setting that fixes it, and the rule table is the one that answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flowctl import connect
from flowctl.connect import Target

RECORDED: dict[str, dict[str, Any]] = json.loads((Path(__file__).parent / "connect_errors.json").read_text())

# Each recorded failure: the rule that must recognise it, and words the error must carry.
EXPECTED: dict[str, tuple[str | None, list[str]]] = {
    "connection refused": (None, ["cannot reach Temporal at", "Connection refused", "flowctl server start"]),
    "no client certificate": ("_refused_credentials", ["No required SSL certificate was sent", "CLIENT_CERT_PATH"]),
    "client certificate from another CA": ("_refused_credentials", ["The SSL certificate error", "client_cert_path"]),
    "no API key": ("_refused_credentials", ["no API key and a client certificate", "set an API key"]),
    "wrong API key": ("_refused_credentials", ["the API key and a client certificate", "check the API key"]),
    "an HTTP/1 server": ("_plain_dropped", ["did not answer plain gRPC", "the Web UI's port is not"]),
    "server CA not given": ("_server_certificate", ["signed by a CA flowctl does not trust", "SERVER_CA_CERT_PATH"]),
    "wrong server name": ("_server_certificate", ["not valid for the name", "it names localhost, 127.0.0.1"]),
    "TLS to a plain server": ("_tls_to_plain", ["does not speak TLS, but TLS is on (", "TEMPORAL_TLS=false"]),
    "an API key to a plain server": ("_tls_to_plain", ["an API key is set, which turns TLS on"]),
    "plain to the TLS proxy": ("_plain_dropped", ["it may expect TLS", "TEMPORAL_TLS=true"]),
    "handshake dropped, no client certificate": ("_client_cert_alert", ["no client certificate was sent", "Required"]),
    "handshake dropped, rogue certificate": ("_client_cert_alert", ["refused the client certificate", "UnknownCA"]),
    "a silent server": ("_plain_silence", ["gave no answer within 10s: it may expect TLS"]),
    "a plain HTTP/1 server": ("_plain_dropped", ["did not answer plain gRPC"]),
    "an HTTP/1 server over TLS": ("_tls_not_grpc", ["answered over TLS, but not in gRPC", "not Temporal's gRPC port"]),
}


def target(case: dict[str, Any]) -> Target:
    """The target the error was recorded with (stand-ins for the key and certificates)."""
    from temporalio.service import TLSConfig

    tls: Any = {"sdk": None, "off": False, "on": True}.get(case["tls"])
    if case["tls"] == "config":
        cert = b"-----BEGIN CERTIFICATE-----" if case["client_cert"] else None
        tls = TLSConfig(client_cert=cert, client_private_key=cert)
    return Target(case["address"], "default", api_key="k" if case["api_key"] else None, tls=tls)


def test_every_recorded_failure_has_an_expectation() -> None:
    assert set(RECORDED) == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_recorded_failure_is_named_by_its_rule(case: str) -> None:
    recorded = RECORDED[case]
    rule, words = EXPECTED[case]
    where = f"Temporal at {recorded['address']} (namespace default)"
    answering = [r.__name__ for r in connect.RULES if r(target(recorded), recorded["detail"], where) is not None]
    assert answering[:1] == ([rule] if rule else []), answering
    message = str(connect.diagnose(target(recorded), recorded["detail"]))
    for word in words:
        assert word in message, f"{word!r} missing: {message}"
    assert "\n" not in message
