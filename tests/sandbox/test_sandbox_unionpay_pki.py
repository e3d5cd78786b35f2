"""The sandbox's UnionPay PKI: the chain, the CN, merchant certificates as PKCS#12, faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from payhub_sandbox import (
    UNIONPAY_FAULT_KINDS,
    InvalidInputError,
    UnionPayPKI,
    UnknownMerchantError,
)
from sandbox_support import START
from sandbox_unionpay_client import (
    MER_ID,
    OTHER_MER_ID,
    Env,
    Trust,
    VerifyError,
    _issued_by,
    cn_third_field,
    session_alipay_key,
    session_pki,
    trust_of,
    unionpay_env,
    verify_message,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "unionpay"

@pytest.fixture
def env(merchant_keys) -> Iterator[Env]:
    with unionpay_env(merchant_keys.private) as made:
        yield made


def test_the_chain_is_sound_and_the_platform_cert_is_made_like_the_real_one() -> None:
    """The platform certificate looks like UnionPay's test environment's (the real
    unipayCertPublicKey.cer): subject, CN, extensions, serial size, sha1WithRSA links."""
    real = x509.load_pem_x509_certificate((FIXTURES / "unipayCertPublicKey.cer").read_bytes())
    real_middle = x509.load_pem_x509_certificate((FIXTURES / "acp_test_middle.cer").read_bytes())
    pki = session_pki()
    trust = trust_of(pki)
    sign = x509.load_pem_x509_certificate(pki.sign_cert_pem.encode())
    assert trust.root.subject == trust.root.issuer
    assert _issued_by(trust.root, trust.root)
    assert _issued_by(trust.middle, trust.root)
    assert _issued_by(sign, trust.middle)
    assert not _issued_by(sign, trust.root)
    for ca, real_ca in ((trust.root, real_middle), (trust.middle, real_middle)):
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert {e.oid for e in ca.extensions if e.critical} == set()
        assert (
            ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
            == real_ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
        )
    assert sign.subject == real.subject
    (cn,) = sign.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cn.value == "041@8310000000083040@中国银联股份有限公司@00016495"
    assert cn_third_field(sign) == "中国银联股份有限公司"
    assert len(str(sign.serial_number)) == len(str(real.serial_number)) == 11
    ours = {e.oid: e.value for e in sign.extensions}
    theirs = {e.oid: e.value for e in real.extensions}
    assert set(ours) <= set(theirs)  # the real one adds CRL points and CFCA's policy
    for oid in (x509.ExtensionOID.KEY_USAGE, x509.ExtensionOID.EXTENDED_KEY_USAGE):
        assert ours[oid] == theirs[oid]
    assert {e.oid for e in sign.extensions if e.critical} == set()
    for cert in (trust.root, trust.middle, sign):
        assert cert.not_valid_before_utc <= START <= cert.not_valid_after_utc
        assert isinstance(cert.public_key(), rsa.RSAPublicKey)
        assert cert.signature_algorithm_oid == real.signature_algorithm_oid  # sha1WithRSA
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA1)


def test_the_sandbox_exposes_root_and_middle(env: Env) -> None:
    pki = session_pki()
    assert env.sandbox.unionpay_root_cert_pem == pki.root_cert_pem
    assert env.sandbox.unionpay_middle_cert_pem == pki.middle_cert_pem
    certs = env.http.get("/_control/unionpay/certs").json()
    assert certs["root_cert"] == pki.root_cert_pem
    assert certs["middle_cert"] == pki.middle_cert_pem
    assert certs["sign_cert"] == pki.sign_cert_pem
    assert certs["fault"] is None


def test_a_sandbox_without_a_pki_makes_one_and_keeps_it() -> None:
    from payhub_sandbox import ManualClock, Sandbox

    with Sandbox(alipay_platform_key=session_alipay_key(), clock=ManualClock(START)) as box:
        root = box.unionpay_root_cert_pem
        assert box.unionpay_root_cert_pem == root  # kept for the sandbox's lifetime
        middle = x509.load_pem_x509_certificate(box.unionpay_middle_cert_pem.encode())
        assert _issued_by(middle, x509.load_pem_x509_certificate(root.encode()))


def test_issued_pfx_loads_with_its_password_and_is_registered(env: Env, merchant_keys) -> None:
    key, cert, extra = pkcs12.load_key_and_certificates(env.pfx, b"000000")
    assert isinstance(key, rsa.RSAPrivateKey)
    assert cert is not None
    assert key.public_key().public_numbers() == merchant_keys.public.public_numbers()
    assert extra == []
    assert _issued_by(cert, trust_of(session_pki()).middle)
    cert_id = str(cert.serial_number)
    assert cert_id.isdigit()
    assert len(cert_id) == 11
    merchant = env.sandbox.unionpay_merchant(MER_ID)
    assert merchant.cert_ids == [cert_id]
    with pytest.raises(ValueError, match="Invalid password"):
        pkcs12.load_key_and_certificates(env.pfx, b"wrong")


def test_a_fresh_key_is_made_when_none_is_given(env: Env) -> None:
    pfx, cert = env.sandbox.issue_unionpay_merchant(OTHER_MER_ID, "p@ss word")
    key, loaded, _ = pkcs12.load_key_and_certificates(pfx, b"p@ss word")
    assert loaded == cert
    assert isinstance(key, rsa.RSAPrivateKey)
    assert env.sandbox.unionpay_merchant(OTHER_MER_ID).cert_ids == [str(cert.serial_number)]
    assert {m.mer_id for m in env.sandbox.unionpay_merchants} == {MER_ID, OTHER_MER_ID}


def test_a_merchant_may_bring_its_own_certificate(env: Env, other_keys) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "my own")])
    own = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(other_keys.public)
        .serial_number(123456789)
        .not_valid_before(START.replace(year=2020))
        .not_valid_after(START.replace(year=2030))
        .sign(other_keys.private, hashes.SHA256())
    )
    pem = own.public_bytes(serialization.Encoding.PEM).decode()
    merchant = env.sandbox.add_unionpay_merchant(MER_ID, pem)
    assert set(merchant.cert_ids) == {env.client.cert_id, "123456789"}  # both verify now
    env.client.key, env.client.cert_id = other_keys.private, "123456789"
    answer = env.client.app_consume("OWNCERT01")
    assert answer["respCode"] == "00"


def test_bad_registrations_are_refused(env: Env) -> None:
    with pytest.raises(InvalidInputError):
        env.sandbox.add_unionpay_merchant(MER_ID, "not a certificate")
    with pytest.raises(InvalidInputError):
        env.sandbox.issue_unionpay_merchant("bad id!", "000000")
    with pytest.raises(UnknownMerchantError):
        env.sandbox.unionpay_merchant("999999999999999")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    pki = session_pki()
    written = pki.save(tmp_path / "pki")
    assert {p.name for p in written} == {
        "unionpay-root.pem",
        "unionpay-middle.pem",
        "unionpay-middle-key.pem",
        "unionpay-sign.pem",
        "unionpay-sign-key.pem",
    }
    assert (tmp_path / "pki" / "unionpay-sign-key.pem").stat().st_mode & 0o777 == 0o600
    again = UnionPayPKI.load(tmp_path / "pki")
    assert again.root_cert_pem == pki.root_cert_pem
    assert again.sign_cert_pem == pki.sign_cert_pem
    with pytest.raises(FileExistsError):
        pki.save(tmp_path / "pki")
    with pytest.raises(InvalidInputError):
        UnionPayPKI.load(tmp_path / "nowhere")


def _platform_answer(env: Env, order_id: str) -> dict[str, str]:
    """An app consume's answer, parsed but not verified."""
    from sandbox_unionpay_client import parse_body

    fields = env.client.sign(env.client.consume_fields(order_id, channelType="08"))
    return parse_body(env.client.post("appTransReq.do", fields).content.decode())


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("other_chain", "not in the chain"),
        ("self_signed", "not in the chain"),
        ("expired", "outside validity"),
        ("foreign_cn", "CN"),
        ("wrong_key", "signature"),
        ("unsigned", "no signature"),
    ],
)
def test_faults_make_a_correct_client_refuse(env: Env, kind: str, reason: str) -> None:
    assert kind in UNIONPAY_FAULT_KINDS
    env.sandbox.unionpay_fault(kind)
    answer = _platform_answer(env, "FAULTY001")
    assert answer["respCode"] == "00"  # the trade happened; only the signing is wrong
    with pytest.raises(VerifyError, match=reason):
        verify_message(answer, env.client.trust, env.clock.now())
    env.sandbox.unionpay_fault(None)
    assert env.client.app_consume("FAULTY002")["respCode"] == "00"


