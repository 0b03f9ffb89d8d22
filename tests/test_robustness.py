"""Failures from outside flowctl (odd option values, closed pipes) end with their documented code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import FLOWCTL, Cli, Stack, order_input, uid
from conftest import TEMPORAL as TEMPORAL_BIN
from hypothesis import given, settings
from hypothesis import strategies as st

from flowctl.cli import hoist_globals, valued_options


def _command(words: list[str]) -> frozenset[str]:
    import typer.main

    from flowctl.cli import commands  # noqa: F401 - registers every command
    from flowctl.cli.app import app

    return valued_options(typer.main.get_command(app), words)


@settings(max_examples=200, deadline=None)
@given(value=st.text(min_size=1).map(lambda s: "-" + s), option=st.sampled_from(["--reason", "--comment", "--as"]))
def test_an_option_value_is_never_taken_for_a_global_option(value: str, option: str) -> None:
    valued = _command(["reject"]) | _command(["cancel"])
    argv = ["reject", "order-1", option, value, "-o", "json"]
    hoisted = hoist_globals(argv, valued)
    assert hoisted[:2] == ["-o", "json"] and hoisted[2:] == argv[:4], hoisted


def test_an_option_value_like_a_global_reaches_the_workflow(flowctl: Cli) -> None:
    key = uid()
    wid = f"order-{key}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(key, price=2000.0))).code == 0
    for reason in ("-overdue", "-o json"):
        run = flowctl("cancel", wid, "--reason", reason, "-o", "json")
        assert run.code in (0, 4), str(run)  # 4: the first one already cancelled it
    ended = flowctl("result", wid, "--timeout", "1m", "-o", "json")
    assert ended.code == 12 and ended.json()["error"] == "cancelled: -overdue", str(ended)
    refused = flowctl("reject", wid, "--as", "risk", "--comment", "--debug")
    assert refused.code == 4 and "already" in refused.stderr, str(refused)  # the comment is "--debug"


@pytest.fixture(scope="module")
def finished(stack: Stack) -> str:
    key = uid()
    assert stack.cli("start", "order", "-i", json.dumps(order_input(key)), "--wait").code == 0
    return f"order-{key}"


@pytest.mark.parametrize(
    "args",
    [
        ["list", "-o", "jsonl"],
        ["list"],
        ["history", "{wid}"],
        ["history", "{wid}", "-o", "jsonl"],
        ["describe", "{wid}"],
    ],
)
def test_a_closed_stdout_ends_with_141_and_says_nothing(flowctl: Cli, finished: str, args: list[str]) -> None:
    """`flowctl ... | head -1`: the reader has gone before flowctl writes, as the shell would see it."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [FLOWCTL, *(a.format(wid=finished) for a in args)],
            stdout=write,
            stderr=subprocess.PIPE,
            env=flowctl.env,
            cwd=flowctl.cwd,
            timeout=60,
        )
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, b""), proc


