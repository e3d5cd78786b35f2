"""``flask payhub ...``: the payhub command on the Flask app's configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from adapterkit import alipay_config
from alembic.script import ScriptDirectory
from flask import Flask
from flask_payhub import PayHubExtension

from payhub.store._migrate import alembic_config

#: The newest migration: a fresh store is created at it.
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def make_app(config: dict[str, Any]) -> Flask:
    app = Flask("shop")
    app.config["PAYHUB"] = config
    PayHubExtension(app)
    return app


@pytest.fixture
def config(merchant_keys, platform_keys, tmp_path: Path) -> dict[str, Any]:
    return {
        **alipay_config(merchant_keys, platform_keys),
        "store": {"url": f"sqlite:///{tmp_path / 'shop.db'}"},
    }


def test_the_group_lists_payhubs_commands(config: dict[str, Any]) -> None:
    result = make_app(config).test_cli_runner().invoke(args=["payhub", "--help"])
    assert result.exit_code == 0, result.output
    for name in ("anomalies", "db", "events", "sync"):
        assert name in result.output


def test_commands_use_the_apps_configuration(config: dict[str, Any]) -> None:
    runner = make_app(config).test_cli_runner()
    result = runner.invoke(args=["payhub", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"at revision {HEAD}" in result.output
    result = runner.invoke(args=["payhub", "db", "current", "--json"])
    assert json.loads(result.output) == {"revision": HEAD}
    result = runner.invoke(args=["payhub", "sync", "--json", "--older-than", "1m"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["checked"] == 0
    result = runner.invoke(args=["payhub", "events", "list", "--json"])
    assert json.loads(result.output) == []


def test_a_config_file_given_still_wins(config: dict[str, Any], tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"store": {"url": f"sqlite:///{tmp_path / 'other.db'}"}}))
    runner = make_app(config).test_cli_runner()
    assert runner.invoke(args=["payhub", "db", "upgrade", "--config", str(other)]).exit_code == 0
    # the app's own store was never migrated
    result = runner.invoke(args=["payhub", "db", "current", "--json"])
    assert json.loads(result.output) == {"revision": None}


def test_exit_codes_pass_through(config: dict[str, Any]) -> None:
    runner = make_app(config).test_cli_runner()
    # 2: the command line is wrong
    assert runner.invoke(args=["payhub", "sync", "--older-than", "10"]).exit_code == 2
    # 1: the work failed (the database cannot be reached); no password shown
    down = {**config, "store": {"url": "postgresql+psycopg://x:secret@127.0.0.1:1/x"}}
    result = make_app(down).test_cli_runner().invoke(args=["payhub", "db", "current"])
    assert result.exit_code == 1
    assert "secret" not in result.output


def test_the_config_file_setting_works_too(config: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "payhub.json").write_text(json.dumps(config))
    app = Flask("shop", root_path=str(tmp_path))
    app.config["PAYHUB_CONFIG_FILE"] = "payhub.json"
    PayHubExtension(app)
    result = app.test_cli_runner().invoke(args=["payhub", "db", "upgrade"])
    assert result.exit_code == 0, result.output
