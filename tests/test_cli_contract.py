"""The CLI contract: invalid input exits 2 (3 for unknown names) with one line, and sends nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FLOWCTL, Cli, order_input, uid

from flowctl.cli import hoist_globals


def workflow_count(flowctl: Cli) -> int:
    run = flowctl("list", "--limit", "10000", "-o", "json")
    assert run.code == 0, str(run)
    return len(run.json())


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {stderr!r}"
    return lines[0]


def good() -> dict[str, object]:
    return order_input(uid())


def with_items(item: dict[str, object]) -> dict[str, object]:
    return {**good(), "items": [item]}


BAD_STARTS = [
    pytest.param(["-i", '{"order_id": "x",'], 2, "malformed JSON", id="malformed-json"),
    pytest.param(["-i", '{"order_id": "x1"}'], 2, "customer_id: is required", id="missing-field"),
    pytest.param(
        ["-i", json.dumps(with_items({"sku": "SKU-1", "quantity": "many", "unit_price": 1}))],
        2,
        "items.0.quantity",
        id="wrong-type",
    ),
    pytest.param(
        ["-i", json.dumps(with_items({"sku": "SKU-1", "quantity": -1, "unit_price": 1}))],
        2,
        "items.0.quantity: Input should be greater than 0",
        id="negative-quantity",
    ),
    pytest.param(
        ["-i", json.dumps({**good(), "colour": "red"})], 2, "colour: is not a known field", id="unknown-field"
    ),
    pytest.param(["-i", json.dumps({**good(), "email": "nope"})], 2, "email", id="bad-email"),
    pytest.param(["-i", "[1, 2]"], 2, "expected a JSON object", id="not-an-object"),
    pytest.param(["-i", "@/nonexistent/order.json"], 2, "cannot read", id="missing-file"),
    pytest.param(["--set", "nonsense"], 2, "expected key=value", id="set-without-equals"),
    pytest.param(["--set", "bogus=1"], 2, "unknown field 'bogus'", id="set-unknown-field"),
    pytest.param(
        ["-i", json.dumps(good()), "--timeout", "5 parsecs", "--wait"], 2, "not a duration", id="bad-duration"
    ),
    pytest.param(["-i", json.dumps(good()), "--id", "has space"], 2, "not a valid workflow id", id="bad-id"),
    pytest.param(["-i", json.dumps(good()), "--if-running", "explode"], 2, "--if-running", id="bad-choice"),
]


@pytest.mark.parametrize(("args", "code", "message"), BAD_STARTS)
def test_invalid_start_input_exits_2_and_starts_nothing(flowctl: Cli, args: list[str], code: int, message: str) -> None:
    before = workflow_count(flowctl)
    run = flowctl("start", "order", *args)
    assert run.code == code, str(run)
    assert message in one_line(run.stderr)
    assert run.stdout == ""
    assert workflow_count(flowctl) == before


def test_unknown_kind_exits_3(flowctl: Cli) -> None:
    run = flowctl("start", "pizza", "-i", "{}")
    assert run.code == 3, str(run)
    assert "unknown kind 'pizza'" in one_line(run.stderr) and "order" in run.stderr


def test_errors_are_json_under_o_json(flowctl: Cli) -> None:
    run = flowctl("start", "order", "-i", "{", "-o", "json")
    assert run.code == 2
    error = json.loads(one_line(run.stderr))["error"]
    assert error["code"] == 2 and "malformed JSON" in error["message"]


def test_stdin_input(flowctl: Cli) -> None:
    run = flowctl("start", "order", "-i", "-", "--dry-run", "-o", "json", stdin=json.dumps(order_input("stdin-1")))
    assert run.code == 0, str(run)
    assert run.json()["workflow_id"] == "order-stdin-1" and run.json()["dry_run"] is True


def test_input_file(flowctl: Cli, tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "order.json"
    path.write_text(json.dumps(order_input("file-1")))
    run = flowctl("start", "order", "-i", f"@{path}", "--dry-run", "-o", "json")
    assert run.code == 0 and run.json()["input"]["order_id"] == "file-1"


def test_signal_validation(flowctl: Cli) -> None:
    order_id = uid()
    wid = f"order-{order_id}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(order_id, price=4000.0))).code == 0
    unknown = flowctl("signal", wid, "explode")
    assert unknown.code == 3 and "no signal 'explode'" in one_line(unknown.stderr) and "review" in unknown.stderr
    wrong = flowctl("signal", wid, "review", "--set", "decision=maybe", "--set", "reviewer=x")
    assert wrong.code == 2 and "decision" in one_line(wrong.stderr)
    missing = flowctl("signal", wid, "review", "--set", "decision=approve")
    assert missing.code == 2 and "reviewer: is required" in one_line(missing.stderr)
    malformed = flowctl("signal", wid, "review", "-i", "{nope")
    assert malformed.code == 2 and "malformed JSON" in one_line(malformed.stderr)
    status = flowctl("query", wid, "-o", "json")
    assert status.code == 0 and status.json()["outcome"] is None  # nothing reached the workflow
    unknown_query = flowctl("query", wid, "secrets")
    assert unknown_query.code == 3 and "no query 'secrets'" in one_line(unknown_query.stderr)
    assert flowctl("signal", "order-nope-" + uid(), "review").code == 3
    assert flowctl("terminate", wid, "--reason", "cleanup").code == 0
    closed = flowctl("signal", wid, "review", "--set", "decision=approve", "--set", "reviewer=x")
    assert closed.code == 4 and "already terminated" in one_line(closed.stderr)


def test_an_unknown_namespace_is_named_not_the_workflow(flowctl: Cli, tmp_path: Path) -> None:
    described = flowctl("describe", "order-1", "--namespace", "no-such-ns")
    assert described.code == 3, str(described)
    line = one_line(described.stderr)
    assert "namespace 'no-such-ns' not found" in line and "--namespace" in line and "check the id" not in line
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(order_input(uid())) + "\n")
    bulk = flowctl("start", "order", "--from", str(path), "--namespace", "no-such-ns")
    assert bulk.code == 3, str(bulk)
    assert "namespace 'no-such-ns' not found" in json.loads(bulk.stdout)["error"]


def test_a_server_turning_requests_away_is_exit_5_not_a_crash() -> None:
    """Rate limiting (RESOURCE_EXHAUSTED) after the SDK's own retries; a dev server cannot
    be made to answer so on demand, so the error is built as the SDK raises it."""
    from temporalio.service import RPCError, RPCStatusCode

    from flowctl.errors import ExitCode, UnreachableError
    from flowctl.ops.rpc import rpc_errors

    with pytest.raises(UnreachableError) as caught, rpc_errors("order-1"):
        raise RPCError("namespace rate limit exceeded", RPCStatusCode.RESOURCE_EXHAUSTED, b"")
    assert caught.value.code == ExitCode.UNREACHABLE
    assert "turning requests away (namespace rate limit exceeded)" in str(caught.value)
    assert "--rate" in (caught.value.hint or "")


def test_unreachable_server_exits_5_with_a_hint(local_cli: Cli) -> None:
    run = local_cli("describe", "order-1")
    assert run.code == 5, str(run)
    line = one_line(run.stderr)
    assert "cannot reach Temporal at 127.0.0.1:" in line and "flowctl server start" in line


def test_a_silent_endpoint_exits_5_naming_tls_and_the_address(local_cli: Cli) -> None:
    """A port that accepts and never answers (a TLS endpoint waiting for a hello, say)."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as listener:
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        run = local_cli("list", env={"TEMPORAL_ADDRESS": address}, timeout=60)
    assert run.code == 5, str(run)
    line = one_line(run.stderr)
    assert f"Temporal at {address}" in line and "no answer within" in line
    assert "may expect TLS" in line and "TEMPORAL_TLS=true" in line


