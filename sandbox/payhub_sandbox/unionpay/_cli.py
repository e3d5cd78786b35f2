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

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer

from payhub_sandbox._cli_common import EXIT_FAILED, EXIT_USAGE, echo, fail
from payhub_sandbox._config import load_config
from payhub_sandbox._errors import SandboxError
from payhub_sandbox.unionpay._pki import (
    UnionPayPKI,
    certificate_pem,
    merchant_pfx,
    new_rsa_key,
)

__all__ = ["register_unionpay_commands"]

ROOT_FILE = "unionpay-root.pem"
MIDDLE_FILE = "unionpay-middle.pem"

_Issued = tuple[bytes, str, str, str, str]


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _write_trust(directory: Path, root_pem: str, middle_pem: str) -> None:
    (directory / ROOT_FILE).write_text(root_pem, encoding="ascii")
    (directory / MIDDLE_FILE).write_text(middle_pem, encoding="ascii")


def unionpay_pki(
    directory: Annotated[
        Path, typer.Argument(help="Where to write it (name it unionpay.pki_dir).")
    ],
) -> None:
    """Write a new UnionPay PKI (root, middle, platform signing certificate) into DIRECTORY."""
    try:
        written = UnionPayPKI.generate(now=datetime.now(UTC)).save(directory)
    except FileExistsError as exc:
        fail(f"{exc} exists; not overwriting it", EXIT_USAGE)
    for path in written:
        echo(f"wrote {path}")
    echo(f'configure it as: "unionpay": {{"pki_dir": {json.dumps(str(directory))}}}')


def _from_url(url: str, mer_id: str, password: str) -> _Issued:
    endpoint = url.rstrip("/") + "/_control/unionpay/merchants"
    try:
        response = httpx.post(endpoint, json={"mer_id": mer_id, "password": password})
    except httpx.HTTPError as exc:
        fail(f"cannot reach {endpoint}: {exc}", EXIT_FAILED)
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code != 201 or not isinstance(data, dict):
        message = data.get("message") if isinstance(data, dict) else None
        # The sandbox refusing the merchant (a bad merId) is the command line's fault.
        code = EXIT_USAGE if response.status_code == 400 else EXIT_FAILED
        fail(f"{endpoint} answered {response.status_code}: {message or response.text}", code)
    return (
        base64.b64decode(data["pfx"]),
        data["cert_id"],
        data["certificate"],
        data["root_cert"],
        data["middle_cert"],
    )


def _from_config(config: Path, mer_id: str, password: str) -> _Issued:
    loaded = load_config(config)
    if loaded.unionpay_pki_dir is None:
        fail(
            f"{config} names no unionpay.pki_dir: make one with "
            "`payhub-sandbox unionpay-pki DIR`, or use --url with a running sandbox",
            EXIT_USAGE,
        )
    pki = UnionPayPKI.load(loaded.unionpay_pki_dir)
    key = new_rsa_key()
    cert = pki.issue_merchant_cert(mer_id, key.public_key(), now=datetime.now(UTC))
    pfx = merchant_pfx(key, cert, password, name=f"{mer_id} sign")
    return (
        pfx,
        str(cert.serial_number),
        certificate_pem(cert),
        pki.root_cert_pem,
        pki.middle_cert_pem,
    )


def unionpay_merchant(
    mer_id: Annotated[str, typer.Argument(help="The merchant id (merId).", metavar="MER_ID")],
    password: Annotated[str, typer.Option(help="The .pfx password.")],
    out: Annotated[Path, typer.Option(help="The .pfx file to write.")],
    url: Annotated[
        str | None, typer.Option(help="A running sandbox (registers the merchant there).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="A configuration naming unionpay.pki_dir (offline).", dir_okay=False),
    ] = None,
) -> None:
    """Issue a UnionPay merchant signing certificate as a .pfx, with the root/middle PEMs."""
    if (url is None) == (config is None):
        fail("give exactly one of --url (a running sandbox) or --config (offline)", EXIT_USAGE)
    if out.exists():
        fail(f"{out} exists; not overwriting it", EXIT_USAGE)
    try:
        if url is not None:
            issued = _from_url(url, mer_id, password)
        else:
            assert config is not None  # one of the two, checked above
            issued = _from_config(config, mer_id, password)
    except SandboxError as exc:
        fail(exc.message, EXIT_USAGE)
    pfx, cert_id, cert_pem, root_pem, middle_pem = issued
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_new(out, pfx, 0o600)
    _write_trust(out.parent, root_pem, middle_pem)
    echo(f"wrote {out} (merId {mer_id}, certId {cert_id})")
    echo(f"wrote {out.parent / ROOT_FILE} and {out.parent / MIDDLE_FILE}")
    if not url:
        cert_file = out.with_suffix(".cer.pem")
        cert_file.write_text(cert_pem, encoding="ascii")
        echo(f"wrote {cert_file}; register the merchant in {config}:")
        entry = {"mer_id": mer_id, "certificate_file": str(cert_file.resolve())}
        echo(f'  "unionpay": {{"merchants": [{json.dumps(entry, ensure_ascii=False)}]}}')


def register_unionpay_commands(app: typer.Typer) -> None:
    """Add the UnionPay part's commands to ``payhub-sandbox``."""
    app.command("unionpay-pki")(unionpay_pki)
    app.command("unionpay-merchant")(unionpay_merchant)
