"""The fast parts of the CLI run in this process, on buffers (`flowctl.cli.run` takes the
streams to write to): what they print and the exit code they return, with nothing to connect
to. The subprocess tests elsewhere prove the same codes reach the shell."""

from __future__ import annotations

import io
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import isolated_env, write_config

from flowctl import __version__
from flowctl.cli import run
from flowctl.output import Streams


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in isolated_env(tmp_path, write_config(tmp_path, port=1, task_queue="inproc")).items():
        monkeypatch.setenv(key, value)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in handlers.items():  # run() installs flowctl's: give pytest its own back
        signal.signal(sig, handler)


def flowctl(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), Streams(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def test_version_is_written_to_the_given_stdout() -> None:
    assert flowctl("--version") == (0, f"flowctl {__version__}\n", "")


def test_kinds_as_json_on_the_given_stdout() -> None:
    code, out, err = flowctl("kinds", "-o", "json")
    assert code == 0 and err == ""
    assert [kind["name"] for kind in json.loads(out)] == ["approval", "onboarding", "order"]


def test_an_unknown_kind_is_exit_3_with_one_line_on_the_given_stderr() -> None:
    code, out, err = flowctl("start", "parcel", "-i", "{}")
    assert code == 3 and out == ""
    assert err.startswith("flowctl: error: unknown kind 'parcel'") and err.count("\n") == 1, err


def test_bad_input_is_exit_2_in_json_under_o_json_before_any_connection() -> None:
    code, out, err = flowctl("start", "order", "-i", '{"order_id": "A 1"}', "-o", "json")
    assert code == 2 and out == ""
    error = json.loads(err)["error"]
    assert error["code"] == 2 and "order_id" in error["message"], error


def test_a_usage_error_of_the_parser_reaches_the_given_stderr() -> None:
    code, _out, err = flowctl("list", "--limit", "0")
    assert code == 2 and "--limit" in err, err


def test_unreachable_server_is_exit_5_naming_the_address() -> None:
    code, out, err = flowctl("describe", "order-A-1")
    assert code == 5 and out == "" and "127.0.0.1:1" in err, err