@pytest.mark.parametrize("address", ["nohost:xx", ":7233", "127.0.0.1:99999"])
def test_a_malformed_address_is_exit_2_naming_the_setting(local_cli: Cli, address: str) -> None:
    run = local_cli("list", "--address", address)
    assert run.code == 2, str(run)
    line = one_line(run.stderr)
    assert f"address {address!r} is not host:port" in line and "TEMPORAL_ADDRESS" in line


def test_a_missing_tls_file_is_exit_2_naming_it(local_cli: Cli) -> None:
    run = local_cli("list", env={"TEMPORAL_TLS_CLIENT_CERT_PATH": "/nonexistent/client.pem"})
    assert run.code == 2, str(run)
    line = one_line(run.stderr)
    assert "TLS file /nonexistent/client.pem: no such file" in line and "TEMPORAL_TLS_" in line


def test_server_start_refuses_a_taken_ui_port_naming_it(local_cli: Cli) -> None:
    import socket

    shown = local_cli("config", "show", "-o", "json").json()["settings"]["server"]
    with socket.create_server(("127.0.0.1", shown["ui_port"])):
        run = local_cli("server", "start")
    assert run.code == 4, str(run)
    assert "the Web UI's port" in one_line(run.stderr) and "server.ui_port" in run.stderr
    assert local_cli("server", "status").code == 5  # nothing was started


