"""A mistyped name gets the closest one that exists: a command, a kind, a config key, a flow
status, an input field, or a workflow id that exists under another kind's prefix."""

from __future__ import annotations

from conftest import Cli, order_input, start, uid


def one_line(stderr: str) -> str:
    assert len(stderr.splitlines()) == 1, stderr
    return stderr


def test_a_workflow_id_without_its_kinds_prefix_names_the_one_that_exists(flowctl: Cli) -> None:
    key = uid("dy")
    order = start(flowctl, "order", order_input(key))
    for typed in (key, f"onboarding-{key}"):
        run = flowctl("describe", typed)
        assert run.code == 3 and f"did you mean '{order}'?" in one_line(run.stderr), str(run)
    nothing = flowctl("result", f"nobody-{key}")
    assert nothing.code == 3 and "did you mean" not in nothing.stderr, str(nothing)


def test_mistyped_names_offline_get_the_closest(flowctl: Cli) -> None:
    for args, code, said in (
        (["wrker"], 2, "Did you mean 'worker'"),
        (["start", "ordr", "--set", "order_id=1"], 3, "did you mean 'order'?"),
        (["config", "set", "task_queu", "q"], 2, "did you mean 'task_queue'?"),
        (["config", "set", "services.local.latncy", "1s"], 2, "did you mean 'latency'?"),
        (["start", "order", "--set", "custmer_id=c"], 2, "did you mean 'customer_id'?"),
        (["wait", "x", "--for", "compensatd"], 2, "did you mean 'compensated'?"),
    ):
        run = flowctl(*args)
        assert run.code == code and said in one_line(run.stderr), str(run)
    assert "task_queu =" not in (flowctl.cwd / "flowctl.toml").read_text()  # nothing was written