def in_process(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    """Run flowctl's entry point in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io
    import sys

    from flowctl.cli import run

    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(list(args))
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


# A port nobody listens on: exit 5 would mean flowctl tried to send something.
NOBODY = ("--address", "127.0.0.1:9")


def assert_refused(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2 and out == "", (code, out, err)
    assert len(err.splitlines()) == 1 and err.startswith("flowctl: error: "), err
    for fragment in fragments:
        assert fragment in err, err


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(min_value=101, max_value=20_000), how=st.sampled_from(["inline", "file", "stdin", "set"]))
def test_json_nested_too_deep_is_refused_before_anything_is_sent(
    tmp_path_factory: pytest.TempPathFactory, depth: int, how: str
) -> None:
    document = '{"order_id": ' + nested(depth) + "}"
    path = tmp_path_factory.mktemp("deep") / "input.json"
    path.write_text(document)
    args = {
        "inline": ["-i", document],
        "file": ["-i", f"@{path}"],
        "stdin": ["-i", "-"],
        "set": ["--set", f"items={nested(depth)}"],
    }[how]
    code, out, err = in_process("start", "order", *args, *NOBODY, stdin=document.encode())
    assert_refused(code, out, err, "nested more than 100 levels deep")


def test_a_deep_line_in_a_bulk_file_fails_alone(local_cli: Cli, tmp_path: Path) -> None:
    lines = [json.dumps(order_input("A-1")), '{"order_id": ' + nested(5000) + "}", json.dumps(order_input("A-2"))]
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(lines) + "\n")
    run = local_cli("start", "order", "--from", str(path), "--dry-run")
    assert run.code == 2, str(run)
    reported = {json.loads(line)["line"]: json.loads(line) for line in run.stdout.splitlines()}
    assert reported[1]["dry_run"] and reported[3]["dry_run"], reported
    assert "nested more than 100 levels deep" in reported[2]["error"]


NOT_UTF8 = st.binary(min_size=1, max_size=40).filter(lambda b: not _utf8(b))


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=40, deadline=None)
@given(data=NOT_UTF8, where=st.sampled_from(["input", "from", "config", "keys_file", "stdin"]))
def test_bytes_that_are_not_utf8_in_a_file_are_refused(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, where: str
) -> None:
    root = tmp_path_factory.mktemp("bytes")
    bad = root / "bad"
    bad.write_bytes(data)
    config = root / "flowctl.toml"
    config.write_text("")
    args = {
        "input": ["start", "order", "-i", f"@{bad}"],
        "stdin": ["start", "order", "-i", "-"],
        "from": ["start", "order", "--from", str(bad)],
        "config": ["--config", str(bad), "list"],
        "keys_file": ["list"],
    }[where]
    env = {"FLOWCTL_CODEC__KEYS_FILE": str(bad)} if where == "keys_file" else {}
    saved = {k: os.environ.get(k) for k in ("FLOWCTL_CONFIG", *env)}
    os.environ.update({"FLOWCTL_CONFIG": str(config), **env})
    try:
        code, out, err = in_process(*args, *NOBODY, stdin=data)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if where == "from":  # a bulk file: each line that is not UTF-8 is a bad line of its own, the others go on
        assert code == 2 and "not UTF-8 text" in out and "run_id" not in out, (code, out, err)
        return
    assert_refused(code, out, err, "not UTF-8 text")


@settings(max_examples=40, deadline=None)
@given(data=NOT_UTF8, args=st.sampled_from([["describe", "{}"], ["cancel", "x", "--reason", "{}"],
                                            ["list", "--query", "{}"], ["ledger", "--order", "{}"],
                                            ["start", "order", "--id", "{}", "--set", "order_id=A"]]))  # fmt: skip
def test_arguments_that_are_not_utf8_are_refused(data: bytes, args: list[str]) -> None:
    text = os.fsdecode(data)  # as Python hands such bytes to a program: lone surrogates
    code, out, err = in_process(*(text if a == "{}" else a for a in args), *NOBODY)
    assert_refused(code, out, err, "is not UTF-8 text")


def test_a_config_file_named_but_missing_is_an_error(local_cli: Cli, tmp_path: Path) -> None:
    missing = str(tmp_path / "no" / "such.toml")
    for run in (local_cli("list", env={"FLOWCTL_CONFIG": missing}), local_cli("--config", missing, "list")):
        assert run.code == 2 and "no such file" in run.stderr and len(run.stderr.splitlines()) == 1, str(run)
    assert "FLOWCTL_CONFIG" in local_cli("list", env={"FLOWCTL_CONFIG": missing}).stderr
    # The commands that make it still work.
    assert local_cli("config", "path", env={"FLOWCTL_CONFIG": missing}).code == 0
    assert local_cli("config", "init", env={"FLOWCTL_CONFIG": missing}).code == 0


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"FLOWCTL_SERVICES": "x", "FLOWCTL_SERVICES__LOCAL__LATENCY": "2s"}, "FLOWCTL_SERVICES"),
        ({"FLOWCTL_SERVICES__LOCAL__LATENCY": "2s", "FLOWCTL_SERVICES": "x"}, "FLOWCTL_SERVICES"),
        ({"FLOWCTL_SERVICES__LOCAL__FRAUD_REVIEW_THRESHOLD": "inf"}, "fraud_review_threshold"),
        ({"FLOWCTL_SERVICES__LOCAL__FRAUD_REVIEW_THRESHOLD": "1e308"}, "fraud_review_threshold"),
        ({"FLOWCTL_APPROVAL__REJECT_ABOVE": "nan"}, "reject_above"),
        ({"FLOWCTL_SERVER__IP": "192.0.2.1"}, "server.ip 192.0.2.1 is not an address of this machine"),
        ({"FLOWCTL_SERVER__IP": "not-an-ip"}, "server.ip"),
        ({"FLOWCTL_SERVER__PORT": "65000", "FLOWCTL_SERVER__UI_PORT": "65000"}, "server.ui_port"),
        ({"FLOWCTL_ORDER__REVIEW_TIMEOUT": "500ms"}, "review_timeout"),
    ],
)
def test_a_bad_environment_is_exit_2_naming_it(local_cli: Cli, env: dict[str, str], fragment: str) -> None:
    commands = [["server", "start"]] if "192.0.2.1" in fragment else [["server", "start"], ["worker"]]
    for args in commands:  # the address is checked where it is bound
        run = local_cli(*args, env=env)
        assert run.code == 2 and fragment in run.stderr and len(run.stderr.splitlines()) == 1, str(run)


@pytest.mark.parametrize(
    ("flag", "fragment"),
    [
        (["--task-queue="], "--task-queue: String should have at least 1 character"),  # was: the config's queue
        (["--shutdown-grace", "abc"], "--shutdown-grace: 'abc' is not a duration"),
        (["--shutdown-grace", "4000d"], "--shutdown-grace: '4000d' is out of range"),
    ],
)
def test_a_bad_worker_flag_is_exit_2_naming_the_flag(local_cli: Cli, flag: list[str], fragment: str) -> None:
    # Checked as the setting it stands for is, before the worker connects to anything.
    run = local_cli("worker", *flag, timeout=30)
    assert run.code == 2 and fragment in run.stderr and len(run.stderr.splitlines()) == 1, str(run)


def test_a_server_port_with_no_room_for_the_ui_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "flowctl.toml"
    config.write_text("[server]\nport = 65000\n")
    code, out, err = in_process("--config", str(config), "server", "start")
    assert_refused(code, out, err, "server.port 65000 leaves no room", "server.ui_port")


def test_unusable_files_and_folders_are_exit_2_naming_them(local_cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    folder = tmp_path / "a-folder"
    (folder / "flowctl" / "config.toml").mkdir(parents=True)
    garbage = tmp_path / "garbage.db"
    garbage.write_text("not a database")
    cases = [
        (["config", "init"], {"FLOWCTL_CONFIG": str(blocker / "config.toml")}, "a file is in the way"),
        (["config", "init", "--force"], {"FLOWCTL_CONFIG": str(folder / "flowctl" / "config.toml")}, "is a directory"),
        (["server", "start"], {"XDG_STATE_HOME": str(blocker)}, "server state dir"),
        (["server", "start"], {"FLOWCTL_SERVER__DB_FILE": str(folder)}, "server.db_file"),
        (["worker"], {"FLOWCTL_SERVICES__LOCAL__DB": str(garbage)}, "not a database"),
        (["worker"], {"FLOWCTL_SERVICES__LOCAL__DB": str(folder)}, "is a directory"),
        (["ledger"], {"FLOWCTL_SERVICES__LOCAL__DB": str(garbage)}, "not a database"),
    ]
    for args, env, fragment in cases:
        run = local_cli(*args, env=env)
        assert run.code == 2 and fragment in run.stderr and len(run.stderr.splitlines()) == 1, (args, env, str(run))


def test_a_metrics_port_in_use_is_exit_2(local_cli: Cli) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        run = local_cli("worker", "--metrics-port", str(taken.getsockname()[1]))
    assert run.code == 2 and "--metrics-port" in run.stderr and "in use" in run.stderr, str(run)


@pytest.mark.parametrize("key", ["port", "ui_port"])
def test_a_server_port_bound_but_not_listening_is_a_conflict_and_leaves_no_server(local_cli: Cli, key: str) -> None:
    """A socket that holds the port without listening is not seen by a connect; the server's own
    bind fails. That is exit 4 naming the port setting, as a listener on it is, not exit 5."""
    import socket
    import tomllib

    port = tomllib.loads(Path(local_cli.env["FLOWCTL_CONFIG"]).read_text())["server"][key]
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        run = local_cli("server", "start")
    assert run.code == 4 and "address already in use" in run.stderr and "server.port" in run.stderr, str(run)
    assert len(run.stderr.splitlines()) == 1, str(run)
    assert local_cli("server", "status").code == 5  # nothing left running


# flowctl, held for a moment between launching the server and recording it, to be interrupted there.
HELD_BEFORE_RECORD = """
import sys, time
import flowctl.devserver as devserver
record = devserver.write_text
def held(*args, **kwargs):
    sys.stderr.write("launched, not recorded\\n"); sys.stderr.flush()
    time.sleep(30)
    return record(*args, **kwargs)
devserver.write_text = held
from flowctl.entry import main
sys.argv[0] = "flowctl"
main()
"""


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_start_interrupted_before_the_server_is_recorded_leaves_no_server(local_cli: Cli, sig: str) -> None:
    """Ctrl-C or SIGTERM after the server is launched but before its state file is written used to
    leave it running unrecorded: 'server stop' found nothing, and the next start met its port."""
    import signal
    import sys

    proc = subprocess.Popen([sys.executable, "-c", HELD_BEFORE_RECORD, "server", "start"], env=local_cli.env,
                            cwd=local_cli.cwd, stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stderr is not None
    assert proc.stderr.readline() == "launched, not recorded\n"
    proc.send_signal(getattr(signal, sig))
    assert proc.wait(timeout=30) == 128 + getattr(signal, sig)
    left = subprocess.run(["pgrep", "-f", f"start-dev --db-filename {local_cli.env['XDG_STATE_HOME']}/"],
                          capture_output=True, text=True)  # fmt: skip
    for pid in left.stdout.split():  # not left behind for the rest of the suite either
        os.kill(int(pid), signal.SIGKILL)
    assert left.stdout == "", f"server left running: {left.stdout}"


@pytest.mark.parametrize(
    "args",
    [
        ["approve", "order-1", "--as", "x" * 129],
        ["reject", "order-1", "--as", "risk", "--comment", "x" * 2001],
        ["approve", "order-1", "--as", "bob", "--timeout", "soon"],
    ],
)
def test_a_decision_too_long_or_badly_timed_is_refused_before_anything_is_sent(args: list[str]) -> None:
    code, out, err = in_process(*args, *NOBODY)
    assert_refused(code, out, err, "--as" if "--as" in err else "--")


def test_two_server_starts_at_once_leave_one_server_known_to_both(local_cli: Cli) -> None:
    procs = [
        subprocess.Popen([FLOWCTL, "server", "start", "-o", "json"], env=local_cli.env, cwd=local_cli.cwd,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]  # fmt: skip
    try:
        answers = [(proc.wait(timeout=120), proc.stdout.read(), proc.stderr.read()) for proc in procs]  # type: ignore[union-attr]
        assert [code for code, _, _ in answers] == [0, 0], answers
        infos = [json.loads(out) for _, out, _ in answers]
        assert sorted(info["started"] for info in infos) == [False, True], infos
        assert infos[0]["pid"] == infos[1]["pid"] and infos[0]["running"] and infos[1]["running"], infos
        status = local_cli("server", "status", "-o", "json")
        assert status.code == 0 and status.json()["pid"] == infos[0]["pid"], str(status)
    finally:
        stopped = local_cli("server", "stop", "-o", "json")
    assert stopped.code == 0 and stopped.json()["stopped"] is True, str(stopped)


def test_a_stale_state_file_never_makes_flowctl_signal_another_process(local_cli: Cli, tmp_path: Path) -> None:
    """A pid reused by a process whose command line even says start-dev is not flowctl's server."""
    decoy = subprocess.Popen(["bash", "-c", "exec -a 'temporal server start-dev --port 1' sleep 120"])
    try:
        state = tmp_path / "state" / "flowctl"
        state.mkdir(parents=True)
        config = local_cli("config", "show", "-o", "json").json()
        record = {"pid": decoy.pid, "ip": "127.0.0.1", "port": config["settings"]["server"]["port"],
                  "ui_port": 1, "db_file": str(state / "temporal.db")}  # fmt: skip
        (state / "server.json").write_text(json.dumps(record))
        status = local_cli("server", "status", "-o", "json")
        assert status.code == 5 and status.json()["running"] is False and status.json()["pid"] is None, str(status)
        stopped = local_cli("server", "stop", "-o", "json")
        assert stopped.code == 0 and stopped.json()["stopped"] is False, str(stopped)
        assert decoy.poll() is None, "the decoy was signalled"
    finally:
        decoy.kill()
        decoy.wait()


CONTROL = "".join(map(chr, [*range(0x00, 0x20), *range(0x7F, 0xA0)]))
HOSTILE = "\x1b[2J\x1b[31mAPPROVED\x1b[0m\r\x07\x9b31m\nsecond line\x08\x08"


def assert_no_control(text: str) -> None:
    bad = sorted({hex(ord(c)) for c in text if c in CONTROL and c != "\n"})
    assert not bad, f"control characters reached the terminal: {bad}"


@settings(max_examples=60, deadline=None)
@given(junk=st.text(alphabet=st.sampled_from(list(CONTROL) + list("ab [red]")), min_size=1, max_size=30))
def test_text_output_escapes_control_characters_from_data(junk: str) -> None:
    data = {**order_input("A-1"), "customer_id": f"c{junk}", "shipping_address": f"{junk}street"}
    code, out, err = in_process("start", "order", "-i", json.dumps(data), "--dry-run")
    assert code == 0, (out, err)
    assert_no_control(out)
    assert len(out.splitlines()) == len(json.loads(in_process("start", "order", "-i", json.dumps(data),
                                                               "--dry-run", "-o", "json")[1])), out  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(junk=st.text(alphabet=st.sampled_from(list(CONTROL) + [" "]), min_size=1, max_size=5))
def test_ids_with_whitespace_or_control_characters_are_refused(junk: str) -> None:
    code, out, err = in_process("start", "order", "-i", json.dumps(order_input("A-1")), "--id", f"x{junk}", *NOBODY)
    assert_refused(code, out, err, "not a valid workflow id")
    assert_no_control(err)


def test_a_hostile_comment_reaches_no_terminal_raw(flowctl: Cli, stack: Stack) -> None:
    """A reviewer comment full of escape codes, shown by every command that shows it."""
    key = uid()
    wid = f"order-{key}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(key, price=2000.0))).code == 0
    deadline = time.monotonic() + 60
    while (state := flowctl("query", wid, "-o", "json")).code != 0 or state.json()["status"] != "awaiting_review":
        assert time.monotonic() < deadline, str(state)
        time.sleep(0.2)
    assert flowctl("reject", wid, "--as", "risk", "--comment", HOSTILE).code == 0
    assert flowctl("result", wid, "--timeout", "1m").code == 10
    for args in (["query", wid], ["describe", wid], ["watch", wid], ["history", wid], ["result", wid],
                 ["ledger", "--order", key], ["list", "--query", f"WorkflowId = '{wid}'"]):  # fmt: skip
        run = flowctl(*args)
        assert run.code in (0, 10), str(run)
        assert_no_control(run.stdout + run.stderr)
    shown = flowctl("query", wid).stdout
    assert "\\x1b[2J" in shown and "APPROVED" in shown, shown  # escaped, still readable
    raw = flowctl("query", wid, "-o", "json").json()
    assert HOSTILE in raw["reason"], raw  # JSON carries the data as it is, escaped by JSON itself


def test_the_client_follows_the_embedded_server_unless_told_otherwise(tmp_path: Path) -> None:
    from conftest import free_port, isolated_env

    config = tmp_path / "flowctl.toml"
    cli = Cli(isolated_env(tmp_path, config), tmp_path)
    assert cli("config", "init").code == 0
    assert "address" not in config.read_text()
    port = free_port()
    assert cli("config", "set", "server.port", str(port)).code == 0
    assert cli("config", "set", "server.ui_port", str(free_port())).code == 0
    assert cli("config", "show", "-o", "json").json()["connection"]["address"] == f"localhost:{port}"
    assert cli("server", "start").code == 0
    try:
        listed = cli("list")
        assert listed.code == 0, str(listed)
        # An address of the user's own that disagrees is named with the setting it disagrees with.
        elsewhere = free_port()
        assert cli("config", "set", "profile.default.address", f"localhost:{elsewhere}").code == 0
        lost = cli("list")
        assert lost.code == 5 and "profile default's address" in lost.stderr and "server.port" in lost.stderr, str(lost)
        # The demo finds nothing at that address; it starts no second server and stops none.
        demo = cli("demo", timeout=180)
        assert demo.code == 5, str(demo)
        assert cli("server", "status").code == 0, "the demo stopped a server it had not started"
    finally:
        assert cli("server", "stop").code == 0


@pytest.mark.parametrize(("sig", "code", "said"), [(2, 130, "interrupted"), (15, 143, "terminated (SIGTERM)")])
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_waiting_command_stopped_by_a_signal_says_what_it_was_doing(
    flowctl: Cli, sig: int, code: int, said: str, fmt: str
) -> None:
    key = uid()
    wid = f"order-{key}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(key, price=5000.0))).code == 0
    proc = subprocess.Popen([FLOWCTL, "result", wid, "-o", fmt], env=flowctl.env, cwd=flowctl.cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(2)  # well into the wait
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code and out == "" and len(err.splitlines()) == 1, (proc.returncode, out, err)
    message = json.loads(err)["error"]["message"] if fmt == "json" else err
    assert f"{said} while waiting for {wid} to end; the workflow was not changed" in message, message
    assert flowctl("describe", wid, "-o", "json").json()["status"] == "running"
    flowctl("terminate", wid, "--reason", "cleanup")


@pytest.mark.parametrize(("sig", "code", "said"), [(2, 130, "interrupted"), (15, 143, "terminated (SIGTERM)")])
def test_a_signal_while_flowctl_is_still_loading_is_one_line_too(
    tmp_path: Path, sig: int, code: int, said: str
) -> None:
    """A Ctrl-C in the first tenth of a second (typer, rich and pydantic still loading) printed
    Python's traceback; a SIGTERM then ended it with no word. Sent at moments spread over the
    start-up, then while the command reads its input."""
    landed = 0
    for delay in (0.02, 0.05, 0.08, 0.12, 0.2, 0.35, 0.6, 1.2):
        for fmt in ("text", "json"):
            proc = subprocess.Popen([FLOWCTL, "start", "order", "-i", "-", "-o", fmt, *NOBODY], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)  # fmt: skip
            time.sleep(delay)
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=30)
            frames = re.findall(r'File "([^"]+)"', err)
            ours = [
                f for f in frames if "/flowctl/" in f and not f.endswith(("flowctl/entry.py", "flowctl/__init__.py"))
            ]
            python_starting = proc.returncode in (-2, -15) or "Fatal Python error: init_import_site" in err
            if python_starting and not ours:
                continue  # Python was still starting (site, the first import), before flowctl.entry could take over

            landed += 1
            assert proc.returncode == code and out == "" and len(err.splitlines()) == 1, (delay, proc.returncode, err)
            message = json.loads(err)["error"]["message"] if fmt == "json" else err
            assert said in message and "Traceback" not in err, (delay, err)
    assert landed >= 4  # the later moments land in flowctl's code, however loaded the machine


@pytest.mark.slow
def test_waiting_commands_ride_out_a_server_restart_and_bulk_stops_when_it_is_gone(tmp_path: Path) -> None:
    from conftest import free_port, isolated_env, write_config

    port = free_port()
    cli = Cli(isolated_env(tmp_path, write_config(tmp_path, port=port, task_queue="no-worker")), tmp_path)
    assert cli("server", "start", timeout=120).code == 0
    try:
        key = uid()
        wid = f"order-{key}"
        assert cli("start", "order", "-i", json.dumps(order_input(key))).code == 0  # no worker: it stays running
        other = uid()
        assert cli("start", "order", "-i", json.dumps(order_input(other))).code == 0
        waiting = {
            name: subprocess.Popen([FLOWCTL, *args], env=cli.env, cwd=cli.cwd, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
            for name, args in (("result", ["result", wid, "--timeout", "2m"]), ("history", ["history", wid, "--follow"]),
                               ("watch", ["watch", wid]), ("short", ["result", f"order-{other}", "--timeout", "30s"]))
        }  # fmt: skip
        time.sleep(15)  # into a long poll: the server cuts it
        assert cli("server", "stop").code == 0
        time.sleep(5)
        assert cli("server", "start", timeout=120).code == 0
        assert cli("terminate", wid, "--reason", "done waiting").code == 0
        for name, proc in waiting.items():
            out, err = proc.communicate(timeout=120)
            expected = {"history": 0, "short": 20}.get(name, 11)  # short: the server is back before its timeout
            assert proc.returncode == expected, (name, proc.returncode, out, err)
            assert "Temporal is unreachable" in err and "Temporal answers again" in err, (name, err)
            assert "internal error" not in err, (name, err)

        # A bulk start whose server goes away stops starting: every line reported, exit 5.
        orders = tmp_path / "orders.jsonl"
        orders.write_text("".join(json.dumps(order_input(uid())) + "\n" for _ in range(300)))
        bulk = subprocess.Popen([FLOWCTL, "start", "order", "--from", str(orders), "--rate", "40"], env=cli.env,
                                cwd=cli.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(2)
        assert cli("server", "stop").code == 0
        out, err = bulk.communicate(timeout=120)
        lines = [json.loads(line) for line in out.splitlines()]
        assert bulk.returncode == 5 and len(lines) == 300, (bulk.returncode, len(lines), err)
        not_started = [line for line in lines if line.get("error", "").startswith("not started")]
        assert len(not_started) > 150 and {line["code"] for line in not_started} == {5}, lines[-1]
    finally:
        cli("server", "stop")


def test_smaller_things_the_trials_found(local_cli: Cli, tmp_path: Path) -> None:
    data = json.dumps(order_input("A-1"))
    # Bulk-only options without --from.
    for extra in (["--concurrency", "5"], ["--rate", "3"]):
        assert_refused(*in_process("start", "order", "-i", data, *extra, *NOBODY), "need --from")
    # A URL where Temporal takes host:port: one line, no warning from the SDK's source.
    assert_refused(*in_process("--address", "http://localhost:7233", "list"), "is a URL", "localhost:7233")
    # An empty CA file would have TLS trust the system's roots instead.
    empty = tmp_path / "ca.pem"
    empty.write_text("")
    run = local_cli("list", env={"TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(empty), "TEMPORAL_TLS": "true"})
    assert run.code == 2 and "server_ca_cert is empty" in run.stderr, str(run)
    # A group without a command: one line on stderr, nothing on stdout.
    for group in (["server"], ["config"]):
        code, out, err = in_process(*group)
        assert_refused(code, out, err, "needs a command")
    code, out, err = in_process("server", "-o", "json")
    assert (code, out) == (2, "") and json.loads(err)["error"]["code"] == 2, (code, out, err)
    # Text shows true/false, not Python's True/False; errors keep non-ASCII as it is.
    code, out, _ = in_process("start", "order", "-i", data, "--dry-run")
    assert code == 0 and "dry_run" in out and "true" in out and "True" not in out, out
    code, out, err = in_process("start", "order", "-i", json.dumps({**order_input("A-1"), "order_id": "Ü-1"}))
    assert_refused(code, out, err, 'got "Ü-1"')
    # A long value in an error is cut with an ellipsis, not mid-JSON.
    long = {**order_input("A-1"), "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": 5}] * 101}
    code, out, err = in_process("start", "order", "-i", json.dumps(long))
    assert_refused(code, out, err, "…)")
    # A codec keys file saved with a byte-order mark is read as the same keys.
    keys = tmp_path / "codec.keys"
    keys.write_bytes(b"\xef\xbb\xbf" + local_cli("codec-key", "--id", "bom").stdout.strip().encode() + b"\n")
    shown = local_cli("config", "show", "-o", "json", env={"FLOWCTL_CODEC__KEYS_FILE": str(keys)})
    assert shown.code == 0 and "'bom'" in shown.json()["connection"]["codec"], str(shown)


def test_a_duplicate_line_in_a_bulk_file_names_its_first(local_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text("".join(json.dumps(order_input(key)) + "\n" for key in ("A-1", "A-2", "A-1")))
    run = local_cli("start", "order", "--from", str(path), "--dry-run")
    lines = {json.loads(line)["line"]: json.loads(line) for line in run.stdout.splitlines()}
    assert "duplicate of line 1" in lines[3]["error"] and lines[1]["dry_run"], lines
    assert run.code == 2, str(run)


def test_an_approver_with_a_quote_or_a_backslash_is_found(flowctl: Cli) -> None:
    names = ["o'brien", "dom\\ana", "p\\q", "end\\", 'say "hi"']
    request = {"request_id": uid(), "requester": "alice", "title": "t", "amount": 5000, "approvers": [*names, "bob"]}
    assert flowctl("start", "approval", "-i", json.dumps(request)).code == 0
    wid = f"approval-{request['request_id']}"
    for approver in names:
        deadline = time.monotonic() + 30
        while wid not in [r["workflow_id"] for r in flowctl("approvals", "--approver", approver, "-o", "json").json()]:
            assert time.monotonic() < deadline, approver
            time.sleep(0.3)
    # The dev server's full-text index cannot take a double quote: a query of one is the user's to fix.
    query = flowctl("list", "--query", """FlowApprovers = 'say "hi"'""")
    assert query.code == 2 and "--query" in query.stderr and len(query.stderr.splitlines()) == 1, str(query)
    for nobody in ("dom", "p", "end", "pq", "o"):  # a near name is not the name
        found = flowctl("approvals", "--approver", nobody, "-o", "json")
        assert found.code == 0 and wid not in [r["workflow_id"] for r in found.json()], (nobody, str(found))
    flowctl("terminate", wid, "--reason", "cleanup")


def test_a_run_from_before_resumable_keys_is_not_resumed() -> None:
    from flowctl.errors import ConflictError
    from flowctl.ops.runs import refuse_unsettled
    from flowctl_workflows.models import SETTLED

    refuse_unsettled("order-1", {}, "r")  # it never ran: nothing to recognise
    refuse_unsettled("order-1", {"FlowKind": "order", "TemporalChangeVersion": [SETTLED]}, "r")
    with pytest.raises(ConflictError, match="before runs could be resumed"):
        refuse_unsettled("order-1", {"FlowKind": "order"}, "r")


def test_list_and_describe_tell_the_truth(flowctl: Cli, stack: Stack) -> None:
    held, declined = uid(), uid()
    assert flowctl("start", "order", "-i", json.dumps(order_input(held, price=2000.0))).code == 0
    assert flowctl("start", "order", "-i", json.dumps(order_input(declined, card="tok_declined")), "--wait").code == 10
    deadline = time.monotonic() + 60
    while f"order-{held}" not in [r["workflow_id"] for r in flowctl("list", "--status", "awaiting_review",
                                                                    "--limit", "1000", "-o", "json").json()]:  # fmt: skip
        assert time.monotonic() < deadline
        time.sleep(0.3)
    compensated = flowctl("list", "--status", "compensated", "--limit", "1000", "-o", "json").json()
    assert f"order-{declined}" in [r["workflow_id"] for r in compensated]
    # A terminated workflow's row says terminated, not the status it last set itself.
    first_run = flowctl("describe", f"order-{held}", "-o", "json").json()["run_id"]
    assert flowctl("terminate", f"order-{held}", "--reason", "t").code == 0
    both = f"WorkflowId IN ('order-{held}', 'order-{declined}')"
    rows = {r["workflow_id"]: r for r in flowctl("list", "--query", both, "-o", "json").json()}
    assert rows[f"order-{held}"]["flow_status"] == "terminated", rows
    waiting = flowctl("list", "--status", "awaiting_review", "--query", both, "-o", "json").json()
    assert waiting == [], waiting  # it waits for nothing any more
    cut = flowctl("list", "--query", both, "--limit", "1")
    assert cut.code == 0 and "1 of 2 shown, 1 left out" in cut.stderr, str(cut)
    # --run-id reads a given run: the terminated one, after a new run took its id.
    assert flowctl("start", "order", "-i", json.dumps(order_input(held, price=2000.0))).code == 0
    old = flowctl("describe", f"order-{held}", "--run-id", first_run, "-o", "json")
    assert old.code == 0 and old.json()["status"] == "terminated", str(old)
    assert flowctl("result", f"order-{held}", "--run-id", first_run).code == 11
    assert flowctl("history", f"order-{held}", "--run-id", first_run, "-o", "jsonl").stdout.count("\n") > 5
    assert flowctl("terminate", f"order-{held}", "--reason", "cleanup").code == 0
    # A workflow started by another client with input its worker cannot decode.
    broken = f"order-{uid()}"
    subprocess.run([TEMPORAL_BIN, "workflow", "start", "--type", "Order", "--task-queue", stack.task_queue,
                    "--workflow-id", broken, "--input", '{"not": "an order"}', "--address", stack.address],
                   check=True, capture_output=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while "workflow_task" not in (info := flowctl("describe", broken, "-o", "json").json()):
        assert time.monotonic() < deadline, info
        time.sleep(0.5)
    assert info["workflow_task"]["failing"] and info["workflow_task"]["attempt"] > 1, info
    asked = flowctl("query", broken, "--timeout", "2s")
    assert asked.code == 5 and "keeps failing" in asked.stderr, str(asked)
    listed = flowctl("list", "--kind", "order", "--query", f"WorkflowId = '{broken}'", "-o", "json").json()
    assert [r["workflow_id"] for r in listed] == [broken]
    # watch says so too (it printed nothing, waiting for steps that never come), once.
    watcher = subprocess.Popen([FLOWCTL, "watch", broken, "-o", "jsonl"], env=flowctl.env, stdout=subprocess.PIPE,
                               text=True)  # fmt: skip
    assert watcher.stdout is not None
    first = json.loads(watcher.stdout.readline())
    assert first["change"] == "task_failed" and first["message"], first
    flowctl("terminate", broken, "--reason", "cleanup")
    rest = [json.loads(line) for line in watcher.stdout]
    assert watcher.wait(timeout=30) == 11 and [c["change"] for c in rest] == ["outcome"], rest


@pytest.mark.parametrize(
    ("header", "value"), [("x-h", "line\\nbreak-secret"), ("bad header", "v-secret"), ("x-e", "\\u001b[2J")]
)
def test_an_rpc_metadata_header_no_server_could_take_is_refused_by_name(
    tmp_path: Path, header: str, value: str
) -> None:
    config = tmp_path / "flowctl.toml"
    config.write_text(
        f'[profile.default]\naddress = "127.0.0.1:9"\n[profile.default.grpc_meta]\n"{header}" = "{value}"\n'
    )
    code, out, err = in_process("--config", str(config), "list")
    assert_refused(code, out, err, "grpc_meta", repr(header))
    assert "secret" not in err and "2J" not in err, err


def test_what_a_second_adversarial_pass_found(local_cli: Cli, tmp_path: Path) -> None:
    big = "1" * 5000
    order = json.dumps(order_input("A-1"))
    for args in (["start", "order", "-i", f'{{"order_id": {big}}}'],
                 ["start", "order", "-i", order, "--set", f"items=[{{\"sku\":\"SKU-1\",\"quantity\":{big}}}]"]):  # fmt: skip
        assert_refused(*in_process(*args, *NOBODY), "thousands of digits")
    lines = tmp_path / "orders.jsonl"
    surrogate = json.dumps({**order_input("A-2"), "customer_id": "x"}).replace('"x"', '"\\ud800"')
    lines.write_text(f'{{"order_id": {big}}}\n{surrogate}\n{order}\n')
    run = local_cli("start", "order", "--from", str(lines), "--dry-run")
    reported = {json.loads(line)["line"]: json.loads(line) for line in run.stdout.splitlines()}
    assert run.code == 2 and "thousands of digits" in reported[1]["error"], str(run)
    assert "lone surrogate" in reported[2]["error"] and reported[3]["dry_run"], reported
    # Config: a key far too deep, a header table set to a string, a header no server takes.
    assert local_cli("config", "set", "profile.default.grpc_meta" + ".a" * 3000, "1").code == 2
    table = local_cli("config", "set", "profile.default.grpc_meta", "authorization: Bearer TYPOSECRET")
    assert table.code == 2 and "TYPOSECRET" not in table.stdout + table.stderr, str(table)
    assert local_cli("config", "set", "profile.default.grpc_meta.bad name", "v").code == 2
    assert local_cli("config", "show").code == 0  # nothing bad was written
    assert local_cli("config", "set", "server.ip", "::1").code == 2
    # State and ledger files that are not what flowctl wrote.
    state = tmp_path / "state" / "flowctl"
    state.mkdir(parents=True)
    (state / "server.json").write_text('{"pid": 1e400}')
    assert local_cli("server", "status").code == 5 and local_cli("server", "stop").code == 0
    (state / "server.json").unlink(missing_ok=True)  # stop cleared the stale record
    (state / "server.json").mkdir()
    started = local_cli("server", "start")
    assert started.code == 2 and "is a directory" in started.stderr, str(started)
    other = tmp_path / "other.db"
    import sqlite3

    sqlite3.connect(other).execute("create table charges(x)").connection.commit()
    before = other.read_bytes()
    ledger = local_cli("ledger", env={"FLOWCTL_SERVICES__LOCAL__DB": str(other)})
    assert ledger.code == 2 and "not a ledger" in ledger.stderr and "charges" in ledger.stderr, str(ledger)
    assert other.read_bytes() == before and not Path(f"{other}-wal").exists()  # not a table or a pragma added
    # Arguments and environments.
    for args, fragment in ((["start", "order", "-i", order, "--id", "a\u202eb"], "not a valid workflow id"),
                           (["approve", "order-1", "--as", "a\nb"], "--as"),
                           (["describe", "order-1", "--run-id", "nope"], "not a run id"),
                           (["--address", "127.0.0.1", "list"], "not host:port"),
                           (["--address", "localhost:7233/x", "list"], "not host:port"),
                           (["--config", "/dev/zero", "list"], "not a regular file")):  # fmt: skip
        run = local_cli(*args)
        assert run.code == 2 and fragment in run.stderr and len(run.stderr.splitlines()) == 1, (args, str(run))
    odd = os.fsdecode(b"\xff")
    assert local_cli("config", "show", env={"FOO": odd}).code == 0  # not flowctl's nor Temporal's: ignored
    refused = local_cli("list", env={"TEMPORAL_NAMESPACE": odd})
    assert refused.code == 2 and "TEMPORAL_NAMESPACE" in refused.stderr, str(refused)
    # A closed pipe on help, too.
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([FLOWCTL, "--help"], stdout=write, stderr=subprocess.PIPE, env=local_cli.env, timeout=60)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, b""), proc
    # JSON carries 8-bit controls escaped, so they cannot reach a terminal raw either.
    data = {**order_input("A-1"), "customer_id": "c\x9bx"}
    code, out, _ = in_process("start", "order", "-i", json.dumps(data), "--dry-run", "-o", "json")
    assert code == 0 and "\x9b" not in out and json.loads(out)["input"]["customer_id"] == "c\x9bx", out


def test_config_set_takes_a_negative_value_and_errors_cut_long_values(local_cli: Cli) -> None:
    negative = local_cli("config", "set", "services.local.transient_failure_rate", "-1")
    assert negative.code == 2 and "greater than or equal to 0" in negative.stderr, str(negative)  # not "No such option"
    long = local_cli("list", env={"FLOWCTL_OUTAGE_LIMIT": "9" * 5000 + "x"})
    assert long.code == 2 and len(long.stderr) < 400 and "…" in long.stderr, str(long)


@pytest.mark.parametrize("number", ["1e-400", "1e400", "-1e999", "0.1e-330", "NaN", "Infinity", "-Infinity",
                                    "4.9999999999999999999", "1.10000000000000008881784197001"])  # fmt: skip
def test_a_number_a_float_cannot_hold_is_refused_not_rounded(number: str) -> None:
    """1e-400 was started as a price of 0.0, 1e400 as infinity and 4.9999999999999999999 as 5.00
    (charged 500 cents): none is what was written. NaN and Infinity are not JSON at all,
    though Python's reader takes them."""
    price = f'{{"sku": "SKU-1", "quantity": 1, "unit_price": {number}}}'
    order = json.dumps(order_input("A-1")).replace('{"sku": "SKU-1", "quantity": 1, "unit_price": 5.0}', price)
    assert number in order
    assert_refused(*in_process("start", "order", "-i", order, *NOBODY), number)
    assert_refused(*in_process("start", "order", "-i", json.dumps(order_input("A-1")), "--set",
                               f"items=[{price}]", *NOBODY), number)  # fmt: skip


def test_what_a_third_adversarial_pass_found(local_cli: Cli, tmp_path: Path) -> None:
    import sqlite3

    # A table set at once echoes its secrets redacted, in text and JSON.
    for key, value, fmt in (("profile.p", '{api_key="LEAKME9"}', "text"),
                            ("profile.p.tls", '{client_key_data="LEAKME8"}', "json"),
                            ("profile", '{q={api_key="LEAKME11"}}', "text")):  # fmt: skip
        run = local_cli("config", "set", key, value, "-o", fmt)
        assert run.code == 0 and "LEAKME" not in run.stdout + run.stderr and "<redacted>" in run.stdout, str(run)
    # A state file nested far too deep is no record, not exit 1.
    state = tmp_path / "state" / "flowctl"
    state.mkdir(parents=True, exist_ok=True)
    (state / "server.json").write_text("[" * 100_000 + "]" * 100_000)
    assert local_cli("server", "status").code == 5 and local_cli("server", "stop").code == 0
    # A ledger row with a time no calendar holds is printed as stored.
    db = tmp_path / "ledger.db"
    from flowctl_workflows.services.local import connect

    connect(db).close()  # a ledger as the services create it
    with sqlite3.connect(db) as conn:
        conn.execute("insert into charges values ('z', 'k5', 'AT1', 'c', 5, 'captured', 1e300)")
        conn.execute("insert into charges values ('y', 'k6', 'AT1', 'c', 1e400, 'captured', 1.0)")
    book = local_cli("ledger", "--order", "AT1", "-o", "json", env={"FLOWCTL_SERVICES__LOCAL__DB": str(db)})
    charges = {row["charge_id"]: row for row in book.json()["charges"]} if book.code == 0 else {}
    assert charges["z"]["at"] == 1e300, str(book)
    assert charges["y"]["amount_cents"] == "inf" and "Infinity" not in book.stdout, book.stdout


@pytest.mark.parametrize(("sig", "code"), [(15, 143), (2, 130)])
def test_a_stopped_command_whose_reader_is_gone_still_exits(flowctl: Cli, sig: int, code: int) -> None:
    """`... --wait 2>&1 | head -3`: head has gone when the stop comes, so the line saying so
    cannot be written. It hung for good (the error escaped to the interpreter's exit, which
    the SDK's runtime blocks); a CI job would have hung with it."""
    request = {"request_id": uid(), "requester": "alice", "title": "t", "amount": 5000, "approvers": ["bob"]}
    reader, writer = os.pipe()
    proc = subprocess.Popen([FLOWCTL, "start", "approval", "-i", json.dumps(request), "--wait"],
                            stdout=writer, stderr=writer, env=flowctl.env)  # fmt: skip
    os.close(writer)
    time.sleep(3)  # started and waiting for a decision
    assert b"started approval-" in os.read(reader, 65536)
    os.close(reader)
    time.sleep(0.5)
    proc.send_signal(sig)
    assert proc.wait(timeout=20) == code
    flowctl("terminate", f"approval-{request['request_id']}", "--reason", "cleanup")


def test_config_sets_at_once_all_land_and_no_reader_sees_half_a_file(local_cli: Cli, tmp_path: Path) -> None:
    """Sets of different keys at once lost some of them (read, change, write, unlocked), and a
    command reading meanwhile could meet half a file."""
    config = tmp_path / "c.toml"
    keys = {f"profile.p{i}.namespace": f"ns-{i}" for i in range(12)}
    sets = [subprocess.Popen([FLOWCTL, "--config", str(config), "config", "set", key, value], env=local_cli.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for key, value in keys.items()]  # fmt: skip
    shows = [local_cli("--config", str(config), "config", "show", "-o", "json") for _ in range(5)]
    assert all(proc.wait(timeout=60) == 0 for proc in sets), [proc.stderr.read() for proc in sets if proc.stderr]
    assert all(show.code in (0, 2) and "Expected" not in show.stderr for show in shows), shows  # 2: not yet there
    profiles = local_cli("--config", str(config), "config", "show", "-o", "json").json()["settings"]["profile"]
    assert {f"profile.{name}.namespace": p["namespace"] for name, p in profiles.items()} == keys
    assert not list(tmp_path.glob(".c.toml.*.tmp")), "a staged write was left behind"


def test_endless_input_duplicate_keys_and_a_bad_line_in_a_bulk_file(local_cli: Cli, tmp_path: Path) -> None:
    """`-i @/dev/zero` and `--from /dev/zero` read until memory ran out, deaf to SIGTERM; a
    key given twice was silently the last; one byte that is not UTF-8 refused a whole bulk file."""
    for args in (["-i", "@/dev/zero"], ["--from", "/dev/zero"]):
        run = local_cli("start", "order", *args, timeout=60)
        assert run.code == 2 and "more than flowctl reads" in run.stderr and len(run.stderr.splitlines()) == 1, str(run)
    twice = json.dumps(order_input("A-1"))[:-1] + ', "order_id": "A-2"}'
    assert_refused(*in_process("start", "order", "-i", twice, *NOBODY), "'order_id' twice")
    lines = tmp_path / "orders.jsonl"
    lines.write_bytes(
        json.dumps(order_input("A-1")).encode() + b"\n\xff\xfe\n" + json.dumps(order_input("A-3")).encode()
    )
    run = local_cli("start", "order", "--from", str(lines), "--dry-run")
    reported = {json.loads(line)["line"]: json.loads(line) for line in run.stdout.splitlines()}
    assert run.code == 2 and "not UTF-8" in reported[2]["error"], str(run)
    assert reported[1]["dry_run"] and reported[3]["dry_run"], reported


@pytest.mark.parametrize(("args", "fragment"), [
    (["--namespace", "ns\x1b", "list"], "not a namespace name"),
    (["--namespace", " x", "list"], "not a namespace name"),
    (["--address", "host\n:1", "list"], "not host:port"),
    (["--address", "my host:7233", "list"], "not host:port"),
    (["approvals", "--approver", ""], "--approver is empty"),
])  # fmt: skip
def test_a_namespace_address_or_name_no_server_takes_is_refused_before_sending(args: list[str], fragment: str) -> None:
    """These went to the server (a DNS lookup, a namespace not found, every request listed)."""
    argv = args if "--address" in args else [*args, *NOBODY]
    assert_refused(*in_process(*argv), fragment)


def test_a_stop_during_config_set_leaves_either_the_change_or_nothing_and_says_which(
    local_cli: Cli, tmp_path: Path
) -> None:
    """A stop at a random moment: exit 0 with the change made and said, or 130/143 with one line
    and the file as it was; never the change made and "terminated" said (as it was), nor two lines."""
    import random

    config = tmp_path / "c.toml"
    began = time.monotonic()
    assert local_cli("--config", str(config), "config", "set", "task_queue", "start").code == 0
    whole = time.monotonic() - began  # how long one takes on this machine now: stops fall before and after
    moments = random.Random(7)
    codes = set()
    for i in range(30):
        proc = subprocess.Popen([FLOWCTL, "--config", str(config), "config", "set", "task_queue", f"q-{i}"],
                                env=local_cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(moments.uniform(0.1, 1.5) * whole)
        proc.send_signal(moments.choice([2, 15]))
        out, err = proc.communicate(timeout=30)
        changed = f'"q-{i}"' in config.read_text()
        codes.add(proc.returncode)
        if proc.returncode == 0:
            assert changed and f"q-{i}" in out, (i, out, err)
        elif proc.returncode > 0:  # -2/-15: Python was still starting, before flowctl's code ran
            assert proc.returncode in (130, 143) and not changed and len(err.splitlines()) == 1, (i, out, err)
    assert 0 in codes  # some landed after the change was made


def test_a_money_setting_is_read_as_written(local_cli: Cli, tmp_path: Path) -> None:
    """999.9999999999999999 was read as 1000.00: an approval of 999.99 then waited for a human."""
    number = "999.9999999999999999"
    file = tmp_path / "money.toml"
    file.write_text(f"[approval]\nauto_approve_below = {number}\n")
    for run in (local_cli("--config", str(file), "config", "show"),
                local_cli("config", "set", "approval.auto_approve_below", number),
                local_cli("config", "show", env={"FLOWCTL_APPROVAL__AUTO_APPROVE_BELOW": number})):  # fmt: skip
        assert run.code == 2 and number in run.stderr and len(run.stderr.splitlines()) == 1, str(run)
    assert local_cli("config", "set", "approval.auto_approve_below", "999.99").code == 0


def test_an_order_from_another_client_is_read_as_written_or_not_at_all(flowctl: Cli, stack: Stack) -> None:
    """Started with the temporal CLI, 4.9999999999999999999 was charged as 5.00 and a price given
    twice as the last one: the worker refuses such input as flowctl does (its task fails, describe
    says so), and nothing is charged."""
    base = json.dumps(order_input("X"))[:-1]
    inputs = {
        "digits": json.dumps(order_input("X")).replace('"unit_price": 5.0', '"unit_price": 4.9999999999999999999'),
        "twice": base.replace('"unit_price": 5.0', '"unit_price": 5.0, "unit_price": 2000.0') + "}",
    }
    for name, text in inputs.items():
        key = uid(name)
        text = text.replace('"order_id": "X"', f'"order_id": "{key}"')
        wid = f"order-{key}"
        subprocess.run([TEMPORAL_BIN, "workflow", "start", "--type", "Order", "--task-queue", stack.task_queue,
                        "--workflow-id", wid, "--input", text, "--address", stack.address],
                       check=True, capture_output=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while "workflow_task" not in (info := flowctl("describe", wid, "-o", "json").json()):
            assert time.monotonic() < deadline, info
            time.sleep(0.5)
        assert info["workflow_task"]["failing"], info
        assert flowctl("ledger", "--order", key, "-o", "json").json()["charges"] == []
        flowctl("terminate", wid, "--reason", "cleanup")


def test_what_a_fourth_adversarial_pass_found(local_cli: Cli, tmp_path: Path) -> None:
    # A state file of a running server whose fields are not of the types flowctl writes is no
    # record (the server is then not flowctl's to report on), not exit 1.
    assert local_cli("server", "start", timeout=120).code == 0
    record_file = tmp_path / "state" / "flowctl" / "server.json"
    record = json.loads(record_file.read_text())
    try:
        for ui_port in ("x", None, [1], 1.5):
            record_file.write_text(json.dumps({**record, "ui_port": ui_port}))
            status = local_cli("server", "status")
            assert status.code in (0, 5) and "internal error" not in status.stderr, (ui_port, str(status))
    finally:
        record_file.write_text(json.dumps(record))
        assert local_cli("server", "stop").code == 0
    # config set of a whole table is checked as a key of it is; so are profiles, as Temporal reads them.
    config = tmp_path / "c.toml"
    for key, value in (("codec", '{keys="bad:SECRETKEYBAD"}'), ("profile.prod.address", "5"),
                       ("profile.prod.bogus", "1"), ("codec.keys_file", "/nonexistent"),
                       ("profile.prod.grpc_meta.x-token-bin", "S")):  # fmt: skip
        run = local_cli("--config", str(config), "config", "set", key, value)
        assert run.code == 2 and "SECRETKEYBAD" not in run.stdout + run.stderr, str(run)
        assert not config.exists() or local_cli("--config", str(config), "config", "show").code == 0
    # JSON output escapes what a terminal would act on, bidi and line separators included.
    from flowctl.output import to_json

    assert to_json({"r": "a\u202eb\u2028c\x9b"}) == '{"r": "a\\u202eb\\u2028c\\u009b"}'


def test_an_amount_written_with_underscores_is_refused() -> None:
    """Python reads "5_0" as 50: as text (an environment variable, a TOML string) it is no amount."""
    assert_refused(*in_process("start", "approval", "-i", json.dumps({"request_id": "r1", "requester": "a",
                   "title": "t", "amount": "5_0", "approvers": ["b"]}), *NOBODY), "'5_0'")  # fmt: skip


def test_a_standard_stream_the_shell_closed_is_nothing_to_read_or_write_not_a_bug(flowctl: Cli) -> None:
    """`<&-`, `>&-` and `2>&-` leave Python without that stream: flowctl reads nothing from it
    (a usage error) and writes into nothing, with the exit code the command has."""
    order = f"order-{uid('cs')}"
    assert flowctl("start", "order", "-i", json.dumps(order_input(order.removeprefix("order-"))), "--wait").code == 0
    for line, code in (
        (f"{FLOWCTL} start order --from - <&-", 2),
        (f"{FLOWCTL} start order -i - <&-", 2),
        (f"{FLOWCTL} wait {order} >&-", 0),
        (f"{FLOWCTL} count >&- 2>&-", 0),
        (f"{FLOWCTL} describe nobody-{order} 2>&-", 3),
    ):
        run = subprocess.run(line, shell=True, env=flowctl.env, capture_output=True, text=True, timeout=60)
        assert run.returncode == code and "internal error" not in run.stderr, (line, run.returncode, run.stderr)