def test_usage_errors_are_one_line_exit_2(local_cli: Cli) -> None:
    for args in (["start"], ["start", "order", "--bogus"], ["describe"], ["-o", "yaml", "kinds"]):
        run = local_cli(*args)
        assert run.code == 2, str(run)
        one_line(run.stderr)


def test_hoisting_globals_keeps_values_and_stops_at_double_dash() -> None:
    argv = ["start", "order", "-o", "json", "--set", "a=1", "--debug", "--address=x:1", "--", "-o"]
    assert hoist_globals(argv) == [
        "-o",
        "json",
        "--debug",
        "--address=x:1",
        "start",
        "order",
        "--set",
        "a=1",
        "--",
        "-o",
    ]


def test_help_imports_no_temporalio() -> None:
    # Nor asyncio (about 15 ms): nothing that only describes the tool needs an event loop.
    code = (
        "import sys\n"
        "from flowctl.cli import run\n"
        "for args in (['--help'], ['start', '--help'], ['kinds', 'order', '-o', 'json'], ['config', 'path']):\n"
        "    run(args)\n"
        "loaded = sorted(m for m in sys.modules if m in ('temporalio', 'asyncio') or m.startswith('temporalio.'))\n"
        "sys.stderr.write(repr(loaded))\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def command_paths() -> list[list[str]]:
    import typer.main

    from flowctl.cli import commands  # noqa: F401
    from flowctl.cli.app import app

    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command: object, prefix: list[str]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*prefix, name])
        else:
            paths.append(prefix)

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_every_command_has_help_with_an_example(path: list[str]) -> None:
    proc = subprocess.run(
        [FLOWCTL, *path, "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Example" in proc.stdout and f"flowctl {' '.join(path)}" in proc.stdout, proc.stdout
    # Options show what their value is; a flag, which takes none, shows nothing (typer would
    # print `<bool>` beside it, and `<str>`, `<list[str]>` or `SET_` beside the others).
    option_rows = [line for line in proc.stdout.splitlines() if re.match(r"│\s+(\*\s+)?-", line)]
    assert option_rows and "--help" in option_rows[-1]
    # Arguments too: `KIND  workflow kind: ...`, not `kind  <str>`.
    argument_rows = [line for line in proc.stdout.splitlines() if re.match(r"│\s+(\*\s+)?[A-Za-z]", line)]
    for row in option_rows + argument_rows:
        assert not re.search(r"<(bool|str|int|float|path|list\[)|\b[A-Z]+_\s", row), row
    usage = next(line for line in proc.stdout.splitlines() if "Usage:" in line)
    assert not re.search(r"[{\[][a-z_]+[}\]]", usage), usage  # arguments named in capitals


def test_help_groups_commands_by_what_they_do() -> None:
    proc = subprocess.run([FLOWCTL, "--help"], capture_output=True, text=True, env={"COLUMNS": "100", "NO_COLOR": "1"})
    panels = re.findall(r"╭─ (\w+) ─", proc.stdout)
    assert panels == ["Options", "Run", "Inspect", "Send", "Decide", "Operate"], panels
    run_panel = proc.stdout.split("╭─ Run")[1].split("╰")[0]
    assert run_panel.split("│")[1].split()[0] == "start", run_panel  # the first thing a user does comes first


def test_version_is_printed_from_anywhere_on_the_line() -> None:
    from flowctl import __version__

    for args in (["--version"], ["list", "--version"]):
        proc = subprocess.run([FLOWCTL, *args], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout == f"flowctl {__version__}\n", (args, proc)
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_the_development_install_runs_the_tree() -> None:
    """`make` installs editable: flowctl and its workflows are imported from src/, so an edit is
    what the next run, worker and mypy see."""
    import flowctl
    import flowctl_workflows

    src = Path(__file__).parents[1] / "src"
    assert Path(flowctl.__file__).parent == src / "flowctl"
    assert Path(flowctl_workflows.__file__).parent == src / "flowctl_workflows"


def test_kinds_json_has_what_clients_need(local_cli: Cli) -> None:
    listed = local_cli("kinds", "-o", "json")
    assert listed.code == 0 and sorted(k["name"] for k in listed.json()) == ["approval", "onboarding", "order"]
    for name, template, messages in (
        ("onboarding", "onboarding-{user_id}", ("signals", ["verify-email"])),
        ("approval", "approval-{request_id}", ("updates", ["decide"])),
    ):
        other = local_cli("kinds", name, "-o", "json").json()
        assert other["id_template"] == template and other["input_schema"]["type"] == "object"
        assert [m["name"] for m in other[messages[0]]] == messages[1] and other["queries"][0]["name"] == "status"
        dry_run = local_cli("start", name, "-i", json.dumps(other["example"]), "--dry-run", "-o", "json")
        assert dry_run.code == 0, str(dry_run)
    run = local_cli("kinds", "order", "-o", "json")
    assert run.code == 0, str(run)
    kind = run.json()
    for key in (
        "name",
        "workflow_type",
        "task_queue",
        "id_template",
        "input_schema",
        "example",
        "signals",
        "queries",
        "updates",
    ):
        assert key in kind, key
    assert kind["id_template"] == "order-{order_id}" and kind["workflow_type"] == "Order"
    assert kind["task_queue"] == "local"
    assert "items" in kind["input_schema"]["properties"]
    assert [s["name"] for s in kind["signals"]] == ["review"] and [q["name"] for q in kind["queries"]] == ["status"]
    # The example validates and is dry-run startable as is.
    dry = local_cli("start", "order", "-i", json.dumps(kind["example"]), "--dry-run", "-o", "json")
    assert dry.code == 0 and dry.json()["workflow_id"] == "order-A-1001"
    assert local_cli("kinds", "pizza").code == 3


def test_python_m_flowctl_works() -> None:
    proc = subprocess.run([sys.executable, "-m", "flowctl", "kinds", "-o", "json"], capture_output=True, text=True)
    assert proc.returncode == 0 and "order" in [kind["name"] for kind in json.loads(proc.stdout)]


def test_query_without_a_worker_exits_5_naming_the_queue(flowctl: Cli) -> None:
    order_id = uid()
    queue = uid("tq-idle-")
    env = {"FLOWCTL_TASK_QUEUE": queue}
    assert flowctl("start", "order", "-i", json.dumps(order_input(order_id)), env=env).code == 0
    run = flowctl("query", f"order-{order_id}", "--timeout", "2s")
    assert run.code == 5, str(run)
    line = one_line(run.stderr)
    assert "no worker answered within 2s" in line and queue in line
    assert flowctl("terminate", f"order-{order_id}", "--reason", "cleanup").code == 0


def test_explicit_config_file_must_exist(local_cli: Cli, tmp_path: object) -> None:
    run = local_cli("--config", "/nonexistent/flowctl.toml", "config", "show")
    assert run.code == 2 and "no such file" in one_line(run.stderr)
    assert local_cli("--config", "/nonexistent/flowctl.toml", "config", "path").code == 0


def test_start_wait_warns_when_no_worker_polls(flowctl: Cli) -> None:
    queue = uid("tq-none-")
    order_id = uid()
    run = flowctl(
        "start", "order", "-i", json.dumps(order_input(order_id)), "--wait", "--timeout", "1s",
        env={"FLOWCTL_TASK_QUEUE": queue},
    )  # fmt: skip
    assert run.code == 20, str(run)
    assert f"no worker polls task queue '{queue}'" in run.stderr
    assert flowctl("terminate", f"order-{order_id}", "--reason", "cleanup").code == 0


def test_every_schema_default_is_an_input_its_model_accepts() -> None:
    """What `kinds -o json` advertises as a default can be sent back as it is (durations as
    `7d`: pydantic would write the ISO `P7D`, which the duration fields refuse)."""
    from flowctl import catalog
    from flowctl_workflows.kinds import KINDS

    for kind in KINDS.values():
        described = catalog.describe(kind, "q")
        defaults = {n: p["default"] for n, p in described["input_schema"]["properties"].items() if "default" in p}
        assert defaults, kind.name
        for name, value in defaults.items():
            kind.input_model.model_validate({**described["example"], name: value})


def test_each_command_is_registered_by_the_module_the_table_names() -> None:
    """A command line imports only its command's module (COMMAND_MODULES): the table must
    name, for every command of the full tree, the module that defines it."""
    from flowctl.cli import COMMAND_MODULES, command_name, commands  # noqa: F401 - registers all
    from flowctl.cli.app import app

    defined = {
        (c.name or c.callback.__name__.rstrip("_")): c.callback.__module__
        for c in app.registered_commands
        if c.callback
    }
    for group in app.registered_groups:
        callback = group.typer_instance.registered_commands[0].callback if group.typer_instance else None
        assert group.name and callback, group
        defined[group.name] = callback.__module__
    assert {name: f"flowctl.cli.{module}" for name, module in COMMAND_MODULES.items()} == defined
    for line, name in (
        (["-o", "json", "describe", "x"], "describe"), (["--debug", "-ojsonl", "list"], "list"),
        (["--address=h:1", "codec-key"], "codec-key"), (["--help"], ""), (["--install-completion"], ""), ([], ""),
    ):  # fmt: skip
        assert command_name(line) == name, line


def test_a_tls_switch_temporal_would_misread_is_refused(local_cli: Cli) -> None:
    """Temporal reads TEMPORAL_TLS as true/false/1/0 only; `no` or `off` would turn TLS on."""
    for name, value in (
        ("TEMPORAL_TLS", "no"),
        ("TEMPORAL_TLS", "off"),
        ("TEMPORAL_TLS_DISABLE_HOST_VERIFICATION", "yes"),
    ):
        run = local_cli("list", env={name: value})
        assert run.code == 2 and f"{name}={value!r}" in run.stderr and "cannot reach" not in run.stderr, str(run)
    accepted = local_cli("list", env={"TEMPORAL_TLS": "FALSE"})
    assert accepted.code == 5 and "cannot reach" in accepted.stderr, str(accepted)  # on to connecting


def test_piped_tables_keep_every_value_whole(local_cli: Cli) -> None:
    """Without a terminal (and no COLUMNS), tables are not cut to 80 columns with '…'."""
    env = {k: v for k, v in local_cli.env.items() if k != "COLUMNS"}
    proc = subprocess.run([FLOWCTL, "kinds"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (
        "…" not in proc.stdout and "fraud review for large totals, ship, confirm; compensates on failure" in proc.stdout
    )


def test_the_global_options_are_declared_where_they_are_listed() -> None:
    """flowctl.argv lists the global options (moved to the front from anywhere on the line);
    the root command declares them: the two must name the same options."""
    import typer.main

    from flowctl.argv import FLAGS, NOTE, VALUED
    from flowctl.cli.app import app

    root = typer.main.get_command(app)
    declared = {opt for param in root.params for opt in param.opts}
    declared -= {"--install-completion", "--show-completion"}
    assert declared == VALUED | FLAGS
    shown = set(re.findall(r"-[-\w]+", NOTE))
    assert shown == (VALUED | FLAGS) - {"--output", "--version"}, shown
