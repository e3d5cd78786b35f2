"""``payhub-sandbox`` subcommands of the UnionPay part.

::

    payhub-sandbox unionpay-pki DIR
    payhub-sandbox unionpay-merchant MER_ID --password PW --out merchant.pfx \\
        (--url http://127.0.0.1:8000 | --config sandbox.json)

``unionpay-pki`` writes a persistent PKI (name its directory as
``unionpay.pki_dir`` in the configuration). ``unionpay-merchant`` issues a
merchant signing certificate: from a running sandbox through its control API
(``--url``; the merchant is registered there at once), or offline from the
configured PKI (``--config``; add the printed entry to ``unionpay.merchants``).
Either way it writes the ``.pfx`` (mode 0600, never over an existing file) and,
next to it, ``unionpay-root.pem`` and ``unionpay-middle.pem``: everything a
shop's UnionPay configuration needs.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from payhub_sandbox._config import load_config
from payhub_sandbox._errors import InvalidInputError, SandboxError
from payhub_sandbox.unionpay._pki import (
    UnionPayPKI,
    certificate_pem,
    merchant_pfx,
    new_rsa_key,
)

__all__ = ["UNIONPAY_HANDLERS", "add_unionpay_commands"]

ROOT_FILE = "unionpay-root.pem"
MIDDLE_FILE = "unionpay-middle.pem"


def add_unionpay_commands(commands: Any) -> None:
    """Add the subcommands to ``payhub-sandbox``'s subparsers."""
    pki = commands.add_parser(
        "unionpay-pki",
        help="write a new UnionPay PKI (root, middle, platform signing certificate) into DIR",
    )
    pki.add_argument("directory", help="where to write it (name it unionpay.pki_dir)")

    merchant = commands.add_parser(
        "unionpay-merchant",
        help="issue a UnionPay merchant signing certificate as a .pfx, with the root/middle PEMs",
    )
    merchant.add_argument("mer_id", help="the merchant id (merId)")
    merchant.add_argument("--password", required=True, help="the .pfx password")
    merchant.add_argument("--out", required=True, help="the .pfx file to write")
    source = merchant.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="a running sandbox (registers the merchant there)")
    source.add_argument("--config", help="a configuration naming unionpay.pki_dir (offline)")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _write_trust(directory: Path, root_pem: str, middle_pem: str) -> None:
    (directory / ROOT_FILE).write_text(root_pem, encoding="ascii")
    (directory / MIDDLE_FILE).write_text(middle_pem, encoding="ascii")


def _pki(args: argparse.Namespace) -> int:
    try:
        written = UnionPayPKI.generate(now=datetime.now(UTC)).save(args.directory)
    except FileExistsError as exc:
        print(f"payhub-sandbox: {exc} exists; not overwriting it", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print(f'configure it as: "unionpay": {{"pki_dir": {json.dumps(str(args.directory))}}}')
    return 0


def _from_url(args: argparse.Namespace) -> tuple[bytes, str, str, str, str]:
    url = args.url.rstrip("/") + "/_control/unionpay/merchants"
    try:
        response = httpx.post(url, json={"mer_id": args.mer_id, "password": args.password})
    except httpx.HTTPError as exc:
        raise SandboxError(f"cannot reach {url}: {exc}") from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code != 201 or not isinstance(data, dict):
        message = data.get("message") if isinstance(data, dict) else None
        raise SandboxError(f"{url} answered {response.status_code}: {message or response.text}")
    return (
        base64.b64decode(data["pfx"]),
        data["cert_id"],
        data["certificate"],
        data["root_cert"],
        data["middle_cert"],
    )


def _from_config(args: argparse.Namespace) -> tuple[bytes, str, str, str, str]:
    config = load_config(args.config)
    if config.unionpay_pki_dir is None:
        raise InvalidInputError(
            f"{args.config} names no unionpay.pki_dir: make one with "
            "`payhub-sandbox unionpay-pki DIR`, or use --url with a running sandbox"
        )
    pki = UnionPayPKI.load(config.unionpay_pki_dir)
    key = new_rsa_key()
    cert = pki.issue_merchant_cert(args.mer_id, key.public_key(), now=datetime.now(UTC))
    pfx = merchant_pfx(key, cert, args.password, name=f"{args.mer_id} sign")
    return (
        pfx,
        str(cert.serial_number),
        certificate_pem(cert),
        pki.root_cert_pem,
        pki.middle_cert_pem,
    )


def _merchant(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists():
        print(f"payhub-sandbox: {out} exists; not overwriting it", file=sys.stderr)
        return 2
    fetch: Callable[[argparse.Namespace], tuple[bytes, str, str, str, str]] = (
        _from_url if args.url else _from_config
    )
    pfx, cert_id, cert_pem, root_pem, middle_pem = fetch(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_new(out, pfx, 0o600)
    _write_trust(out.parent, root_pem, middle_pem)
    print(f"wrote {out} (merId {args.mer_id}, certId {cert_id})")
    print(f"wrote {out.parent / ROOT_FILE} and {out.parent / MIDDLE_FILE}")
    if not args.url:
        cert_file = out.with_suffix(".cer.pem")
        cert_file.write_text(cert_pem, encoding="ascii")
        print(f"wrote {cert_file}; register the merchant in {args.config}:")
        entry = {"mer_id": args.mer_id, "certificate_file": str(cert_file.resolve())}
        print(f'  "unionpay": {{"merchants": [{json.dumps(entry, ensure_ascii=False)}]}}')
    return 0


#: Subcommand → handler, merged into ``payhub-sandbox``'s table.
UNIONPAY_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "unionpay-pki": _pki,
    "unionpay-merchant": _merchant,
}
