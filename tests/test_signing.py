"""payhub.signing, checked against independent oracles: the openssl command line
for RSA, keys, certificates and Alipay serials; ``cryptography`` used directly
for AES-GCM; certificates built with ``cryptography.x509`` for chain checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from payhub.errors import ConfigurationError, SignatureError
from payhub.signing import (
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    alipay_cert_sn,
    alipay_root_cert_sn,
    canonical_query,
    certificate_serial_hex,
    constant_time_equals,
    load_certificate,
    load_certificates,
    load_pkcs12,
    load_private_key,
    load_public_key,
    rsa_sign,
    rsa_verify,
    verify_chain,
)
from payhub.signing._certs import DEFAULT_LINK_ALGORITHMS

if TYPE_CHECKING:
    from conftest import KeyPair

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
pytestmark = pytest.mark.skipif(not Path(OPENSSL).exists(), reason="needs the openssl CLI")

MESSAGE = 'app_id=2021000000000000&biz_content={"subject":"礼品卡"}&method=x'.encode()
P12_PASSWORD = "p12-Passw0rd!"
PKCS8_PASSWORD = "pkcs8-Secret#42"


def openssl(*args: str | Path, cwd: Path, stdin: bytes | None = None) -> str:
    result = subprocess.run(
        [OPENSSL, *map(str, args)], cwd=cwd, input=stdin, capture_output=True, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"openssl {args[0]} failed: {result.stderr.decode(errors='replace')}")
    return result.stdout.decode()


def openssl_ok(*args: str | Path, cwd: Path) -> bool:
    result = subprocess.run([OPENSSL, *map(str, args)], cwd=cwd, capture_output=True, check=False)
    return result.returncode == 0


def pem_body(pem: str) -> str:
    """The base64 between the armour lines, on one line."""
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


@dataclass(frozen=True)
class Material:
    """Keys and certificates made by the openssl command line, once per module."""

    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def text(self, name: str) -> str:
        return self.path(name).read_text()

    def data(self, name: str) -> bytes:
        return self.path(name).read_bytes()


# Each line is one openssl command, run in the material directory (shlex syntax).
_OPENSSL_SCRIPT = f"""
genrsa -traditional -out pkcs1.pem 2048
pkcs8 -topk8 -nocrypt -in pkcs1.pem -out pkcs8.pem
pkcs8 -topk8 -nocrypt -in pkcs1.pem -outform DER -out pkcs8.der
rsa -in pkcs1.pem -traditional -outform DER -out pkcs1.der
pkcs8 -topk8 -v2 aes-256-cbc -in pkcs1.pem -passout pass:{PKCS8_PASSWORD} -out pkcs8-enc.pem
pkey -in pkcs1.pem -pubout -out pub.pem
rsa -in pkcs1.pem -RSAPublicKey_out -out pub-pkcs1.pem
pkey -in pkcs1.pem -pubout -outform DER -out pub.der

genrsa -out rsa1024.pem 1024
genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem
pkey -in ec.pem -pubout -out ec-pub.pem
req -x509 -new -key ec.pem -days 30 -subj /CN=ec -out ec-cert.pem
pkcs12 -export -inkey ec.pem -in ec-cert.pem -passout pass:{P12_PASSWORD} -out ec.p12

req -x509 -new -key pkcs1.pem -sha256 -days 30 -subj '/C=CN/O=Test Shop/CN=merchant' \
    -set_serial 0x0a1b2c3d4e5f -out cert.pem
x509 -in cert.pem -outform DER -out cert.der
pkcs12 -export -inkey pkcs1.pem -in cert.pem -passout pass:{P12_PASSWORD} -out bundle.p12

req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -sha256 -days 30 -set_serial 0x1f \
    -subj '/C=CN/ST=Zhejiang/L=Hangzhou/O=Ant Test CA/OU=CA Unit/CN=Ant Test Root R1' \
    -out ca.pem
req -new -key pkcs1.pem -subj '/C=CN/O=Test Shop/OU=Alipay/CN=2021000000' -out app.csr
x509 -req -in app.csr -CA ca.pem -CAkey ca.key -days 30 -sha256 \
    -set_serial 0x8f3a5c7e9b1d2f406172839405a6b7c8 -out app-cert.pem