def test_a_production_client_refuses_the_sandbox_by_its_chain_not_its_cn(env: Env) -> None:
    """UnionPay's test environment signs with the production CN's third field
    (中国银联股份有限公司): what tells a test message from a production one is the root
    it chains to, so a client configured with the production root refuses it."""
    answer = _platform_answer(env, "PRODCLIENT1")
    production = Trust(
        x509.load_pem_x509_certificate((FIXTURES / "acp_prod_root.cer").read_bytes()),
        x509.load_pem_x509_certificate((FIXTURES / "acp_prod_middle.cer").read_bytes()),
        "中国银联股份有限公司",
    )
    with pytest.raises(VerifyError, match="not in the chain"):
        verify_message(answer, production, env.clock.now())
    # the same CN check a test-mode client makes passes
    verify_message(answer, env.client.trust, env.clock.now())


def test_unknown_fault_kind(env: Env) -> None:
    with pytest.raises(InvalidInputError):
        env.sandbox.unionpay_fault("sloppy")
    response = env.http.post("/_control/unionpay/fault", json={"kind": "sloppy"})
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_INPUT"
    response = env.http.post("/_control/unionpay/fault", json={"kind": "expired"})
    assert response.json() == {"fault": "expired"}
    assert env.http.get("/_control/unionpay/certs").json()["fault"] == "expired"
    assert env.http.post("/_control/unionpay/fault", json={"kind": None}).json() == {"fault": None}


def test_the_unionpay_part_never_imports_payhub_channels_or_client() -> None:
    """It builds the wire format itself: a misreading in a channel must not be mirrored."""
    import ast

    import payhub_sandbox

    modules = sorted((Path(payhub_sandbox.__file__).parent / "unionpay").glob("*.py"))
    assert len(modules) >= 5
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                forbidden = ("payhub.channels", "payhub.client", "payhub.hub")
                assert not name.startswith(forbidden), (path, name)
