"""The ``unionpay`` section of the sandbox's configuration file.

::

    "unionpay": {
      "pki_dir": "unionpay-pki",
      "merchants": [
        {"mer_id": "777290058110048", "certificate_file": "merchant-cert.pem"}
      ]
    }

``pki_dir`` is a directory written by ``payhub-sandbox unionpay-pki`` (without
it a new PKI is made at every start, and shops must fetch the root and middle
certificates again). Each merchant names its signing certificate by
``certificate_file`` or inline ``certificate`` (PEM).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from payhub_sandbox._errors import InvalidInputError
from payhub_sandbox._sandbox import Sandbox
from payhub_sandbox.unionpay._pki import UnionPayPKI

__all__ = [
    "UnionPaySection",
    "configure_unionpay",
    "load_unionpay_pki",
    "read_unionpay_section",
]

UnionPaySection = tuple[str | None, tuple[dict[str, str], ...]]
"""(the PKI directory as an absolute path or None, the merchants)."""

_MERCHANT_KEYS = frozenset({"mer_id", "certificate"})


def read_unionpay_section(
    section: object,
    base: Path,
    *,
    resolve: Callable[[Any], Any],
    read: Callable[[object], str],
) -> UnionPaySection:
    """Check the ``unionpay`` object of a configuration; ``resolve`` handles
    ``{"$env"}`` / ``{"$file"}`` references, ``read`` reads a file relative to ``base``."""
    if section is None:
        return None, ()
    if not isinstance(section, dict):
        raise InvalidInputError("unionpay must be an object")
    unknown = set(section) - {"pki_dir", "merchants"}
    if unknown:
        raise InvalidInputError(f"unknown unionpay settings: {sorted(unknown)}")
    pki_dir = resolve(section.get("pki_dir"))
    if pki_dir is not None and not isinstance(pki_dir, str):
        raise InvalidInputError("unionpay.pki_dir must be a path string")
    entries = section.get("merchants", [])
    if not isinstance(entries, list):
        raise InvalidInputError("unionpay.merchants must be a list")
    merchants = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidInputError("each UnionPay merchant must be an object")
        merchant = {k: resolve(v) for k, v in entry.items()}
        cert_file = merchant.pop("certificate_file", None)
        if "certificate" not in merchant and cert_file is not None:
            merchant["certificate"] = read(cert_file)
        unknown = set(merchant) - _MERCHANT_KEYS
        if unknown:
            raise InvalidInputError(f"unknown UnionPay merchant fields: {sorted(unknown)}")
        if not all(isinstance(merchant.get(k), str) for k in _MERCHANT_KEYS):
            raise InvalidInputError(
                "a UnionPay merchant needs mer_id and certificate (or certificate_file)"
            )
        merchants.append(merchant)
    return (None if pki_dir is None else str(base / pki_dir)), tuple(merchants)


def load_unionpay_pki(pki_dir: str | None) -> UnionPayPKI | None:
    return None if pki_dir is None else UnionPayPKI.load(pki_dir)


def configure_unionpay(sandbox: Sandbox, merchants: tuple[Mapping[str, str], ...]) -> None:
    """Register the configured merchants."""
    for entry in merchants:
        sandbox.add_unionpay_merchant(entry["mer_id"], entry["certificate"])
