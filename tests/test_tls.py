"""TLS, mTLS and API keys through a real TLS-terminating gRPC proxy (nginx) on loopback.

The dev server listens in plain gRPC; nginx in front of it terminates TLS with a
certificate from a CA this module makes, requires a client certificate from the same CA,
and requires `authorization: Bearer KEY`, which is how the SDK sends an API key. The
worker and the CLI connect through the proxy with settings from `TEMPORAL_TLS_*`
variables or from a profile in flowctl's config file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Cli, free_port, isolated_env, order_input, stop_process, uid, write_config
from tlsproxy import Authority, Pair, Proxy, nginx_binary, start_proxy, strict_tls_server

pytestmark = pytest.mark.skipif(
    nginx_binary() is None, reason="nginx is not installed (make test installs Debian's nginx where it can)"
)

API_KEY = "fk-test-0b7e4c1d9a"


@dataclass
class TlsStack:
    root: Path
    cli: Cli  # points at the plain dev server (for setup and checks)
    plain_address: str
    ui_address: str  # the dev server's Web UI: HTTP/1, not gRPC
    proxy: Proxy
    ca: Authority
    client: Pair
    rogue_client: Pair
    task_queue: str

    def env(self, *, cert: Pair | None = None, api_key: str | None = API_KEY, ca: bool = True) -> dict[str, str]:
        """`TEMPORAL_*` variables for connecting through the proxy."""
        env = {"TEMPORAL_ADDRESS": self.proxy.address, "TEMPORAL_TLS": "true"}
        if ca:
            env["TEMPORAL_TLS_SERVER_CA_CERT_PATH"] = str(self.ca.pair.cert)
        if cert:
            env["TEMPORAL_TLS_CLIENT_CERT_PATH"] = str(cert.cert)
            env["TEMPORAL_TLS_CLIENT_KEY_PATH"] = str(cert.key)
        if api_key:
            env["TEMPORAL_API_KEY"] = api_key
        return env


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsStack]:
    root = tmp_path_factory.mktemp("tls")
    port = free_port()
    task_queue = uid("tq-tls-")
    config = write_config(root, port=port, task_queue=task_queue)
    cli = Cli(isolated_env(root, config), root)
    started = cli("server", "start", "-o", "json", timeout=120)
    assert started.code == 0, str(started)
    ca = Authority(root, "ca")
    rogue = Authority(root, "rogue-ca")
    proxy = start_proxy(
        root / "nginx",
        port=free_port(),
        upstream=f"127.0.0.1:{port}",
        server=ca.issue("server", "localhost", server=True),
        client_ca=ca.pair.cert,
        api_key=API_KEY,
    )
    stack = TlsStack(
        root,
        cli,
        f"127.0.0.1:{port}",
        started.json()["ui_url"].removeprefix("http://"),
        proxy,
        ca,
        ca.issue("client", "flowctl-worker", server=False),
        rogue.issue("rogue-client", "intruder", server=False),
        task_queue,
    )
    try:
        yield stack
    finally:
        proxy.stop()
        cli("server", "stop")


def test_worker_and_cli_run_an_order_over_mtls_with_an_api_key(tls: TlsStack) -> None:
    env = tls.env(cert=tls.client)
    worker = tls.cli.worker(env=env)
    try:
        oid = uid("tls")
        run = tls.cli("start", "order", "-i", _json(order_input(oid)), "--wait", "--timeout", "60s", env=env)
        assert run.code == 0, str(run)
        described = tls.cli("describe", f"order-{oid}", "-o", "json", env=env)
        assert described.code == 0, str(described)
        assert described.json()["status"] == "completed"
    finally:
        assert stop_process(worker) == 0
    # The same workflow, seen on the plain side: the proxy really carried it.
    plain = tls.cli("describe", f"order-{oid}", "-o", "json")
    assert plain.json()["status"] == "completed"


def test_profile_in_the_config_file_carries_tls_and_api_key(tls: TlsStack, tmp_path: Path) -> None:
    config = tmp_path / "flowctl.toml"
    config.write_text(
        f"""task_queue = "{tls.task_queue}"
