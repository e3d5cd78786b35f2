"""The JSON configuration file of ``payhub-sandbox run``.

::

    {
      "base_url": "http://127.0.0.1:8000",
      "time_factor": 60,
      "bills_ready_immediately": false,
      "alipay": {
        "platform_private_key_file": "alipay-platform.pem",
        "merchants": [
          {"app_id": "2021000000000001", "seller_id": "2088000000000001",
           "public_key_file": "shop-public.pem", "sign_type": "RSA2", "charset": "utf-8"}
        ]
      }
    }

Any string value may instead be ``{"$env": "NAME"}`` (an environment variable)
or ``{"$file": "path"}`` (a file's text). Relative paths are relative to the
configuration file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from payhub_sandbox._clock import Clock
from payhub_sandbox._errors import InvalidInputError
from payhub_sandbox._sandbox import Sandbox
from payhub_sandbox.unionpay._config import (
    configure_unionpay,
    load_unionpay_pki,
    read_unionpay_section,
)
from payhub_sandbox.wechat._config import WechatSection, configure_wechat, read_wechat_section

__all__ = ["SandboxConfig", "build_sandbox", "load_config"]


@dataclass(frozen=True)
class SandboxConfig:
    base_url: str | None = None
    time_factor: float | None = None
    bills_ready_immediately: bool = False
    alipay_platform_key: str | None = field(default=None, repr=False)
    alipay_merchants: tuple[dict[str, Any], ...] = ()
    unionpay_pki_dir: str | None = None
    unionpay_merchants: tuple[dict[str, str], ...] = field(default=(), repr=False)
    wechat: WechatSection = field(default_factory=WechatSection, repr=False)


def _resolve(value: Any, base: Path) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, ref),) = value.items()
        if kind == "$env":
            if not isinstance(ref, str) or ref not in os.environ:
                raise InvalidInputError(f"environment variable {ref!r} is not set")
            return os.environ[ref]
        if kind == "$file":
            return _read(ref, base)
    return value


def _read(ref: object, base: Path) -> str:
    if not isinstance(ref, str):
        raise InvalidInputError("a file reference must be a path string")
    path = base / ref
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None


def _string(data: dict[str, Any], name: str, base: Path) -> str | None:
    value = _resolve(data.get(name), base)
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string")
    return value


def load_config(path: str | os.PathLike[str]) -> SandboxConfig:
    """Read and check a configuration file (secrets stay out of every message)."""
    file = Path(path)
    base = file.parent
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"cannot read {file}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidInputError(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{file}: the top level must be an object")
    alipay = data.get("alipay", {})
    if not isinstance(alipay, dict):
        raise InvalidInputError("alipay must be an object")
    key = _string(alipay, "platform_private_key", base)
    key_file = _string(alipay, "platform_private_key_file", base)
    if key is None and key_file is not None:
        key = _read(key_file, base)
    merchants = []
    for entry in alipay.get("merchants", []):
        if not isinstance(entry, dict):
            raise InvalidInputError("each Alipay merchant must be an object")
        merchant = {k: _resolve(v, base) for k, v in entry.items()}
        public_key_file = merchant.pop("public_key_file", None)
        if "public_key" not in merchant and public_key_file is not None:
            merchant["public_key"] = _read(public_key_file, base)
        merchants.append(merchant)
    unionpay_pki_dir, unionpay_merchants = read_unionpay_section(
        data.get("unionpay"),
        base,
        resolve=lambda value: _resolve(value, base),
        read=lambda ref: _read(ref, base),
    )
    wechat = read_wechat_section(
        data.get("wechat"),
        resolve=lambda value: _resolve(value, base),
        read=lambda ref: _read(ref, base),
    )
    time_factor = data.get("time_factor")
    if time_factor is not None and (
        isinstance(time_factor, bool) or not isinstance(time_factor, int | float)
    ):
        raise InvalidInputError("time_factor must be a number")
    bills_now = data.get("bills_ready_immediately", False)
    if not isinstance(bills_now, bool):
        raise InvalidInputError("bills_ready_immediately must be true or false")
    return SandboxConfig(
        base_url=_string(data, "base_url", base),
        time_factor=None if time_factor is None else float(time_factor),
        bills_ready_immediately=bills_now,
        alipay_platform_key=key,
        alipay_merchants=tuple(merchants),
        unionpay_pki_dir=unionpay_pki_dir,
        unionpay_merchants=unionpay_merchants,
        wechat=wechat,
    )


_MERCHANT_KEYS = frozenset(
    {
        "app_id",
        "public_key",
        "seller_id",
        "sign_type",
        "charset",
        "lie_content_type",
        "notify_on_close",
        "fee_rate",
    }
)


def build_sandbox(
    config: SandboxConfig,
    *,
    time_factor: float | None = None,
    base_url: str | None = None,
    bills_ready_immediately: bool | None = None,
    clock: Clock | None = None,
    notify_transport: httpx.BaseTransport | None = None,
) -> Sandbox:
    """A :class:`Sandbox` from a configuration, keyword arguments winning over it."""
    sandbox = Sandbox(
        alipay_platform_key=config.alipay_platform_key,
        time_factor=time_factor or config.time_factor or 1.0,
        clock=clock,
        notify_transport=notify_transport,
        base_url=base_url or config.base_url,
        bills_ready_immediately=(
            config.bills_ready_immediately
            if bills_ready_immediately is None
            else bills_ready_immediately
        ),
        unionpay_pki=load_unionpay_pki(config.unionpay_pki_dir),
        wechat_public_key=config.wechat.public_key_private_key,
        wechat_platform_key=config.wechat.platform_private_key,
    )
    configure_unionpay(sandbox, config.unionpay_merchants)
    configure_wechat(sandbox, config.wechat)
    for entry in config.alipay_merchants:
        unknown = set(entry) - _MERCHANT_KEYS
        if unknown:
            raise InvalidInputError(f"unknown Alipay merchant fields: {sorted(unknown)}")
        if "fee_rate" in entry and not isinstance(entry["fee_rate"], str):
            raise InvalidInputError('fee_rate must be a decimal string such as "0.006"')
        for flag in ("lie_content_type", "notify_on_close"):
            if not isinstance(entry.get(flag, False), bool):
                raise InvalidInputError(f"{flag} must be true or false")
        sandbox.add_alipay_merchant(
            str(entry.get("app_id", "")),
            str(entry.get("public_key", "")),
            str(entry.get("seller_id", "")),
            str(entry.get("sign_type", "RSA2")),
            charset=str(entry.get("charset", "utf-8")),
            lie_content_type=bool(entry.get("lie_content_type", False)),
            notify_on_close=bool(entry.get("notify_on_close", False)),
            fee_rate=str(entry.get("fee_rate", "0.006")),
        )
    return sandbox
