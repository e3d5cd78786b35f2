"""Django system checks of ``settings.PAYHUB``, run by ``manage.py check`` (and
before ``runserver`` and ``migrate``). Each message names the channel account
and the setting; ids ``payhub.E001`` ...

=============  ==============================================================
id             what is wrong
=============  ==============================================================
payhub.E001    ``settings.PAYHUB`` is missing
payhub.E002    ``settings.PAYHUB`` is not a mapping
payhub.E003    ``channels`` is missing, empty or not a mapping
payhub.E004    a channel account's setting is missing or invalid (one per setting)
payhub.E005    the ``store`` section is invalid
payhub.E006    an event handler (``events.handlers``) cannot be imported
payhub.E007    the ``routing`` section is invalid
=============  ==============================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings  # type: ignore[import-untyped]
from django.core.checks import Error  # type: ignore[import-untyped]

from payhub import ConfigurationError, PayHub
from payhub.store import Store

__all__ = ["check_settings"]

_WHERE = "settings.PAYHUB"


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Every problem of ``settings.PAYHUB``, not only the first."""
    errors: list[Error] = []
    config: Any = getattr(settings, "PAYHUB", None)
    if config is None:
        return [
            *errors,
            Error(
                f"{_WHERE} is not set",
                hint="PAYHUB = {'channels': {name: {'type': kind, ...}}, 'store': {'url': ...}}",
                id="payhub.E001",
            ),
        ]
    if not isinstance(config, Mapping):
        return [*errors, Error(f"{_WHERE} must be a mapping", id="payhub.E002")]
    channels = config.get("channels")
    if not isinstance(channels, Mapping) or not channels:
        errors.append(
            Error(
                f"{_WHERE}['channels'] must be a non-empty mapping of channel accounts",
                hint="'channels': {'alipay': {'type': 'alipay', 'app_id': ...}}",
                id="payhub.E003",
            )
        )
        channels = {}
    channel_errors = [e for name, a in channels.items() for e in _check_channel(str(name), a)]
    errors += channel_errors
    errors += _check_section(config, "store", "payhub.E005")
    # Handlers and routing are checked on a hub of the accounts, once they build
    # (routing names accounts: a broken account would be reported twice).
    if channels and not channel_errors:
        errors += _check_section(config, "events", "payhub.E006")
        errors += _check_section(config, "routing", "payhub.E007")
    return errors


def _check_channel(name: str, account: object) -> list[Error]:
    where = f"{_WHERE}['channels'][{name!r}]"
    if not isinstance(account, Mapping):
        return [Error(f"{where} must be a mapping", id="payhub.E004", obj=name)]
    try:
        PayHub.from_config({"channels": {name: account}}).close()
    except ConfigurationError as exc:
        if exc.problems:
            return [
                Error(f"{where}: {setting}: {reason}", id="payhub.E004", obj=name)
                for setting, reason in exc.problems
            ]
        return [Error(f"{where}: {exc.message}", id="payhub.E004", obj=name)]
    return []


def _check_section(config: Mapping[str, Any], key: str, check_id: str) -> list[Error]:
    if config.get(key) is None:
        return []
    try:
        if key == "store":  # builds the engine without connecting: no database needed
            Store.from_config(config[key]).close()
        else:
            PayHub.from_config({"channels": config["channels"], key: config[key]}).close()
    except ConfigurationError as exc:
        return [Error(f"{_WHERE}['{key}']: {exc.message}", id=check_id)]
    return []