[profile.default]
address = "{tls.proxy.address}"
api_key = "{API_KEY}"
[profile.default.tls]
server_ca_cert_path = "{tls.ca.pair.cert}"
client_cert_path = "{tls.client.cert}"
client_key_path = "{tls.client.key}"
"""
    )
    cli = Cli(isolated_env(tmp_path, config), tmp_path)
    run = cli("list", "--limit", "1", "-o", "json")
    assert run.code == 0, str(run)
    shown = cli("config", "show")
    assert API_KEY not in shown.stdout + shown.stderr


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("no client certificate", ["No required SSL certificate was sent", "TEMPORAL_TLS_CLIENT_CERT_PATH"]),
        ("client certificate from another CA", ["The SSL certificate error", "TEMPORAL_TLS_CLIENT_CERT_PATH"]),
        ("no API key", ["Request unauthorized.", "no API key", "set an API key", "TEMPORAL_API_KEY"]),
        ("wrong API key", ["Request unauthorized.", "the API key and a client certificate", "the API key the"]),
        ("neither client certificate nor API key", ["No required SSL", "TEMPORAL_TLS_CLIENT_CERT_PATH"]),
        ("an HTTP/1 server", ["did not answer plain gRPC", "not its gRPC port", "the Web UI's port is not"]),
        ("server CA not given", ["signed by a CA flowctl does not trust", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"]),
        ("wrong server name", ["not valid for the name", "localhost", "TEMPORAL_TLS_SERVER_NAME"]),
        ("TLS to a plain server", ["does not speak TLS", "TEMPORAL_TLS=false"]),
        ("plain to the TLS proxy", ["may expect TLS", "TEMPORAL_TLS=true"]),
    ],
)
def test_refused_connections_exit_5_with_the_setting_to_fix(tls: TlsStack, case: str, expect: list[str]) -> None:
    env = {
        "no client certificate": tls.env(),
        "client certificate from another CA": tls.env(cert=tls.rogue_client),
        "no API key": tls.env(cert=tls.client, api_key=None),
        "wrong API key": tls.env(cert=tls.client, api_key="fk-wrong"),
        "neither client certificate nor API key": tls.env(api_key=None),
        "an HTTP/1 server": {"TEMPORAL_ADDRESS": tls.ui_address},
        "server CA not given": tls.env(cert=tls.client, ca=False),
        "wrong server name": {**tls.env(cert=tls.client), "TEMPORAL_TLS_SERVER_NAME": "temporal.example"},
        "TLS to a plain server": {
            **tls.env(cert=tls.client, api_key=None),
            "TEMPORAL_ADDRESS": tls.plain_address,
        },
        "plain to the TLS proxy": {"TEMPORAL_ADDRESS": tls.proxy.address},
    }[case]
    run = tls.cli("list", "--limit", "1", env=env)
    assert run.code == 5, str(run)
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, str(run)
    for text in expect:
        assert text in lines[0], f"{text!r} missing: {lines[0]}"
    assert API_KEY not in run.stderr


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("client certificate is not PEM", "TLS client_cert is not a PEM certificate"),
        ("CA is not PEM", "TLS server_ca_cert is not a PEM certificate"),
        ("key is not PEM", "TLS client_key is not an unencrypted PEM private key"),
        ("key of another certificate", "TLS client_key does not belong to client_cert"),
        ("certificate without key", "TLS client_key is missing"),
    ],
)
def test_unreadable_tls_material_is_exit_2_before_connecting(tls: TlsStack, case: str, expect: str) -> None:
    garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    env = tls.env(cert=tls.client)
    if case == "client certificate is not PEM":
        env["TEMPORAL_TLS_CLIENT_CERT_PATH"] = _write(tls.root / "garbage-cert.pem", garbage)
    elif case == "CA is not PEM":
        env["TEMPORAL_TLS_SERVER_CA_CERT_PATH"] = _write(tls.root / "garbage-ca.pem", garbage)
    elif case == "key is not PEM":
        env["TEMPORAL_TLS_CLIENT_KEY_PATH"] = _write(tls.root / "garbage.key", garbage.replace("CERTIFICATE", "KEY"))
    elif case == "key of another certificate":
        env["TEMPORAL_TLS_CLIENT_KEY_PATH"] = str(tls.rogue_client.key)
    else:
        del env["TEMPORAL_TLS_CLIENT_KEY_PATH"]
    run = tls.cli("start", "order", "-i", _json(order_input(uid("nosend"))), env=env)
    assert run.code == 2, str(run)
    assert run.stderr.startswith(f"flowctl: error: {expect}") and len(run.stderr.strip().splitlines()) == 1
    assert "TEMPORAL_TLS_" in run.stderr or "client certificate was issued for" in run.stderr


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_worker_with_a_rejected_certificate_exits_5_naming_the_fix(tls: TlsStack) -> None:
    run = tls.cli("worker", env=tls.env(cert=tls.rogue_client), timeout=60)
    assert run.code == 5, str(run)
    assert "The SSL certificate error" in run.stderr
    assert API_KEY not in run.stdout + run.stderr


def _json(value: object) -> str:
    import json

    return json.dumps(value)


@pytest.fixture(scope="module")
def strict_tls_port(tls: TlsStack) -> Iterator[int]:
    with strict_tls_server(tls.ca) as port:
        yield port


@pytest.mark.parametrize("cert", ["none", "rogue"])
def test_a_handshake_refusal_names_the_client_certificate(tls: TlsStack, strict_tls_port: int, cert: str) -> None:
    env = {
        **tls.env(cert=tls.rogue_client if cert == "rogue" else None, api_key=None),
        "TEMPORAL_ADDRESS": f"localhost:{strict_tls_port}",
    }
    run = tls.cli("list", "--limit", "1", env=env)
    assert run.code == 5, str(run)
    assert len(run.stderr.strip().splitlines()) == 1, str(run)
    assert "TEMPORAL_TLS_CLIENT_CERT_PATH" in run.stderr
    # The alert names the reason when it is read in time; a closed connection is named too.
    reasons = ("UnknownCA", "may not trust the client certificate") if cert == "rogue" else ("no client certificate",)
    assert any(reason in run.stderr for reason in reasons), run.stderr


CODEC_KEY = "kleak:" + "U2VjcmV0Q29kZWNLZXlGb3JUaGVMZWFrVGVzdDAxMjM="  # 32 bytes once decoded


def test_no_secret_appears_in_any_output_of_a_session(tls: TlsStack, tmp_path: Path) -> None:
    """API key, client private key and codec key: used everywhere, printed nowhere.

    A session of successes and failures, all with --debug, with the secrets in the config
    file, in `TEMPORAL_*`/`FLOWCTL_*` variables and in a key file; every stdout, stderr and
    worker log is searched for each secret and for a distinctive part of it.
    """
    private_key = tls.client.key.read_text()
    key_body = "".join(line for line in private_key.splitlines() if not line.startswith("-----"))
    secrets = {
        "api key": API_KEY,
        "wrong api key": "fk-wrong-7d1e55aa90",
        "private key": key_body,
        "private key part": key_body[20:52],
        "codec key": CODEC_KEY.split(":", 1)[1],
        "codec key part": CODEC_KEY.split(":", 1)[1][8:30],
        "bad codec key": "bm90LWEtdmFsaWQta2V5LWJ1dC1zZWNyZXQ",
        "unquoted api key": "sk-UNQUOTED-51f0c2",
        "numeric api key": "418275551093",
        "rpc-metadata header": "hdr-secret-3c9a01f7e2",
        "rpc-metadata bearer": "bearer-secret-77d0aa12",
    }
    keys_file = tmp_path / "codec.keys"
    keys_file.write_text(f"# rotated monthly\n{CODEC_KEY}\n")
    config = tmp_path / "flowctl.toml"
    config.write_text(
        f"""task_queue = "{uid("tq-leak-")}"
