"""The ``wechat`` section of the sandbox's configuration file.

::

    "wechat": {
      "public_key_private_key_file": "wechatpay-pub-key-private.pem",
      "platform_private_key_file": "wechatpay-platform.pem",
      "merchants": [
        {"mch_id": "1900000001", "app_id": "wxd678efh567hg6787",
         "merchant_serial_no": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
         "merchant_public_key_file": "apiclient_cert.pem",
         "api_v3_key": {"$env": "WECHAT_API_V3_KEY"},
         "key_mode": "public_key"}
      ]
    }

``public_key_private_key_file`` keeps the "WeChat Pay public key" (and so its
``PUB_KEY_ID_…``) the same from one start to the next;
``platform_private_key_file`` keeps the key of the first platform certificate
(the certificate itself, and its serial, are issued anew at each start: shops
in certificate mode download it from ``/v3/certificates``). Without them new
keys are made at each start. Each merchant gives its API certificate or public
key by ``merchant_public_key_file`` or inline ``merchant_public_key`` (PEM).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from payhub_sandbox._errors import InvalidInputError
from payhub_sandbox._sandbox import Sandbox

__all__ = ["WechatSection", "configure_wechat", "read_wechat_section"]

_SETTINGS = frozenset(
    {
        "public_key_private_key",
        "public_key_private_key_file",
        "platform_private_key",
        "platform_private_key_file",
        "merchants",
    }
)
_MERCHANT_KEYS = frozenset(
    {
        "mch_id",
        "app_id",
        "merchant_serial_no",
        "merchant_public_key",
        "api_v3_key",
        "key_mode",
        "fee_rate",
        "refund_delay",
        "bill_bom",
    }
)
_REQUIRED = ("mch_id", "app_id", "merchant_serial_no", "merchant_public_key", "api_v3_key")


@dataclass(frozen=True)
class WechatSection:
    """The checked ``wechat`` settings (keys as PEM text; never shown)."""

    public_key_private_key: str | None = field(default=None, repr=False)
    platform_private_key: str | None = field(default=None, repr=False)
    merchants: tuple[dict[str, Any], ...] = field(default=(), repr=False)


def _key(
    section: dict[str, Any],
    name: str,
    resolve: Callable[[Any], Any],
    read: Callable[[object], str],
) -> str | None:
    value = resolve(section.get(name))
    file = resolve(section.get(f"{name}_file"))
    if value is None and file is not None:
        value = read(file)
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"wechat.{name} must be a PEM string")
    return value


def read_wechat_section(
    section: object,
    *,
    resolve: Callable[[Any], Any],
    read: Callable[[object], str],
) -> WechatSection:
    """Check the ``wechat`` object of a configuration; ``resolve`` handles
    ``{"$env"}`` / ``{"$file"}`` references, ``read`` reads a file relative to
    the configuration."""
    if section is None:
        return WechatSection()
    if not isinstance(section, dict):
        raise InvalidInputError("wechat must be an object")
    unknown = set(section) - _SETTINGS
    if unknown:
        raise InvalidInputError(f"unknown wechat settings: {sorted(unknown)}")
    entries = section.get("merchants", [])
    if not isinstance(entries, list):
        raise InvalidInputError("wechat.merchants must be a list")
    merchants = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidInputError("each WeChat Pay merchant must be an object")
        merchant = {k: resolve(v) for k, v in entry.items()}
        key_file = merchant.pop("merchant_public_key_file", None)
        if "merchant_public_key" not in merchant and key_file is not None:
            merchant["merchant_public_key"] = read(key_file)
        unknown = set(merchant) - _MERCHANT_KEYS
        if unknown:
            raise InvalidInputError(f"unknown WeChat Pay merchant fields: {sorted(unknown)}")
        missing = [k for k in _REQUIRED if not isinstance(merchant.get(k), str)]
        if missing:
            raise InvalidInputError(f"a WeChat Pay merchant needs {', '.join(missing)}")
        for name in ("key_mode", "fee_rate"):
            if name in merchant and not isinstance(merchant[name], str):
                raise InvalidInputError(f"wechat merchant {name} must be a string")
        delay = merchant.get("refund_delay", 0)
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise InvalidInputError("wechat merchant refund_delay must be a number of seconds")
        if not isinstance(merchant.get("bill_bom", True), bool):
            raise InvalidInputError("wechat merchant bill_bom must be true or false")
        merchants.append(merchant)
    return WechatSection(
        public_key_private_key=_key(section, "public_key_private_key", resolve, read),
        platform_private_key=_key(section, "platform_private_key", resolve, read),
        merchants=tuple(merchants),
    )


def configure_wechat(sandbox: Sandbox, section: WechatSection) -> None:
    """Register the section's merchants (its keys go to the Sandbox constructor)."""
    for entry in section.merchants:
        sandbox.add_wechat_merchant(
            entry["mch_id"],
            entry["app_id"],
            entry["merchant_serial_no"],
            entry["merchant_public_key"],
            entry["api_v3_key"],
            entry.get("key_mode", "public_key"),
            fee_rate=entry.get("fee_rate", "0.006"),
            refund_delay=entry.get("refund_delay", 0),
            bill_bom=entry.get("bill_bom", True),
        )
