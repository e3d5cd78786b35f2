"""``payhub-sandbox unionpay-pki`` / ``unionpay-merchant``, and the ``unionpay`` configuration."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from payhub_sandbox import InvalidInputError, Sandbox, build_sandbox, create_app, load_config
from payhub_sandbox.cli import main
from sandbox_support import BASE_URL
from sandbox_unionpay_client import (
    MER_ID,
    Trust,
    UnionPayWireClient,
    session_alipay_key,
    session_pki,
)
from werkzeug.serving import make_server


def _load_pfx(path: Path, password: bytes) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key, cert, _ = pkcs12.load_key_and_certificates(path.read_bytes(), password)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert cert is not None
    return key, cert


def _trust(directory: Path) -> Trust:
    return Trust(
        root=x509.load_pem_x509_certificate((directory / "unionpay-root.pem").read_bytes()),
        middle=x509.load_pem_x509_certificate((directory / "unionpay-middle.pem").read_bytes()),
    )


def test_offline_pki_merchant_and_configuration(tmp_path: Path, capsys) -> None:
    assert main(["unionpay-pki", str(tmp_path / "pki")]) == 0
    assert "pki_dir" in capsys.readouterr().out
    assert (tmp_path / "pki" / "unionpay-middle-key.pem").stat().st_mode & 0o777 == 0o600
    assert main(["unionpay-pki", str(tmp_path / "pki")]) == 2  # never overwrites

    config = tmp_path / "sandbox.json"
    config.write_text(json.dumps({"unionpay": {"pki_dir": "pki"}}))
    pfx = tmp_path / "shop" / "merchant.pfx"
    argv = ["unionpay-merchant", MER_ID, "--password", "111111", "--out", str(pfx)]
    assert main([*argv, "--config", str(config)]) == 0
    out = capsys.readouterr().out
    key, cert = _load_pfx(pfx, b"111111")
    assert pfx.stat().st_mode & 0o777 == 0o600
    assert str(cert.serial_number) in out
    assert main([*argv, "--config", str(config)]) == 2  # the .pfx exists

    # Register it as the printed entry says; the sandbox then uses the same PKI.
    cert_file = pfx.with_suffix(".cer.pem")
    config.write_text(
        json.dumps(
            {
                "unionpay": {
                    "pki_dir": "pki",
                    "merchants": [{"mer_id": MER_ID, "certificate_file": str(cert_file)}],
                }
            }
        )
    )
    # The PKI and the certificate were made on the real clock: the sandbox runs on it too.
    with build_sandbox(load_config(config), base_url=BASE_URL) as sandbox:
        shop_dir = pfx.parent
        assert sandbox.unionpay_root_cert_pem == (shop_dir / "unionpay-root.pem").read_text()
        assert sandbox.unionpay_merchant(MER_ID).cert_ids == [str(cert.serial_number)]
        with httpx.Client(
            transport=httpx.WSGITransport(app=create_app(sandbox)), base_url=BASE_URL
        ) as http:
            client = UnionPayWireClient(
                http,
                mer_id=MER_ID,
                key=key,
                cert_id=str(cert.serial_number),
                trust=_trust(shop_dir),
                now=lambda: datetime.now(UTC),
            )
            assert client.app_consume("CLIORDER01")["respCode"] == "00"


def test_merchant_needs_a_persistent_pki_offline(tmp_path: Path, capsys) -> None:
    config = tmp_path / "sandbox.json"
    config.write_text("{}")
    argv = ["unionpay-merchant", MER_ID, "--password", "1", "--out", str(tmp_path / "m.pfx")]
    assert main([*argv, "--config", str(config)]) == 2
    assert "pki_dir" in capsys.readouterr().err
    assert main(argv) == 2  # --url or --config is required
    assert "exactly one of --url" in capsys.readouterr().err


@pytest.fixture
def served() -> Iterator[tuple[str, Sandbox]]:
    sandbox = Sandbox(alipay_platform_key=session_alipay_key(), unionpay_pki=session_pki())
    server = make_server("127.0.0.1", 0, create_app(sandbox), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}", sandbox
    finally:
        server.shutdown()
        thread.join(timeout=10)
        sandbox.stop()


def test_merchant_from_a_running_sandbox(
    served: tuple[str, Sandbox], tmp_path: Path, capsys
) -> None:
    url, sandbox = served
    pfx = tmp_path / "merchant.pfx"
    argv = ["unionpay-merchant", MER_ID, "--password", "pw", "--out", str(pfx), "--url", url]
    assert main(argv) == 0
    _, cert = _load_pfx(pfx, b"pw")
    assert sandbox.unionpay_merchant(MER_ID).cert_ids == [str(cert.serial_number)]
    assert (tmp_path / "unionpay-middle.pem").read_text() == session_pki().middle_cert_pem
    capsys.readouterr()
    bad = ["unionpay-merchant", "bad id", "--password", "pw", "--out", str(tmp_path / "b.pfx")]
    assert main([*bad, "--url", url]) == 2
    assert "mer_id" in capsys.readouterr().err


def test_configuration_errors(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    for section in (
        [],
        {"pki": "x"},
        {"merchants": {}},
        {"merchants": [{"mer_id": MER_ID}]},
        {"merchants": [{"mer_id": MER_ID, "certificate": "x", "key": "y"}]},
    ):
        path.write_text(json.dumps({"unionpay": section}))
        with pytest.raises(InvalidInputError):
            load_config(path)
    path.write_text(json.dumps({"unionpay": {"pki_dir": "missing"}}))
    with pytest.raises(InvalidInputError):
        build_sandbox(load_config(path))