req -x509 -new -key ec.pem -sha256 -days 30 -set_serial 7 \
    -subj '/C=CN/O=Ant Test CA/CN=Ant Test Root E1' -out ec-root.pem
req -x509 -new -newkey rsa:2048 -nodes -keyout ca2.key -sha1 -days 30 -set_serial 123456789 \
    -subj '/C=CN/O=iTrus Test/CN=iTrus Test Class 2 Root CA - G3' -out ca2.pem
"""


@pytest.fixture(scope="module")
def ossl(tmp_path_factory: pytest.TempPathFactory) -> Material:
    """The merchant key in every format a shop may paste; keys payhub must refuse
    (RSA-1024, EC); a self-signed certificate and a PKCS#12 bundle; for Alipay
    certificate mode an RSA root issuing the app certificate (serial with the
    high bit set) and a root bundle mixing RSA- and ECDSA-signed roots."""
    d = tmp_path_factory.mktemp("openssl")
    for command in _OPENSSL_SCRIPT.replace("\\\n", " ").splitlines():
        if command.strip():
            openssl(*shlex.split(command), cwd=d)
    bundle = "".join((d / name).read_text() for name in ("ca.pem", "ec-root.pem", "ca2.pem"))
    (d / "root-bundle.pem").write_text(bundle)
    return Material(d)


@pytest.fixture(scope="module")
def key(ossl: Material) -> rsa.RSAPrivateKey:
    return load_private_key(ossl.text("pkcs1.pem"))


# -- RSA signatures against openssl dgst ---------------------------------------


@pytest.mark.parametrize(("hash_name", "flag"), [("SHA256", "-sha256"), ("SHA1", "-sha1")])
def test_rsa_sign_verifies_with_openssl(
    ossl: Material, key: rsa.RSAPrivateKey, tmp_path: Path, hash_name: str, flag: str
) -> None:
    signature = rsa_sign(key, MESSAGE, hash_name)  # type: ignore[arg-type]
    assert "\n" not in signature
    (tmp_path / "msg").write_bytes(MESSAGE)
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(signature, validate=True))
    pub = ossl.path("pub.pem")
    out = openssl("dgst", flag, "-verify", pub, "-signature", "sig.bin", "msg", cwd=tmp_path)
    assert "Verified OK" in out
    # ... and openssl tells a wrong message apart, so the check above means something.
    (tmp_path / "msg").write_bytes(MESSAGE + b"x")
    assert not openssl_ok(
        "dgst", flag, "-verify", pub, "-signature", "sig.bin", "msg", cwd=tmp_path
    )


def test_rsa_sha1_and_sha256_signatures_differ(key: rsa.RSAPrivateKey) -> None:
    assert rsa_sign(key, MESSAGE, "SHA1") != rsa_sign(key, MESSAGE, "SHA256")
    assert rsa_sign(key, MESSAGE) == rsa_sign(key, MESSAGE, "SHA256")  # PKCS#1 v1.5 is stable


@pytest.mark.parametrize(("hash_name", "flag"), [("SHA256", "-sha256"), ("SHA1", "-sha1")])
def test_openssl_signature_verifies_with_rsa_verify(
    ossl: Material, tmp_path: Path, hash_name: str, flag: str
) -> None:
    (tmp_path / "msg").write_bytes(MESSAGE)
    openssl("dgst", flag, "-sign", ossl.path("pkcs1.pem"), "-out", "sig.bin", "msg", cwd=tmp_path)
    signature = base64.b64encode((tmp_path / "sig.bin").read_bytes()).decode()
    public = load_public_key(ossl.text("pub.pem"))
    rsa_verify(public, MESSAGE, signature, hash_name)  # type: ignore[arg-type]
    rsa_verify(public, MESSAGE, signature.encode(), hash_name)  # type: ignore[arg-type]
    other = "SHA1" if hash_name == "SHA256" else "SHA256"
    with pytest.raises(SignatureError):
        rsa_verify(public, MESSAGE, signature, other)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def openssl_signature(ossl: Material) -> str:
    (ossl.dir / "msg").write_bytes(MESSAGE)
    openssl("dgst", "-sha256", "-sign", "pkcs1.pem", "-out", "msg.sig", "msg", cwd=ossl.dir)
    return base64.b64encode(ossl.data("msg.sig")).decode()


def _flip_one_bit(signature: str) -> str:
    raw = bytearray(base64.b64decode(signature))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("message", "mangle"),
    [
        (MESSAGE + b" ", lambda s: s),  # tampered message
        (MESSAGE.replace(b"2021", b"2022"), lambda s: s),
        (MESSAGE, _flip_one_bit),  # tampered signature
        (MESSAGE, lambda s: s[:-8] + "AAAAAAA="),
        (MESSAGE, lambda s: base64.b64encode(base64.b64decode(s)[:-1]).decode()),  # truncated
        (MESSAGE, lambda s: s[:-4]),  # bad base64 padding
        (MESSAGE, lambda s: s.replace("+", "-").replace("/", "_") + "%%"),  # not base64
        (MESSAGE, lambda s: s[:40] + "\n" + s[40:]),  # line break
        (MESSAGE, lambda s: "签名" + s),  # non-ASCII
        (MESSAGE, lambda s: ""),  # empty
    ],
)
def test_rsa_verify_rejects(
    ossl: Material, openssl_signature: str, message: bytes, mangle: Callable[[str], str]
) -> None:
    public = load_public_key(ossl.text("pub.pem"))
    rsa_verify(public, MESSAGE, openssl_signature)  # the untouched pair verifies
    bad = mangle(openssl_signature)
    with pytest.raises(SignatureError) as info:
        rsa_verify(public, message, bad)
    text = str(info.value) + repr(info.value)
    assert openssl_signature[:24] not in text
    if bad:
        assert bad[:24] not in text


def test_rsa_verify_with_another_key_fails(openssl_signature: str, other_keys: KeyPair) -> None:
    with pytest.raises(SignatureError):
        rsa_verify(other_keys.public, MESSAGE, openssl_signature)


def test_rsa_unsupported_hash_name(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(SignatureError):
        rsa_sign(key, MESSAGE, "MD5")  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        rsa_verify(key.public_key(), MESSAGE, rsa_sign(key, MESSAGE), "SHA512")  # type: ignore[arg-type]


# -- key loading -----------------------------------------------------------------


def _same_key(a: rsa.RSAPrivateKey, b: rsa.RSAPrivateKey) -> bool:
    return a.private_numbers() == b.private_numbers()


def test_load_private_key_formats(ossl: Material, key: rsa.RSAPrivateKey) -> None:
    assert ossl.text("pkcs1.pem").startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert ossl.text("pkcs8.pem").startswith("-----BEGIN PRIVATE KEY-----")
    candidates: dict[str, rsa.RSAPrivateKey] = {
        "PKCS#1 PEM str": load_private_key(ossl.text("pkcs1.pem")),
        "PKCS#1 PEM bytes": load_private_key(ossl.data("pkcs1.pem")),
        "PKCS#1 PEM CRLF, padded": load_private_key(
            "\n  " + ossl.text("pkcs1.pem").replace("\n", "\r\n") + "\n\n"
        ),
        "PKCS#8 PEM": load_private_key(ossl.text("pkcs8.pem")),
        "PKCS#8 bare base64": load_private_key(pem_body(ossl.text("pkcs8.pem"))),
        "PKCS#8 base64 with line breaks": load_private_key(
            "\n".join(ossl.text("pkcs8.pem").strip().splitlines()[1:-1])
        ),
        "PKCS#1 bare base64": load_private_key(pem_body(ossl.text("pkcs1.pem"))),
        "PKCS#8 DER": load_private_key(ossl.data("pkcs8.der")),
        "PKCS#1 DER": load_private_key(ossl.data("pkcs1.der")),
        "encrypted PKCS#8": load_private_key(
            ossl.text("pkcs8-enc.pem"), password=PKCS8_PASSWORD.encode()
        ),
    }
    for label, loaded in candidates.items():
        assert isinstance(loaded, rsa.RSAPrivateKey), label
        assert _same_key(loaded, key), label


def test_loaded_key_matches_openssl_modulus(ossl: Material, key: rsa.RSAPrivateKey) -> None:
    out = openssl("rsa", "-in", "pkcs1.pem", "-noout", "-modulus", cwd=ossl.dir)
    assert int(out.strip().split("=", 1)[1], 16) == key.public_key().public_numbers().n


@pytest.mark.parametrize("password", [None, b"wrong password"])
def test_encrypted_pkcs8_needs_the_right_password(ossl: Material, password: bytes | None) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_private_key(ossl.text("pkcs8-enc.pem"), password=password)
    assert PKCS8_PASSWORD not in str(info.value)
    if password:
        assert password.decode() not in str(info.value)


def test_password_given_for_unencrypted_key(ossl: Material) -> None:
    with pytest.raises(ConfigurationError):
        load_private_key(ossl.text("pkcs8.pem"), password=b"unexpected")


def test_load_public_key_formats(ossl: Material, key: rsa.RSAPrivateKey) -> None:
    expected = key.public_key().public_numbers()
    sources: dict[str, str | bytes | x509.Certificate] = {
        "SPKI PEM": ossl.text("pub.pem"),
        "PKCS#1 PEM": ossl.text("pub-pkcs1.pem"),
        "SPKI bare base64": pem_body(ossl.text("pub.pem")),
        "PKCS#1 bare base64": pem_body(ossl.text("pub-pkcs1.pem")),
        "SPKI DER": ossl.data("pub.der"),
        "certificate PEM": ossl.text("cert.pem"),
        "certificate DER": ossl.data("cert.der"),
        "certificate bare base64": pem_body(ossl.text("cert.pem")),
        "certificate object": load_certificate(ossl.text("cert.pem")),
    }
    for label, source in sources.items():
        assert load_public_key(source).public_numbers() == expected, label


def test_load_certificate_matches_openssl(ossl: Material) -> None:
    cert = load_certificate(ossl.text("cert.pem"))
    assert cert == load_certificate(ossl.data("cert.der"))
    serial = openssl("x509", "-in", "cert.pem", "-noout", "-serial", cwd=ossl.dir)
    assert cert.serial_number == int(serial.strip().split("=", 1)[1], 16)
    assert certificate_serial_hex(cert) == "A1B2C3D4E5F"


def test_load_certificates_reads_a_bundle_in_order(ossl: Material) -> None:
    certs = load_certificates(ossl.text("root-bundle.pem"))
    names = [c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in certs]
    assert names == [
        "Ant Test Root R1",
        "Ant Test Root E1",
        "iTrus Test Class 2 Root CA - G3",
    ]
    with pytest.raises(ConfigurationError):
        load_certificates(ossl.text("pub.pem"))


def test_load_pkcs12(ossl: Material, key: rsa.RSAPrivateKey) -> None:
    for password in (P12_PASSWORD, P12_PASSWORD.encode()):
        loaded, cert, extra = load_pkcs12(ossl.data("bundle.p12"), password)
        assert _same_key(loaded, key)
        assert cert == load_certificate(ossl.text("cert.pem"))
        assert list(extra) == []


@pytest.mark.parametrize("password", ["wrong-Passw0rd", None, ""])
def test_load_pkcs12_wrong_password(ossl: Material, password: str | None) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_pkcs12(ossl.data("bundle.p12"), password)
    message = str(info.value) + repr(info.value)
    assert P12_PASSWORD not in message
    if password:
        assert password not in message


def test_load_pkcs12_refuses_ec(ossl: Material) -> None:
    with pytest.raises(ConfigurationError, match="RSA"):
        load_pkcs12(ossl.data("ec.p12"), P12_PASSWORD)


def test_load_pkcs12_garbage(ossl: Material) -> None:
    with pytest.raises(ConfigurationError):
        load_pkcs12(b"not a pkcs12 file", P12_PASSWORD)


def test_non_rsa_keys_are_refused(ossl: Material) -> None:
    with pytest.raises(ConfigurationError, match="RSA"):
        load_private_key(ossl.text("ec.pem"))
    with pytest.raises(ConfigurationError, match="RSA"):
        load_public_key(ossl.text("ec-pub.pem"))
    with pytest.raises(ConfigurationError, match="RSA"):
        load_public_key(ossl.text("ec-cert.pem"))


def test_short_rsa_key_is_refused(ossl: Material) -> None:
    with pytest.raises(ConfigurationError, match="1024"):
        load_private_key(ossl.text("rsa1024.pem"))


def _garbage(ossl: Material) -> dict[str, str | bytes]:
    pkcs8 = ossl.text("pkcs8.pem")
    body = pem_body(pkcs8)
    lines = pkcs8.strip().splitlines()
    return {
        "truncated PEM": "\n".join(lines[:8] + lines[-1:]),
        "body corrupted": "\n".join([*lines[:5], "A" * 64, *lines[6:]]),
        "truncated base64": body[: len(body) // 2],
        "random bytes": bytes(range(256)) * 4,
        "text": "this is not a key, it is a sentence",
        "non-ASCII": "私钥" + body,
        "empty": "",
        "whitespace": "  \n ",
        "public key instead": ossl.text("pub.pem"),
        "certificate instead": ossl.text("cert.pem"),
    }


def test_garbage_private_keys_fail_without_echoing_the_key(ossl: Material) -> None:
    secret_fragment = pem_body(ossl.text("pkcs8.pem"))[60:90]
    for label, data in _garbage(ossl).items():
        with pytest.raises(ConfigurationError) as info:
            load_private_key(data)
        text = f"{info.value}|{info.value!r}"
        assert secret_fragment not in text, label
        assert "MII" not in text, label
        assert len(text) < 300, label


@pytest.mark.parametrize("loader", [load_public_key, load_certificate, load_certificates])
def test_garbage_public_material_is_a_configuration_error(
    ossl: Material, loader: Callable[[str | bytes], object]
) -> None:
    fragment = pem_body(ossl.text("cert.pem"))[60:90]
    for label, data in {
        "text": "not a key",
        "non-ASCII": "公钥" + pem_body(ossl.text("cert.pem")),
        "random bytes": bytes(range(256)),
        "corrupted certificate": "\n".join(
            "A" * 64 if i == 3 else line
            for i, line in enumerate(ossl.text("cert.pem").splitlines())
        ),
        "empty": "",
    }.items():
        with pytest.raises(ConfigurationError) as info:
            loader(data)
        assert fragment not in str(info.value), label


# -- Alipay certificate-mode serials ----------------------------------------------


def _expected_alipay_sn(ossl: Material, name: str) -> str:
    issuer = openssl("x509", "-in", name, "-noout", "-issuer", "-nameopt", "RFC2253", cwd=ossl.dir)
    serial = openssl("x509", "-in", name, "-noout", "-serial", cwd=ossl.dir)
    issuer_dn = issuer.strip().removeprefix("issuer=")
    serial_decimal = str(int(serial.strip().removeprefix("serial="), 16))
    return hashlib.md5((issuer_dn + serial_decimal).encode(), usedforsecurity=False).hexdigest()


def test_openssl_rfc2253_order_is_most_specific_first(ossl: Material) -> None:
    issuer = openssl(
        "x509", "-in", "app-cert.pem", "-noout", "-issuer", "-nameopt", "RFC2253", cwd=ossl.dir
    )
    assert issuer.strip() == (
        "issuer=CN=Ant Test Root R1,OU=CA Unit,O=Ant Test CA,L=Hangzhou,ST=Zhejiang,C=CN"
    )


@pytest.mark.parametrize("name", ["app-cert.pem", "ca.pem", "ca2.pem", "cert.pem"])
def test_alipay_cert_sn_matches_independent_computation(ossl: Material, name: str) -> None:
    cert = load_certificate(ossl.text(name))
    sn = alipay_cert_sn(cert)
    assert sn == _expected_alipay_sn(ossl, name)
    assert len(sn) == 32
    assert sn == sn.lower()


def test_alipay_root_cert_sn_keeps_only_rsa_signed(ossl: Material) -> None:
    expected = "_".join(_expected_alipay_sn(ossl, n) for n in ("ca.pem", "ca2.pem"))
    bundle = ossl.text("root-bundle.pem")
    assert alipay_root_cert_sn(bundle) == expected
    assert alipay_root_cert_sn(bundle.encode()) == expected
    assert alipay_root_cert_sn(load_certificates(bundle)) == expected
    assert _expected_alipay_sn(ossl, "ec-root.pem") not in expected
    assert alipay_root_cert_sn(ossl.text("ec-root.pem")) == ""


# -- canonical strings ------------------------------------------------------------


def test_canonical_query_sorted_empty_dropped_values_raw() -> None:
    params = {
        "timestamp": "2024-05-01 12:00:00",
        "app_id": "2021",
        "biz_content": '{"out_trade_no":"A&B=C","subject":"礼品卡 100%"}',
        "sign": "SHOULD-NOT-APPEAR",
        "notify_url": "https://shop.example/notify?a=1&b=2",
        "return_url": "",
        "Zeta": "upper-case sorts first",
        "method": "alipay.trade.page.pay",
    }
    assert canonical_query(params) == (
        "Zeta=upper-case sorts first"
        "&app_id=2021"
        '&biz_content={"out_trade_no":"A&B=C","subject":"礼品卡 100%"}'
        "&method=alipay.trade.page.pay"
        "&notify_url=https://shop.example/notify?a=1&b=2"
        "&timestamp=2024-05-01 12:00:00"
    )


def test_canonical_query_exclusions() -> None:
    params = {"a": "1", "sign": "s", "sign_type": "RSA2", "signature": "x"}
    assert canonical_query(params) == "a=1&sign_type=RSA2&signature=x"
    assert canonical_query(params, exclude=("sign", "sign_type")) == "a=1&signature=x"
    assert canonical_query(params, exclude=["signature"]) == "a=1&sign=s&sign_type=RSA2"
    assert canonical_query(params, exclude=()) == "a=1&sign=s&sign_type=RSA2&signature=x"
    assert canonical_query({}) == ""
    assert canonical_query({"a": "", "b": ""}) == ""
    assert canonical_query({"a": " "}) == "a= "  # only the empty string counts as empty


def test_canonical_query_sorts_by_code_point_like_utf8_bytes() -> None:
    params = {"b": "1", "a_b": "2", "aB": "3", "a": "4", "é": "5", "z": "6"}
    keys = [part.split("=", 1)[0] for part in canonical_query(params).split("&")]
    assert keys == sorted(params, key=lambda k: k.encode("utf-8"))


# -- AES-256-GCM (WeChat Pay APIv3 resources) ---------------------------------------

AES_KEY = b"0123456789abcdefghijABCDEFGHIJ01"
NONCE = b"46W8Pqag7M7s"
AAD = b"transaction"
PLAINTEXT = b'{"out_trade_no":"A1","amount":{"total":100}}'


def test_aes_gcm_round_trip_against_cryptography() -> None:
    assert len(AES_KEY) == 32
    ours = aes_gcm_encrypt(AES_KEY, NONCE, AAD, PLAINTEXT)
    reference = AESGCM(AES_KEY).encrypt(NONCE, PLAINTEXT, AAD)
    assert base64.b64decode(ours, validate=True) == reference
    assert len(reference) == len(PLAINTEXT) + 16
    theirs = base64.b64encode(reference).decode()
    assert aes_gcm_decrypt(AES_KEY, NONCE, AAD, theirs) == PLAINTEXT
    assert AESGCM(AES_KEY).decrypt(NONCE, base64.b64decode(ours), AAD) == PLAINTEXT
    assert aes_gcm_decrypt(AES_KEY, NONCE, b"", aes_gcm_encrypt(AES_KEY, NONCE, b"", b"")) == b""


def _flip_last_byte(ciphertext: str) -> str:
    raw = bytearray(base64.b64decode(ciphertext))
    raw[-1] ^= 0x80
    return base64.b64encode(bytes(raw)).decode()


def _flip_first_byte(ciphertext: str) -> str:
    raw = bytearray(base64.b64decode(ciphertext))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("nonce", "aad", "mangle"),
    [
        (NONCE, AAD, _flip_last_byte),  # tag
        (NONCE, AAD, _flip_first_byte),  # ciphertext
        (b"46W8Pqag7M7t", AAD, lambda c: c),  # wrong nonce
        (NONCE, b"refund", lambda c: c),  # wrong AAD
        (NONCE, b"", lambda c: c),  # missing AAD
        (NONCE, AAD, lambda c: base64.b64encode(base64.b64decode(c)[:-16]).decode()),  # no tag
        (NONCE, AAD, lambda c: c[:-3]),  # bad base64
        (NONCE, AAD, lambda c: "not base64!"),
        (NONCE, AAD, lambda c: ""),
        (b"", AAD, lambda c: c),  # empty nonce
    ],
)
def test_aes_gcm_tampering_raises_signature_error(
    nonce: bytes, aad: bytes, mangle: Callable[[str], str]
) -> None:
    ciphertext = aes_gcm_encrypt(AES_KEY, NONCE, AAD, PLAINTEXT)
    with pytest.raises(SignatureError):
        aes_gcm_decrypt(AES_KEY, nonce, aad, mangle(ciphertext))


def test_aes_gcm_wrong_key_raises_signature_error() -> None:
    ciphertext = aes_gcm_encrypt(AES_KEY, NONCE, AAD, PLAINTEXT)
    with pytest.raises(SignatureError):
        aes_gcm_decrypt(AES_KEY[::-1], NONCE, AAD, ciphertext)


@pytest.mark.parametrize("bad_key", [AES_KEY[:31], AES_KEY + b"x", AES_KEY[:16], b""])
def test_aes_gcm_key_must_be_32_bytes(bad_key: bytes) -> None:
    with pytest.raises(ConfigurationError) as info:
        aes_gcm_encrypt(bad_key, NONCE, AAD, PLAINTEXT)
    assert AES_KEY[:16].decode() not in str(info.value)
    with pytest.raises(ConfigurationError):
        aes_gcm_decrypt(bad_key, NONCE, AAD, "AAAA")


# -- certificate chains (UnionPay signPubKeyCert) ------------------------------------


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "China Test Union"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _issue(
    subject: str,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    issuer: Issued | None,
    *,
    ca: bool,
    not_before: datetime = NOW - timedelta(days=30),
    not_after: datetime = NOW + timedelta(days=365),
    issuer_name: x509.Name | None = None,
) -> Issued:
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name or (issuer.cert.subject if issuer else _name(subject)))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return Issued(builder.sign(signer, hashes.SHA256()), key)


@dataclass(frozen=True)
class Pki:
    root: Issued
    middle: Issued
    leaf: Issued
    expired_leaf: Issued
    self_signed_leaf: Issued
    forged_leaf: Issued
    other_leaf: Issued
    other_middle: Issued
    other_root: Issued
    ec_root: Issued
    ec_leaf: Issued
    impostor_root: Issued


@pytest.fixture(scope="module")
def pki(merchant_keys: KeyPair, platform_keys: KeyPair, other_keys: KeyPair) -> Pki:
    root_key, middle_key = platform_keys.private, other_keys.private
    leaf_key = merchant_keys.private
    other_root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())

    root = _issue("Test Root CA", root_key, None, ca=True)
    middle = _issue("Test Middle CA", middle_key, root, ca=True)
    leaf = _issue("Test@00040000:SIGN@中国银联股份有限公司@1", leaf_key, middle, ca=False)
    expired = _issue(
        "expired",
        leaf_key,
        middle,
        ca=False,
        not_before=NOW - timedelta(days=400),
        not_after=NOW - timedelta(days=1),
    )
    self_signed = _issue("Test Middle CA", leaf_key, None, ca=False)
    # Claims the middle as its issuer, but is signed by some other key.
    forged = _issue(
        "forged",
        leaf_key,
        Issued(middle.cert, other_root_key),
        ca=False,
    )
    other_root = _issue("Other Root CA", other_root_key, None, ca=True)
    other_middle = _issue("Other Middle CA", ec_key, other_root, ca=True)
    other_leaf = _issue("other", leaf_key, other_middle, ca=False)
    ec_root = _issue("EC Root", ec_key, None, ca=True)
    ec_leaf = _issue("ec leaf", leaf_key, ec_root, ca=False)
    impostor_root = _issue("Test Root CA", other_root_key, None, ca=True)  # same name, other key
    return Pki(
        root,
        middle,
        leaf,
        expired,
        self_signed,
        forged,
        other_leaf,
        other_middle,
        other_root,
        ec_root,
        ec_leaf,
        impostor_root,
    )


def test_verify_chain_accepts_a_good_chain(pki: Pki) -> None:
    chain = [pki.middle.cert, pki.root.cert]
    verify_chain(pki.leaf.cert, chain, at=NOW)
    verify_chain(pki.middle.cert, [pki.root.cert], at=NOW)
    verify_chain(pki.other_leaf.cert, [pki.other_middle.cert, pki.other_root.cert], at=NOW)
    # Without ``at`` the current time is used: the leaf is valid until NOW + 365 days.
    if datetime.now(UTC) < NOW + timedelta(days=365):
        verify_chain(pki.leaf.cert, chain)


@pytest.mark.parametrize(
    "case",
    [
        "self_signed_leaf",
        "expired_leaf",
        "other_leaf",
        "forged_leaf",
        "root_as_leaf_of_wrong_order",
        "not_yet_valid",
        "empty_chain_self_signed",
        "ec_root",
        "impostor_root",
    ],
)
def test_verify_chain_rejects(pki: Pki, case: str) -> None:
    chain = [pki.middle.cert, pki.root.cert]
    cert, at = pki.leaf.cert, NOW
    if case == "self_signed_leaf":
        cert = pki.self_signed_leaf.cert
    elif case == "expired_leaf":
        cert = pki.expired_leaf.cert
    elif case == "other_leaf":
        cert = pki.other_leaf.cert
    elif case == "forged_leaf":
        cert = pki.forged_leaf.cert
    elif case == "root_as_leaf_of_wrong_order":
        chain = [pki.root.cert, pki.middle.cert]
    elif case == "not_yet_valid":
        at = NOW - timedelta(days=60)
    elif case == "empty_chain_self_signed":
        # No configured chain must never mean "trust any self-signed certificate".
        cert, chain = pki.self_signed_leaf.cert, []
    elif case == "ec_root":
        cert, chain = pki.ec_leaf.cert, [pki.ec_root.cert]
    elif case == "impostor_root":
        chain = [pki.middle.cert, pki.impostor_root.cert]
    with pytest.raises(SignatureError):
        verify_chain(cert, chain, at=at)


def test_verify_chain_checks_every_link_validity(pki: Pki) -> None:
    after_root_expiry = NOW + timedelta(days=366)
    with pytest.raises(SignatureError, match="validity"):
        verify_chain(pki.leaf.cert, [pki.middle.cert, pki.root.cert], at=after_root_expiry)


def test_verify_chain_accepts_only_the_algorithms_asked_for(pki: Pki) -> None:
    """Each link is checked with the certificate's own algorithm, which must be one the
    caller accepts: SHA-1 only where a channel's real chain needs it."""
    chain = [pki.middle.cert, pki.root.cert]
    sha1_only = {x509.SignatureAlgorithmOID.RSA_WITH_SHA1}
    with pytest.raises(SignatureError, match="not accepted"):
        verify_chain(pki.leaf.cert, chain, at=NOW, algorithms=sha1_only)
    assert x509.SignatureAlgorithmOID.RSA_WITH_SHA1 not in DEFAULT_LINK_ALGORITHMS
    verify_chain(
        pki.leaf.cert,
        chain,
        at=NOW,
        algorithms={x509.SignatureAlgorithmOID.RSA_WITH_SHA256},
    )


