"""Certificate mode against Alipay's real published files (see fixtures/alipay/SOURCES.md).

The serial numbers expected here are the ones Alipay's own Node SDK, yansongda/pay
and go-pay assert for the same files.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from test_alipay_config import _ca_name, _cert, _name, _pem
from test_alipay_fake import APP_ID

from payhub.channels.alipay import AlipayConfig
from payhub.errors import ConfigurationError
from payhub.signing import alipay_cert_sn, alipay_root_cert_sn, load_certificates, verify_chain
from payhub.signing._keys import certificate_signature_oid

FIXTURES = Path(__file__).parent / "fixtures" / "alipay"
ROOT_SN = "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6"
SM2_WITH_SM3 = "1.2.156.10197.1.501"
ECDSA_WITH_SHA384 = "1.2.840.10045.4.3.3"
SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
SHA1_WITH_RSA = "1.2.840.113549.1.1.5"


def _read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _blocks(data: bytes) -> list[bytes]:
    return re.findall(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", data, re.S)


def _der(block: bytes) -> bytes:
    body = block.split(b"-----")[2]
    return base64.b64decode(b"".join(body.split()))


def _as_pem(der: bytes) -> bytes:
    lines = [base64.b64encode(der)[i : i + 64] for i in range(0, len(base64.b64encode(der)), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


# -- the root bundle -------------------------------------------------------------------


def test_real_root_bundle_gives_the_root_sn_sdks_assert() -> None:
    assert alipay_root_cert_sn(_read("alipayRootCert.crt")) == ROOT_SN
    assert alipay_root_cert_sn(_read("alipayRootCert.crt").decode("ascii")) == ROOT_SN


def test_real_root_bundle_with_crlf_line_ends() -> None:
    # alipay-sdk-nodejs ships the same bundle with CRLF line ends.
    crlf = _read("alipayRootCert.crt").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert alipay_root_cert_sn(crlf) == ROOT_SN


def test_signature_algorithms_are_read_without_a_full_parse() -> None:
    blocks = _blocks(_read("alipayRootCert.crt"))
    oids = [certificate_signature_oid(_der(block)) for block in blocks]
    assert oids == [SM2_WITH_SM3, SHA256_WITH_RSA, ECDSA_WITH_SHA384, SHA1_WITH_RSA]


def test_the_ecdsa_block_is_skipped_unparsed_with_a_debug_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="payhub.signing"):
        certs = load_certificates(_read("alipayRootCert.crt"), rsa_only=True)
    assert [c.subject.rfc4514_string() for c in certs] == [
        "CN=Ant Financial Certification Authority R1,OU=Certification Authority,"
        "O=Ant Financial,C=CN",
        "CN=iTrusChina Class 2 Root CA - G3,OU=China Trust Network,O=iTrusChina,C=CN",
    ]
    skipped = [r.getMessage() for r in caplog.records if r.name == "payhub.signing"]
    assert len(skipped) == 2
    assert "certificate 1" in skipped[0]
    assert SM2_WITH_SM3 in skipped[0]
    assert "certificate 3" in skipped[1]
    assert ECDSA_WITH_SHA384 in skipped[1]


def test_an_unreadable_rsa_block_is_refused_not_skipped() -> None:
    blocks = _blocks(_read("alipayRootCert.crt"))
    der = bytearray(_der(blocks[1]))  # the RSA root "Ant Financial … R1"
    serial_tag = der.index(b"\x02\x08", 4)  # tbsCertificate.serialNumber INTEGER, 8 bytes
    der[serial_tag] = 0x04  # an OCTET STRING where the serial must be
    assert certificate_signature_oid(bytes(der)) == SHA256_WITH_RSA
    bundle = blocks[0] + b"\n" + _as_pem(bytes(der)) + b"\n" + blocks[2]
    with pytest.raises(ConfigurationError, match=r"certificate 2: not a readable X\.509"):
        load_certificates(bundle, rsa_only=True)


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30",
        b"\x30\x84\xff\xff\xff\xff",  # a length far beyond the data
        b"\x30\x89" + b"\x01" * 9,  # a nine-byte length
        b"\x30\x03\x30\x01\x00",  # no signatureAlgorithm after the tbs
        b"\x30\x08\x30\x00\x30\x04\x06\x02\x2a\x86",  # an OID cut inside an arc
        b"\x04\x02\x30\x00",  # not a SEQUENCE
    ],
)
def test_the_der_walk_is_bounded_and_refuses_odd_shapes(der: bytes) -> None:
    assert certificate_signature_oid(der) is None


def test_a_bundle_of_only_non_rsa_certificates_has_no_root_sn() -> None:
    blocks = _blocks(_read("alipayRootCert.crt"))
    assert load_certificates(blocks[0] + b"\n" + blocks[2], rsa_only=True) == []
    assert alipay_root_cert_sn(blocks[0] + b"\n" + blocks[2]) == ""


# -- serials and chains of the other real files ------------------------------------------


@pytest.mark.parametrize(
    ("name", "sn"),
    [
        ("node_appCertPublicKey_2021001161683774.crt", "866efef280dec9137a87d047ac446315"),
        ("node_alipayCertPublicKey_RSA2.crt", "7513daaaa48aa3ba2e4018d84402479c"),
        ("yansongda_alipayAppPublicCert.crt", "e90dd23a37c5c7b616e003970817ff82"),
    ],
)
def test_cert_sn_of_real_certificates(name: str, sn: str) -> None:
    assert alipay_cert_sn(load_certificates(_read(name))[0]) == sn


def _real_roots() -> dict[str, x509.Certificate]:
    return {
        c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value: c  # type: ignore[misc]
        for c in load_certificates(_read("alipayRootCert.crt"), rsa_only=True)
    }


def test_real_alipay_cert_chains_to_the_real_root() -> None:
    leaf, class2 = load_certificates(_read("gopay_alipayCertPublicKey_RSA2.crt"))
    root = _real_roots()["Ant Financial Certification Authority R1"]
    verify_chain(leaf, [class2, root], at=datetime(2020, 6, 1, tzinfo=UTC))
    # Alipay's Node SDK's certificate (leaf only) comes from the same class 2 CA.
    (node_leaf,) = load_certificates(_read("node_alipayCertPublicKey_RSA2.crt"))
    verify_chain(node_leaf, [class2, root], at=datetime(2021, 6, 1, tzinfo=UTC))


def _real_settings(alipay_cert: bytes) -> dict[str, Any]:
    return {
        "app_id": "2021001161683774",
        "app_private_key": _read("node_app_private_key_pkcs8.txt").decode("ascii"),
        "app_cert": _read("node_appCertPublicKey_2021001161683774.crt").decode("ascii"),
        "alipay_cert": alipay_cert.decode("ascii"),
        "alipay_root_cert": _read("alipayRootCert.crt").decode("ascii"),
    }


def test_real_files_reach_the_validity_check() -> None:
    # Every file parses and the chain is found; the published certificates expired in 2021.
    settings = _real_settings(_read("gopay_alipayCertPublicKey_RSA2.crt"))
    with pytest.raises(ConfigurationError, match=r"alipay_cert: .*validity"):
        AlipayConfig.model_validate(settings)


def test_a_leaf_only_alipay_cert_names_its_missing_ca() -> None:
    settings = _real_settings(_read("node_alipayCertPublicKey_RSA2.crt"))
    with pytest.raises(ConfigurationError, match=r"no certificate .* issued .*Class 2 R1"):
        AlipayConfig.model_validate(settings)


def test_sandbox_certificates_do_not_chain_to_the_production_root() -> None:
    _leaf, class2_test = load_certificates(_read("yansongda_alipayPublicCert.crt"))
    roots = _real_roots()
    assert class2_test.issuer.rfc4514_string().startswith(
        "CN=Ant Financial Certification Authority R1 test"
    )
    assert all(root.subject != class2_test.issuer for root in roots.values())


def test_certificate_mode_loads_with_the_real_root_bundle(merchant_keys: Any) -> None:
    # The real bundle (SM2, RSA, unparseable ECDSA, RSA) followed by a root of ours
    # that issued the test's Alipay certificate: the whole bundle loads.
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = _ca_name("payhub test root")
    root = _cert(root_name, root_name, root_key.public_key(), root_key, 7)
    class2_name = _ca_name("payhub test class 2")
    class2_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    class2 = _cert(class2_name, root_name, class2_key.public_key(), root_key, 8)
    alipay_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _cert(
        _name((x509.NameOID.COMMON_NAME, "alipay")), class2_name, alipay_key.public_key(),
        class2_key, 9,
    )
    app = _cert(
        _name((x509.NameOID.COMMON_NAME, APP_ID)), class2_name, merchant_keys.public,
        class2_key, 10,
    )
    loaded = AlipayConfig.model_validate(
        {
            "app_id": APP_ID,
            "app_private_key": merchant_keys.private_pem,
            "app_cert": _pem(app),
            "alipay_cert": _pem(leaf) + _pem(class2),
            "alipay_root_cert": _read("alipayRootCert.crt").decode("ascii") + _pem(root),
        }
    )
    ours = hashlib.md5(
        (root_name.rfc4514_string() + "7").encode(), usedforsecurity=False
    ).hexdigest()
    assert loaded.alipay_root_cert_sn == f"{ROOT_SN}_{ours}"
    assert loaded.alipay_cert_sn == alipay_cert_sn(leaf)
    assert loaded._verify_key.public_numbers() == alipay_key.public_key().public_numbers()
