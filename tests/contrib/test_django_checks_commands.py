"""``manage.py check`` validates settings.PAYHUB, naming channel and setting;
``manage.py payhub ...`` is the payhub command on settings.PAYHUB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from adapterkit import alipay_config
from alembic.script import ScriptDirectory
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import override_settings
from payhub_django.checks import check_settings
from payhub_django.management.commands.payhub import Command

from payhub.store._migrate import alembic_config

#: The newest migration: a fresh store is created at it.
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def ids_and_messages(config: Any) -> list[tuple[str, str]]:
    with override_settings(PAYHUB=config):
        return [(e.id, e.msg) for e in check_settings()]


@pytest.fixture
def good(merchant_keys, platform_keys, tmp_path: Path) -> dict[str, Any]:
    return {
        **alipay_config(merchant_keys, platform_keys),
        "store": {"url": f"sqlite:///{tmp_path / 'payhub.db'}"},
    }


def test_a_good_configuration_passes(good: dict[str, Any]) -> None:
    assert ids_and_messages(good) == []
    with override_settings(PAYHUB=good):
        call_command("check", tags=["payhub"], verbosity=0)


def test_each_missing_or_wrong_setting_is_named(good: dict[str, Any]) -> None:
    alipay = dict(good["channels"]["alipay"])
    del alipay["app_id"]
    alipay["sign_type"] = "MD5"
    found = ids_and_messages({**good, "channels": {"alipay": alipay}})
    where = "settings.PAYHUB['channels']['alipay']"
    assert ("payhub.E004", f"{where}: app_id: Field required") in found
    assert any(
        check_id == "payhub.E004" and msg.startswith(f"{where}: sign_type")
        for check_id, msg in found
    )
    assert all(good["channels"]["alipay"]["app_private_key"] not in m for _, m in found)


@pytest.mark.parametrize(
    ("change", "check_id", "named"),
    [
        (lambda c: None, "payhub.E001", "settings.PAYHUB is not set"),
        (lambda c: ["alipay"], "payhub.E002", "must be a mapping"),
        (lambda c: {**c, "channels": {}}, "payhub.E003", "['channels']"),
        (lambda c: {**c, "channels": {"x": {"type": "nosuch"}}}, "payhub.E004", "'x'"),
        (lambda c: {**c, "store": {"uri": "sqlite:///x.db"}}, "payhub.E005", "needs a 'url'"),
        (
            lambda c: {**c, "events": {"handlers": {"*": "no_such_module:f"}}},
            "payhub.E006",
            "no_such_module:f",
        ),
        (
            lambda c: {**c, "routing": {"accounts": {"wechat": {"fee_rate": "0.006"}}}},
            "payhub.E007",
            "wechat",
        ),
    ],
)
def test_check_ids(good: dict[str, Any], change: Any, check_id: str, named: str) -> None:
    found = ids_and_messages(change(good))
    assert [i for i, _ in found] == [check_id], found
    assert named in found[0][1]


def test_manage_py_check_fails_on_an_error(good: dict[str, Any]) -> None:
    with override_settings(PAYHUB={**good, "channels": {}}), pytest.raises(
        SystemCheckError, match=r"payhub\.E003"
    ):
        call_command("check", tags=["payhub"])


# -- manage.py payhub -------------------------------------------------------------------


def test_manage_py_payhub_reads_settings(good: dict[str, Any], capsys) -> None:
    with override_settings(PAYHUB=good):
        call_command("payhub", "db", "upgrade")
        capsys.readouterr()
        call_command("payhub", "db", "current", "--json")
        assert json.loads(capsys.readouterr().out) == {"revision": HEAD}
        call_command("payhub", "sync", "--json")
        report = json.loads(capsys.readouterr().out)
        assert (report["checked"], report["changed"]) == (0, {})
        call_command("payhub", "anomalies", "list", "--json")
        assert json.loads(capsys.readouterr().out) == []


def test_manage_py_payhub_exit_codes(good: dict[str, Any], capsys) -> None:
    down = {**good, "store": {"url": "postgresql+psycopg://x:secret@127.0.0.1:1/x"}}
    with override_settings(PAYHUB=down), pytest.raises(CommandError) as failed:
        call_command("payhub", "db", "current")
    assert failed.value.returncode == 1
    assert "secret" not in capsys.readouterr().err
    with override_settings(PAYHUB=good), pytest.raises(CommandError) as usage:
        call_command("payhub", "sync", "--older-than", "10")
    assert usage.value.returncode == 2
    with override_settings(PAYHUB=None), pytest.raises(CommandError) as unset:
        call_command("payhub", "db", "current")
    assert unset.value.returncode == 2
    assert "settings.PAYHUB" in capsys.readouterr().err
    # From the command line (manage.py payhub ...): the same codes, as the process's.
    with override_settings(PAYHUB=good):
        Command().run_from_argv(["manage.py", "payhub", "--version"])
        assert capsys.readouterr().out.startswith("payhub ")
        with pytest.raises(SystemExit) as exited:
            Command().run_from_argv(["manage.py", "payhub", "sync", "--older-than", "10"])
    assert exited.value.code == 2