[codec]
keys_file = "{keys_file}"
[profile.default]
address = "{tls.proxy.address}"
api_key = "{API_KEY}"
[profile.default.tls]
server_ca_cert_path = "{tls.ca.pair.cert}"
client_cert_path = "{tls.client.cert}"
client_key_data = '''{private_key}'''
[profile.default.grpc_meta]
x-session-secret = "{secrets["rpc-metadata header"]}"
"""
    )
    cli = Cli(isolated_env(tmp_path, config), tmp_path)
    outputs: list[str] = []

    def run(*args: str, env: dict[str, str] | None = None, expect: int | None = None) -> None:
        result = cli("--debug", *args, env=env)
        outputs.append(f"$ flowctl {args[0]} ... -> {result.code}\n{result.stdout}{result.stderr}")  # not argv
        if expect is not None:
            assert result.code == expect, str(result)

    worker = cli.worker("--max-activities", "4")
    try:
        oid = uid("leak")
        run("start", "order", "-i", _json(order_input(oid)), "--wait", "--timeout", "60s", expect=0)
        run("describe", f"order-{oid}", "-o", "json", expect=0)
        run("history", f"order-{oid}", expect=0)
        run("result", f"order-{oid}", "-o", "json", expect=0)
        run("config", "show", expect=0)
        run("config", "show", "-o", "json", expect=0)
        run("config", "path", expect=0)
        # Refusals and misconfigurations, each with the secrets in play.
        run("list", env={"TEMPORAL_API_KEY": secrets["wrong api key"]}, expect=5)
        run(
            "list",
            env={"TEMPORAL_TLS_CLIENT_KEY_DATA": "-----BEGIN PRIVATE KEY-----\n" + secrets["bad codec key"]},
            expect=2,
        )
        run("list", env={"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}, expect=5)
        run("result", f"order-{oid}", env={"FLOWCTL_CODEC__KEYS": f"other:{CODEC_KEY.split(':', 1)[1]}"}, expect=5)
        run("list", env={"FLOWCTL_CODEC__KEYS": f"k9:{secrets['bad codec key']}"}, expect=2)
        run("start", "order", "-i", "{", env={"FLOWCTL_CODEC__KEYS": CODEC_KEY}, expect=2)
        run("codec-server", "--port", str(tls.proxy.port), expect=2)  # taken by the proxy
        # Secrets written wrongly: errors about them name the setting, never the value.
        wrong = tmp_path / "wrong"
        wrong.mkdir()
        (wrong / "array.toml").write_text(f'[codec]\nkeys = ["{CODEC_KEY}"]\n')
        run("--config", str(wrong / "array.toml"), "config", "show", expect=2)
        (wrong / "number.toml").write_text(f"[profile.default]\napi_key = {secrets['numeric api key']}\n")
        run("--config", str(wrong / "number.toml"), "list", expect=2)
        (wrong / "none.toml").write_text('task_queue = "no-profiles-here"\n')
        (wrong / "temporal.toml").write_text(f"[profile.default]\napi_key = {secrets['unquoted api key']}\n")
        run("--config", str(wrong / "none.toml"), "list", env={"TEMPORAL_CONFIG_FILE": str(wrong / "temporal.toml")},
            expect=2)  # fmt: skip
        (wrong / "unquoted.toml").write_text(f"[profile.default]\napi_key = {secrets['unquoted api key']}\n")
        run("--config", str(wrong / "unquoted.toml"), "list", expect=2)
        # Temporal's rpc-metadata headers: any of them may carry a credential, whatever its name.
        (wrong / "meta.toml").write_text(
            f'[profile.default]\naddress = "{tls.proxy.address}"\n'
            f'[profile.default.grpc_meta]\nauthorization = "Bearer {secrets["rpc-metadata bearer"]}"\n'
        )
        run("--config", str(wrong / "meta.toml"), "config", "show", expect=0)
        run("--config", str(wrong / "meta.toml"), "config", "show", "-o", "json", expect=0)
        run("--config", str(wrong / "meta.toml"), "list")
        run("config", "set", "profile.default.grpc_meta.x-other", secrets["rpc-metadata header"], expect=0)
        run("config", "set", "profile.default.api_key", secrets["wrong api key"], expect=0)
        run("config", "show", expect=0)
    finally:
        assert stop_process(worker) == 0
    outputs.append(worker.log.read_text())  # type: ignore[attr-defined]
    session = "\n".join(outputs)
    assert "<redacted>" in session and "Traceback" not in session
    for name, secret in secrets.items():
        assert secret not in session, f"the {name} appears in the session's output"
