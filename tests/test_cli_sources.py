"""The ``payhub`` command: where its configuration comes from (a file, a Flask
app, Django settings; docs/cli.md's order), ``--version``, ``--json``, flags
shown as flags in ``--help``, and the exit codes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import payhub
import payhub.cli as cli
from payhub.store import Store

runner = CliRunner()


def write_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A config file, a Flask-like app module and a Django settings module, each
    naming its own store; each store is migrated to a different revision."""
    tag = uuid.uuid4().hex[:8]
    revisions = {"file": "0001", "flask": "0002", "django": "0003", "env": "0004"}
    urls = {k: f"sqlite:///{tmp_path / k}.db" for k in revisions}
    for name, revision in revisions.items():
        with Store(urls[name]) as store:
            store.upgrade(revision)
    for name in ("file", "env"):
        (tmp_path / f"{name}.json").write_text(json.dumps({"store": {"url": urls[name]}}))
    (tmp_path / f"shop_{tag}.py").write_text(
        "class App:\n"
        f"    config = {{'PAYHUB': {{'store': {{'url': {urls['flask']!r}}}}}}}\n"
        "    root_path = '.'\n"
        "def create_app():\n    return App()\n"
    )
    (tmp_path / f"settings_{tag}.py").write_text(
        f"PAYHUB = {{'store': {{'url': {urls['django']!r}}}}}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for var in ("PAYHUB_CONFIG", "FLASK_APP", "DJANGO_SETTINGS_MODULE", "PAYHUB_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return {
        "file": str(tmp_path / "file.json"),
        "env": str(tmp_path / "env.json"),
        "flask": f"shop_{tag}:create_app()",
        "django": f"settings_{tag}",
    }


def revision(args: list[str], env: dict[str, str] | None = None) -> str | None:
    result = runner.invoke(cli.app, args, env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["revision"]


def test_each_source_and_their_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = write_sources(tmp_path, monkeypatch)
    cmd = ["db", "current", "--json"]
    # each source alone
    assert revision([*cmd, "--config", s["file"]]) == "0001"
    assert revision(["--app", s["flask"], *cmd]) == "0002"
    assert revision(["--django-settings", s["django"], *cmd]) == "0003"
    assert revision(cmd, env={"PAYHUB_CONFIG": s["env"]}) == "0004"
    assert revision(cmd, env={"FLASK_APP": s["flask"]}) == "0002"
    assert revision(cmd, env={"DJANGO_SETTINGS_MODULE": s["django"]}) == "0003"
    every_env = {"PAYHUB_CONFIG": s["env"], "FLASK_APP": s["flask"],
                 "DJANGO_SETTINGS_MODULE": s["django"]}
    # --config on the command line first
    assert revision(["--app", s["flask"], *cmd, "--config", s["file"]], env=every_env) == "0001"
    # then --app / --django-settings on the command line, before any variable
    assert revision(["--app", s["flask"], *cmd], env=every_env) == "0002"
    assert revision(["--django-settings", s["django"], *cmd], env=every_env) == "0003"
    # then PAYHUB_CONFIG, FLASK_APP, DJANGO_SETTINGS_MODULE
    assert revision(cmd, env=every_env) == "0004"
    assert revision(cmd, env={**every_env, "PAYHUB_CONFIG": None}) == "0002"
    assert revision(cmd, env={"DJANGO_SETTINGS_MODULE": s["django"], "FLASK_APP": None}) == "0003"


def test_a_module_app_is_found_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = write_sources(tmp_path, monkeypatch)
    module = s["flask"].split(":")[0]  # "module" alone: its app, application or create_app
    assert revision(["--app", module, "db", "current", "--json"]) == "0002"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app", "no_such_module_x:app"], "cannot load Flask app no_such_module_x:app"),
        (["--django-settings", "no_such_settings_x"], "cannot load Django settings"),
        (["--app", "json:decoder"], "has no config"),
        (["--django-settings", "json"], "no PAYHUB mapping"),
        ([], "no hub configuration"),
    ],
)
def test_a_source_that_cannot_be_read_exits_2(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("PAYHUB_CONFIG", "FLASK_APP", "DJANGO_SETTINGS_MODULE", "PAYHUB_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    result = runner.invoke(cli.app, [*args, "sync"])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_two_sources_on_the_command_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = write_sources(tmp_path, monkeypatch)
    args = ["--app", s["flask"], "--django-settings", s["django"], "db", "current"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 2
    assert "not both" in result.output


def test_version() -> None:
    result = runner.invoke(cli.app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"payhub {payhub.__version__}\n"


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in getattr(group, "commands", {}).items():
        if hasattr(command, "commands"):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


COMMANDS = _commands(typer.main.get_command(cli.app))


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_shows_flags_as_flags(path: tuple[str, ...]) -> None:
    result = runner.invoke(cli.app, [*path, "--help"])
    assert result.exit_code == 0
    command = typer.main.get_command(cli.app)
    for part in path:
        command = command.commands[part]  # type: ignore[attr-defined]
    flags = [p for p in command.params if getattr(p, "is_flag", False)]
    for flag in flags:
        (line,) = [ln for ln in result.output.splitlines() if ln.strip().startswith(flag.opts[0])]
        assert line.split()[0] == flag.opts[0]  # no value after a flag
        assert "<bool>" not in line
        assert "BOOLEAN" not in line
    assert "<bool>" not in result.output


LIST_AND_REPORT = [("db", "current"), ("sync",), ("events", "dispatch"), ("events", "list"),
                   ("anomalies", "list")]


@pytest.mark.parametrize("path", LIST_AND_REPORT, ids=" ".join)
def test_list_and_report_commands_take_json(path: tuple[str, ...]) -> None:
    result = runner.invoke(cli.app, [*path, "--help"])
    assert "--json" in result.output


def test_json_lists(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    assert runner.invoke(cli.app, ["db", "upgrade", "--url", url]).exit_code == 0
    for path in (["events", "list"], ["anomalies", "list", "--all"]):
        result = runner.invoke(cli.app, [*path, "--url", url, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == []
