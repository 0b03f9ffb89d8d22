"""Configuration: precedence, validation by name, Temporal profiles, secrets never shown."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import Cli, isolated_env

from flowctl import config
from flowctl.errors import UsageError


def show(cli: Cli, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    run = cli(*args, "config", "show", "-o", "json", env=env)
    assert run.code == 0, str(run)
    return run.json()  # type: ignore[no-any-return]


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    cli = Cli(isolated_env(tmp_path, file), tmp_path)
    # default: no file named (FLOWCTL_CONFIG naming a missing file is an error) and none in the config dir
    unset = Cli({k: v for k, v in cli.env.items() if k != "FLOWCTL_CONFIG"}, tmp_path)
    assert show(unset)["connection"] == {
        "address": "localhost:7233", "namespace": "default", "profile": None, "tls": False, "api_key": None,
        "codec": None,
    }  # fmt: skip
    # file
    file.write_text('task_queue = "from-file"\n[profile.default]\naddress = "file:1"\nnamespace = "ns-file"\n')
    shown = show(cli)
    assert shown["connection"]["address"] == "file:1" and shown["settings"]["task_queue"] == "from-file"  # type: ignore[index]
    # environment over file
    env = {"TEMPORAL_ADDRESS": "env:2", "FLOWCTL_TASK_QUEUE": "from-env"}
    shown = show(cli, env=env)
    assert shown["connection"]["address"] == "env:2" and shown["settings"]["task_queue"] == "from-env"  # type: ignore[index]
    assert shown["connection"]["namespace"] == "ns-file"  # type: ignore[index]
    # flag over environment
    shown = show(cli, "--address", "flag:3", "--namespace", "ns-flag", env=env)
    assert shown["connection"]["address"] == "flag:3" and shown["connection"]["namespace"] == "ns-flag"  # type: ignore[index]


def test_profiles_and_a_missing_profile(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[profile.default]\naddress = "a:1"\n[profile.prod]\naddress = "prod:7233"\nnamespace = "prod"\n')
    cli = Cli(isolated_env(tmp_path, file), tmp_path)
    assert show(cli, "--profile", "prod")["connection"]["address"] == "prod:7233"  # type: ignore[index]
    assert show(cli, env={"TEMPORAL_PROFILE": "prod"})["connection"]["namespace"] == "prod"  # type: ignore[index]
    missing = cli("--profile", "nope", "config", "show")
    assert missing.code == 2 and "nope" in missing.stderr


def test_unknown_keys_are_refused_by_name(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    cli = Cli(isolated_env(tmp_path, file), tmp_path)
    file.write_text('task_queue = "q"\n[services]\nbrige = "local"\n')
    run = cli("config", "show")
    assert run.code == 2 and "services.brige: is not a known field" in run.stderr
    env_run = cli("config", "show", env={"FLOWCTL_TASK_QUEU": "x"})
    assert env_run.code == 2 and "task_queu" in env_run.stderr
    file.write_text("task_queue = \n")
    broken = cli("kinds")
    assert broken.code == 2 and "not valid TOML" in broken.stderr
    file.write_text("[services.local]\ntransient_failure_rate = 2\n")
    out_of_range = cli("config", "show")
    assert out_of_range.code == 2 and "services.local.transient_failure_rate" in out_of_range.stderr


def test_init_set_path_and_secrets_never_shown(tmp_path: Path) -> None:
    file = tmp_path / "conf" / "flowctl.toml"
    cli = Cli(isolated_env(tmp_path, file), tmp_path)
    assert cli("config", "path").stdout.strip() == str(file)
    assert cli("config", "init").code == 0 and file.exists()
    assert cli("config", "init").code == 4
    assert cli("config", "set", "services.local.transient_failure_rate", "0.25").code == 0
    assert cli("config", "set", "order.review_timeout", "2h").code == 0
    secret = "sk-super-secret-value-123"
    set_key = cli("config", "set", "profile.default.api_key", secret)
    assert set_key.code == 0 and secret not in set_key.stdout + set_key.stderr
    assert file.stat().st_mode & 0o777 == 0o600  # once it holds a secret, only its owner reads it
    bad_keys = cli("config", "set", "codec.keys", "k1:not-a-key")
    assert bad_keys.code == 2 and "key 'k1' is not base64" in bad_keys.stderr
    assert "codec" not in tomllib.loads(file.read_text())  # nothing written
    data = tomllib.loads(file.read_text())
    assert data["services"]["local"]["transient_failure_rate"] == 0.25 and data["order"]["review_timeout"] == "2h"
    refused = cli("config", "set", "services.bridge", "carrier-pigeon")
    assert refused.code == 2 and "services.bridge" in refused.stderr
    assert tomllib.loads(file.read_text())["services"]["bridge"] == "local"  # nothing written
    for fmt in ("text", "json"):
        shown = cli("config", "show", "-o", fmt)
        assert shown.code == 0 and secret not in shown.stdout + shown.stderr
        assert "<redacted>" in shown.stdout
    debug = cli("--debug", "config", "show")
    assert secret not in debug.stdout + debug.stderr


def test_durations() -> None:
    from datetime import timedelta

    from flowctl.inputs import parse_duration
    from flowctl_workflows.durations import format as format_duration

    assert parse_duration("30s") == timedelta(seconds=30)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("500ms") == timedelta(milliseconds=500)
    assert parse_duration("12") == timedelta(seconds=12)
    assert format_duration(timedelta(days=1)) == "1d" and format_duration(timedelta(seconds=90)) == "1m30s"
    for bad in ("", "abc", "5 m", "-1s", "10y", "99999d"):
        with pytest.raises(UsageError):
            parse_duration(bad)


def test_settings_defaults_round_trip() -> None:
    settings = config.validate_settings({}, "defaults")
    assert settings.task_queue == "flowctl" and settings.services.bridge == "local"
    dumped = settings.model_dump(mode="json")
    assert dumped["order"]["review_timeout"] == "1d"
    assert config.validate_settings(dumped, "round trip") == settings


def _keys(model: type, prefix: str = "") -> set[str]:
    from pydantic import BaseModel

    keys = set()
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        if name == "profile":
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_example_config_is_valid_and_documents_every_key() -> None:
    import re

    example = Path(__file__).parents[1] / "config.example.toml"
    text = example.read_text()
    settings = config.validate_settings(tomllib.loads(text), str(example))
    assert config.validate_settings({}, "defaults").model_dump(exclude={"profile"}) == settings.model_dump(
        exclude={"profile"}
    ), "the example's values are the defaults"
    documented = set()
    table = ""
    for line in text.splitlines():
        if m := re.match(r"^\[([a-z_.]+)\]", line):
            table = m.group(1) + "."
        elif m := re.match(r"^#? ?([a-z_]+) = ", line):
            documented.add(table + m.group(1))
    missing = _keys(config.Settings) - documented
    assert not missing, f"config.example.toml lacks {sorted(missing)}"


SECRET = "sk-LEAKCHECK-7a3e91"


@pytest.mark.parametrize(
    ("where", "text", "expect"),
    [
        ("flowctl", f'[codec]\nkeys = ["k1:{SECRET}"]\n', "codec.keys: Input should be a valid string"),
        ("flowctl", f"[profile.default]\napi_key = {SECRET}\n", "not valid TOML"),
        ("flowctl", "[profile.default]\napi_key = 4182755510937\n", "line 2, column 11; invalid type: integer"),
        ("temporal", f"[profile.default]\napi_key = {SECRET}\n", "line 2, column 11; string values must be quoted"),
    ],
)
def test_an_error_about_a_secret_setting_never_shows_its_value(
    tmp_path: Path, where: str, text: str, expect: str
) -> None:
    """A secret written wrongly (an array, unquoted, a number) is named, never printed."""
    file = tmp_path / ("temporal.toml" if where == "temporal" else "c.toml")
    file.write_text(text)
    config_file = tmp_path / "c.toml"
    if where == "temporal":
        config_file.write_text('task_queue = "q"\n')
    cli = Cli(isolated_env(tmp_path, config_file), tmp_path)
    run = cli("list", env={"TEMPORAL_CONFIG_FILE": str(file)} if where == "temporal" else None)
    assert run.code == 2, str(run)
    assert expect in run.stderr, run.stderr
    for secret in (SECRET, "4182755510937"):
        assert secret not in run.stderr + run.stdout
