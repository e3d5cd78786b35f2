"""AlipayConfig: key modes, secret references, certificate serials, no secret shown."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from test_alipay_fake import (
    APP_ID,
    FakeGateway,
    make_channel,
    notification_body,
    notification_fields,
    success,
)

import payhub.channels.alipay._config as config_module
from payhub.channels.alipay import (
    ALIPAY_PRODUCTION_GATEWAY,
    ALIPAY_SANDBOX_GATEWAY,
    AlipayChannel,
    AlipayConfig,
)
from payhub.errors import ConfigurationError, SignatureError
from payhub.hub import PayHub
from payhub.models import PaymentRequest, PayMethod
from payhub.money import Money


def config(merchant: Any, platform: Any, **settings: Any) -> AlipayConfig:
    values = {
        "app_id": APP_ID,
        "app_private_key": merchant.private_pem,
        "alipay_public_key": platform.public_pem,
    }
    values.update(settings)
    return AlipayConfig.model_validate({k: v for k, v in values.items() if v is not None})


# -- key modes and references --------------------------------------------------------


@pytest.mark.parametrize("form", ["private_pem", "private_pkcs1_pem", "private_base64"])
def test_private_key_forms(merchant_keys: Any, platform_keys: Any, form: str) -> None:
    loaded = config(merchant_keys, platform_keys, app_private_key=getattr(merchant_keys, form))
    assert loaded._private_key.private_numbers() == merchant_keys.private.private_numbers()


@pytest.mark.parametrize("form", ["public_pem", "public_base64"])
def test_public_key_forms(merchant_keys: Any, platform_keys: Any, form: str) -> None:
    loaded = config(merchant_keys, platform_keys, alipay_public_key=getattr(platform_keys, form))
    assert loaded._verify_key.public_numbers() == platform_keys.public.public_numbers()
    assert not loaded.cert_mode
    assert loaded.app_cert_sn is None


def test_env_and_file_references(
    merchant_keys: Any, platform_keys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "app_private_key.pem"
    key_file.write_text(merchant_keys.private_pem)
    monkeypatch.setenv("TEST_ALIPAY_PUBLIC_KEY", platform_keys.public_base64)
    loaded = config(
        merchant_keys,
        platform_keys,
        app_private_key={"$file": str(key_file)},
        alipay_public_key={"$env": "TEST_ALIPAY_PUBLIC_KEY"},
    )
    assert loaded._verify_key.public_numbers() == platform_keys.public.public_numbers()


def test_missing_env_reference_names_the_setting(merchant_keys: Any, platform_keys: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"alipay_public_key.*NO_SUCH_VARIABLE"):
        config(merchant_keys, platform_keys, alipay_public_key={"$env": "NO_SUCH_VARIABLE"})


def test_missing_file_reference(merchant_keys: Any, platform_keys: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="app_private_key"):
        config(merchant_keys, platform_keys, app_private_key={"$file": str(tmp_path / "none")})


def test_no_key_mode(merchant_keys: Any, platform_keys: Any) -> None:
    with pytest.raises(ConfigurationError, match="configure alipay_public_key"):
        config(merchant_keys, platform_keys, alipay_public_key=None)


def test_both_key_modes(merchant_keys: Any, platform_keys: Any, certs: Any) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        config(merchant_keys, platform_keys, **certs.settings())


def test_partial_certificate_mode(merchant_keys: Any, platform_keys: Any, certs: Any) -> None:
    settings = certs.settings()
    del settings["alipay_root_cert"]
    with pytest.raises(ConfigurationError, match="alipay_root_cert"):
        config(merchant_keys, platform_keys, alipay_public_key=None, **settings)


def test_unreadable_key(merchant_keys: Any, platform_keys: Any) -> None:
    with pytest.raises(ConfigurationError, match="app_private_key"):
        config(merchant_keys, platform_keys, app_private_key="-----BEGIN PRIVATE KEY-----\nxx")


@pytest.mark.parametrize(
    ("alias", "url"),
    [
        ("production", ALIPAY_PRODUCTION_GATEWAY),
        ("sandbox", ALIPAY_SANDBOX_GATEWAY),
        ("http://127.0.0.1:8000/gateway.do", "http://127.0.0.1:8000/gateway.do"),
    ],
)
def test_gateway(merchant_keys: Any, platform_keys: Any, alias: str, url: str) -> None:
    environment = "production" if alias == "production" else "sandbox"
    loaded = config(merchant_keys, platform_keys, gateway=alias, environment=environment)
    assert loaded.gateway == url


@pytest.mark.parametrize("gateway", ["ftp://x/gateway.do", "gateway.do", "debug"])
def test_bad_gateway(merchant_keys: Any, platform_keys: Any, gateway: str) -> None:
    with pytest.raises(ConfigurationError, match="gateway"):
        config(merchant_keys, platform_keys, gateway=gateway)


def test_defaults(merchant_keys: Any, platform_keys: Any) -> None:
    loaded = config(merchant_keys, platform_keys)
    assert loaded.gateway == ALIPAY_PRODUCTION_GATEWAY
    assert loaded.sign_type == "RSA2"
    assert loaded.hash_name == "SHA256"
    assert loaded.charset == "utf-8"
    assert loaded.max_amount == Money(10_000_000_000)


def test_unknown_setting_via_from_config(merchant_keys: Any, platform_keys: Any) -> None:
    settings = {
        "app_id": APP_ID,
        "private_key": merchant_keys.private_pem,  # misspelt: app_private_key
        "alipay_public_key": platform_keys.public_pem,
    }
    with pytest.raises(ConfigurationError) as raised:
        AlipayChannel.from_config("alipay", settings)
    message = str(raised.value)
    assert "private_key" in message
    assert "BEGIN PRIVATE KEY" not in message
    assert merchant_keys.private_base64[:40] not in message


def test_wrong_type_via_from_config(merchant_keys: Any, platform_keys: Any) -> None:
    with pytest.raises(ConfigurationError, match="sign_type"):
        AlipayChannel.from_config(
            "alipay",
            {
                "app_id": APP_ID,
                "app_private_key": merchant_keys.private_pem,
                "alipay_public_key": platform_keys.public_pem,
                "sign_type": "MD5",
            },
        )


# -- no secret shown ------------------------------------------------------------------------


def test_no_secret_in_repr_str_or_dump(merchant_keys: Any, platform_keys: Any) -> None:
    loaded = config(merchant_keys, platform_keys, app_private_key=merchant_keys.private_base64)
    channel = AlipayChannel("alipay", loaded)
    secret_bits = [merchant_keys.private_base64[i : i + 24] for i in range(0, 1200, 97)]
    shown = [repr(loaded), str(loaded), json.dumps(loaded.model_dump(mode="json")), repr(channel)]
    for text in shown:
        for bit in secret_bits:
            assert bit not in text
    assert "**********" in repr(loaded)


def test_no_secret_in_errors(merchant_keys: Any, platform_keys: Any) -> None:
    broken = merchant_keys.private_pem.replace("A", "*", 5)
    with pytest.raises(ConfigurationError) as raised:
        config(merchant_keys, platform_keys, app_private_key=broken)
    for text in (str(raised.value), repr(raised.value)):
        assert "PRIVATE KEY" not in text
        assert merchant_keys.private_base64[100:140] not in text


def test_keys_are_loaded_once(
    merchant_keys: Any, platform_keys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = make_channel(merchant_keys, platform_keys)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a key was loaded again")

    for name in ("load_private_key", "load_public_key", "load_certificates"):
        monkeypatch.setattr(config_module, name, refuse)
    request = PaymentRequest(out_trade_no="A1", amount=Money(1), subject="x", method=PayMethod.PAGE)
    assert list(channel.pay(request)) == []
    body = notification_body(notification_fields(), platform_keys.private)
    assert channel.parse_notification(httpx.Headers(), body).amount == Money(8888)


# -- certificate mode --------------------------------------------------------------------------


@dataclass
class Certs:
    root_pem: str  #: the root bundle: an RSA root and an ECDSA root
    app_pem: str
    alipay_pem: str
    rsa_root: x509.Certificate
    ec_root: x509.Certificate
    app: x509.Certificate
    alipay: x509.Certificate

    def settings(self) -> dict[str, str]:
        return {
            "app_cert": self.app_pem,
            "alipay_cert": self.alipay_pem,
            "alipay_root_cert": self.root_pem,
        }


def _name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts])


_SHA256 = hashes.SHA256()


def _cert(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: Any,
    signer: Any,
    serial: int,
    algorithm: hashes.HashAlgorithm | None = _SHA256,
    *,
    days: tuple[int, int] = (-1, 365),
) -> x509.Certificate:
    """A certificate valid from ``days[0]`` to ``days[1]`` days from now."""
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(now + timedelta(days=days[0]))
        .not_valid_after(now + timedelta(days=days[1]))
        .sign(signer, algorithm)
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def certs(merchant_keys: Any, platform_keys: Any) -> Certs:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = _name(
        (NameOID.COUNTRY_NAME, "CN"),
        (NameOID.ORGANIZATION_NAME, "Ant Financial"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Certification Authority"),
        (NameOID.COMMON_NAME, "Ant Financial Certification Authority R1"),
    )
    rsa_root = _cert(root_name, root_name, root_key.public_key(), root_key, 1, hashes.SHA256())
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_name = _name((NameOID.COUNTRY_NAME, "CN"), (NameOID.COMMON_NAME, "Ant Financial E1"))
    ec_root = _cert(ec_name, ec_name, ec_key.public_key(), ec_key, 2, hashes.SHA256())
    app = _cert(
        _name((NameOID.COUNTRY_NAME, "CN"), (NameOID.COMMON_NAME, APP_ID)),
        root_name,
        merchant_keys.public,
        root_key,
        0x1A2B3C4D5E6F708192,
        hashes.SHA256(),
    )
    alipay = _cert(
        _name((NameOID.COUNTRY_NAME, "CN"), (NameOID.COMMON_NAME, "支付宝(中国)网络技术有限公司")),
        root_name,
        platform_keys.public,
        root_key,
        987654321987654321,
        hashes.SHA256(),
    )
    return Certs(
        root_pem=_pem(rsa_root) + _pem(ec_root),
        app_pem=_pem(app),
        alipay_pem=_pem(alipay),
        rsa_root=rsa_root,
        ec_root=ec_root,
        app=app,
        alipay=alipay,
    )


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def test_cert_sn_by_hand(merchant_keys: Any, platform_keys: Any, certs: Certs) -> None:
    loaded = config(merchant_keys, platform_keys, alipay_public_key=None, **certs.settings())
    issuer = (
        "CN=Ant Financial Certification Authority R1,OU=Certification Authority,"
        "O=Ant Financial,C=CN"
    )
    assert loaded.cert_mode
    assert loaded.app_cert_sn == _md5(issuer + str(0x1A2B3C4D5E6F708192))
    assert loaded.alipay_cert_sn == _md5(issuer + "987654321987654321")
    # the ECDSA root is skipped: only the RSA root counts
    assert loaded.alipay_root_cert_sn == _md5(issuer + "1")


def _openssl_sn(pem: str, tmp_path: Path) -> str:
    path = tmp_path / "cert.pem"
    path.write_text(pem)
    out = subprocess.run(
        [
            "openssl",
            "x509",
            "-in",
            str(path),
            "-noout",
            "-issuer",
            "-serial",
            "-nameopt",
            "RFC2253",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fields = dict(line.split("=", 1) for line in out.splitlines())
    return _md5(fields["issuer"] + str(int(fields["serial"], 16)))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_cert_sn_against_openssl(
    merchant_keys: Any, platform_keys: Any, certs: Certs, tmp_path: Path
) -> None:
    loaded = config(merchant_keys, platform_keys, alipay_public_key=None, **certs.settings())
    assert loaded.app_cert_sn == _openssl_sn(certs.app_pem, tmp_path)
    assert loaded.alipay_cert_sn == _openssl_sn(certs.alipay_pem, tmp_path)
    assert loaded.alipay_root_cert_sn == _openssl_sn(_pem(certs.rsa_root), tmp_path)


def test_app_cert_must_certify_the_private_key(
    merchant_keys: Any, platform_keys: Any, certs: Certs
) -> None:
    settings = certs.settings()
    settings["app_cert"] = certs.alipay_pem
    with pytest.raises(ConfigurationError, match="app_cert"):
        config(merchant_keys, platform_keys, alipay_public_key=None, **settings)


def test_root_bundle_without_rsa(merchant_keys: Any, platform_keys: Any, certs: Certs) -> None:
    settings = certs.settings()
    settings["alipay_root_cert"] = _pem(certs.ec_root)
    with pytest.raises(ConfigurationError, match="RSA"):
        config(merchant_keys, platform_keys, alipay_public_key=None, **settings)


@pytest.fixture
def cert_channel(
    merchant_keys: Any, platform_keys: Any, certs: Certs, tmp_path: Path
) -> Iterator[AlipayChannel]:
    files = {}
    for name, pem in certs.settings().items():
        path = tmp_path / f"{name}.crt"
        path.write_text(pem)
        files[name] = {"$file": str(path)}
    return make_channel(merchant_keys, platform_keys, alipay_public_key=None, **files)


def test_cert_mode_requests_and_responses(
    cert_channel: AlipayChannel, merchant_keys: Any, platform_keys: Any
) -> None:
    fake = FakeGateway(merchant_keys.public, platform_keys.private)
    fake.cert_sn = cert_channel.config.alipay_cert_sn
    fake.nodes["alipay.trade.close"] = success(out_trade_no="ORDER-0001")
    with PayHub(channels=[cert_channel], http_client=fake.client()) as hub:
        hub.close_trade("alipay", "ORDER-0001")
    (seen,) = fake.seen
    assert seen.signature_ok
    assert seen.params["app_cert_sn"] == cert_channel.config.app_cert_sn
    assert seen.params["alipay_root_cert_sn"] == cert_channel.config.alipay_root_cert_sn


def test_cert_mode_response_from_another_certificate(
    cert_channel: AlipayChannel, merchant_keys: Any, platform_keys: Any
) -> None:
    fake = FakeGateway(merchant_keys.public, platform_keys.private)
    fake.cert_sn = "0" * 32
    fake.nodes["alipay.trade.close"] = success(out_trade_no="ORDER-0001")
    with (
        PayHub(channels=[cert_channel], http_client=fake.client()) as hub,
        pytest.raises(SignatureError, match="another Alipay certificate"),
    ):
        hub.close_trade("alipay", "ORDER-0001")


def test_cert_mode_notification(cert_channel: AlipayChannel, platform_keys: Any) -> None:
    body = notification_body(notification_fields(), platform_keys.private)
    assert cert_channel.parse_notification(httpx.Headers(), body).amount == Money(8888)


# -- certificate mode: alipay_cert must chain to the root bundle -------------------------------


def _ca_name(common_name: str) -> x509.Name:
    return _name(
        (NameOID.COUNTRY_NAME, "CN"),
        (NameOID.ORGANIZATION_NAME, "Ant Financial"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Certification Authority"),
        (NameOID.COMMON_NAME, common_name),
    )


@dataclass
class Hierarchy:
    """Alipay's real layout: its signing certificate and the class 2 CA that issued it
    in ``alipay_cert``; the RSA root (and an ECDSA root) in ``alipay_root_cert``."""

    root_key: rsa.RSAPrivateKey
    class2_key: rsa.RSAPrivateKey
    class2: x509.Certificate
    leaf: x509.Certificate
    settings: dict[str, str]


ALIPAY_SUBJECT = _name(
    (NameOID.COUNTRY_NAME, "CN"),
    (NameOID.ORGANIZATION_NAME, "Shop"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "Alipay"),
    (NameOID.COMMON_NAME, "支付宝(中国)网络技术有限公司-2088000000000001"),
)


@pytest.fixture(scope="module")
def hierarchy(merchant_keys: Any, platform_keys: Any, certs: Certs) -> Hierarchy:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = _ca_name("Ant Financial Certification Authority R1")
    root = _cert(root_name, root_name, root_key.public_key(), root_key, 1)
    class2_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    class2_name = _ca_name("Ant Financial Certification Authority Class 2 R1")
    class2 = _cert(class2_name, root_name, class2_key.public_key(), root_key, 2)
    leaf = _cert(ALIPAY_SUBJECT, class2_name, platform_keys.public, class2_key, 3)
    app = _cert(
        _name((NameOID.COUNTRY_NAME, "CN"), (NameOID.COMMON_NAME, APP_ID)),
        class2_name,
        merchant_keys.public,
        class2_key,
        4,
    )
    settings = {
        "app_cert": _pem(app),
        "alipay_cert": _pem(leaf) + _pem(class2),
        "alipay_root_cert": _pem(root) + _pem(certs.ec_root),
    }
    return Hierarchy(root_key, class2_key, class2, leaf, settings)


def _cert_config(merchant_keys: Any, platform_keys: Any, settings: dict[str, str]) -> Any:
    return config(merchant_keys, platform_keys, alipay_public_key=None, **settings)


def test_alipay_cert_through_its_class2_ca_loads(
    merchant_keys: Any, platform_keys: Any, hierarchy: Hierarchy
) -> None:
    loaded = _cert_config(merchant_keys, platform_keys, hierarchy.settings)
    assert loaded.cert_mode
    class2 = (
        "CN=Ant Financial Certification Authority Class 2 R1,OU=Certification Authority,"
        "O=Ant Financial,C=CN"
    )
    assert loaded.alipay_cert_sn == _md5(class2 + "3")  # the signing certificate, not the CA


def test_alipay_cert_from_another_ca_is_refused(
    merchant_keys: Any, platform_keys: Any, hierarchy: Hierarchy, certs: Certs
) -> None:
    # certs.alipay is issued by another "R1" (same name, another key).
    settings = {**hierarchy.settings, "alipay_cert": certs.alipay_pem}
    with pytest.raises(ConfigurationError, match=r"alipay_cert: .*does not verify"):
        _cert_config(merchant_keys, platform_keys, settings)


def test_alipay_cert_without_its_class2_ca_is_refused(
    merchant_keys: Any, platform_keys: Any, hierarchy: Hierarchy
) -> None:
    settings = {**hierarchy.settings, "alipay_cert": _pem(hierarchy.leaf)}
    with pytest.raises(ConfigurationError, match=r"alipay_cert: no certificate .* issued"):
        _cert_config(merchant_keys, platform_keys, settings)


def test_a_root_inside_alipay_cert_is_not_trusted(
    merchant_keys: Any, platform_keys: Any, hierarchy: Hierarchy
) -> None:
    # A forged file: the leaf, a class 2 CA and a self-made "R1", all under the forger's key.
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = _ca_name("Ant Financial Certification Authority R1")
    fake_root = _cert(root_name, root_name, forger.public_key(), forger, 1)
    class2_name = _ca_name("Ant Financial Certification Authority Class 2 R1")
    fake_class2 = _cert(class2_name, root_name, forger.public_key(), forger, 2)
    leaf = _cert(ALIPAY_SUBJECT, class2_name, platform_keys.public, forger, 3)
    forged = _pem(leaf) + _pem(fake_class2) + _pem(fake_root)
    with pytest.raises(ConfigurationError, match="does not end at a root of alipay_root_cert"):
        _cert_config(merchant_keys, platform_keys, {**hierarchy.settings, "alipay_cert": forged})


def test_a_self_signed_alipay_cert_is_refused(
    merchant_keys: Any, platform_keys: Any, hierarchy: Hierarchy
) -> None:
    settings = {**hierarchy.settings, "alipay_cert": hierarchy.settings["alipay_root_cert"]}
    with pytest.raises(ConfigurationError, match="does not end at a root"):
        _cert_config(merchant_keys, platform_keys, settings)


def test_an_expired_alipay_cert_is_refused(
    merchant_keys: Any, platform_keys: Any, hierarchy: Hierarchy
) -> None:
    expired = _cert(
        ALIPAY_SUBJECT,
        hierarchy.class2.subject,
        platform_keys.public,
        hierarchy.class2_key,
        5,
        days=(-400, -35),
    )
    settings = {**hierarchy.settings, "alipay_cert": _pem(expired) + _pem(hierarchy.class2)}
    with pytest.raises(ConfigurationError, match=r"alipay_cert: .*validity"):
        _cert_config(merchant_keys, platform_keys, settings)


def test_chain_errors_name_no_secret(
    merchant_keys: Any, platform_keys: Any, hierarchy: Hierarchy
) -> None:
    settings = {**hierarchy.settings, "alipay_cert": _pem(hierarchy.leaf)}
    with pytest.raises(ConfigurationError) as info:
        _cert_config(merchant_keys, platform_keys, settings)
    text = f"{info.value} {info.value!r}"
    assert "PRIVATE KEY" not in text
    assert "BEGIN CERTIFICATE" not in text