def test_verify_chain_refuses_a_leaf_that_is_its_own_issuer(pki: Pki) -> None:
    with pytest.raises(SignatureError, match="self-issued"):
        verify_chain(pki.root.cert, [pki.root.cert], at=NOW)


def test_verify_chain_turns_a_damaged_certificate_into_a_signature_error(pki: Pki) -> None:
    """cryptography parses names lazily: a flipped byte surfaces as ValueError deep in
    the chain check unless verify_chain translates it."""
    der = bytearray(pki.leaf.cert.public_bytes(serialization.Encoding.DER))
    at = der.index(b"Test Middle CA")
    der[at - 2] ^= 0xFF  # the tag of the issuer's CN string
    damaged = x509.load_der_x509_certificate(bytes(der))
    with pytest.raises(SignatureError):
        verify_chain(damaged, [pki.middle.cert, pki.root.cert], at=NOW)


# -- constant-time comparison ---------------------------------------------------------


def test_constant_time_equals() -> None:
    assert constant_time_equals("abc", "abc")
    assert constant_time_equals(b"abc", b"abc")
    assert constant_time_equals("abc", b"abc")
    assert constant_time_equals("签名", "签名".encode())
    assert constant_time_equals("", "")
    assert not constant_time_equals("abc", "abd")
    assert not constant_time_equals("abc", "abcd")
    assert not constant_time_equals(b"abc", "ABC")


def test_constant_time_equals_uses_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert constant_time_equals("x1", b"x1")
    assert calls == [(b"x1", b"x1")]
