"""UnionPay against the real files UnionPay published (see fixtures/unionpay/SOURCES.md).

The test environment's root, middle and platform signing certificates are all
``sha1WithRSAEncryption``; the production root and middle too. Two real signed
messages from the test environment (captured in yansongda/pay's test suite)
must verify, and any change to them must not.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from payhub import Money, NotificationKind, PayHub, PaymentStatus, SignatureError
from payhub.channels.unionpay import UnionPayChannel
from payhub.channels.unionpay._crypto import CHAIN_ALGORITHMS
from payhub.signing import load_certificate, load_pkcs12, verify_chain

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "unionpay"
#: The moment the real return was made (2022-09-08 13:22:06 in Shanghai).
WHEN = datetime(2022, 9, 8, 5, 22, 6, tzinfo=UTC)
TEST_MER_ID = "777290058167151"
HEADERS = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
SHA1_RSA = x509.SignatureAlgorithmOID.RSA_WITH_SHA1


def cert(name: str) -> x509.Certificate:
    return load_certificate((FIXTURES / name).read_bytes())


def message(name: str) -> dict[str, str]:
    fields: dict[str, str] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return fields


def real_channel(environment: str = "test", *, when: datetime = WHEN) -> UnionPayChannel:
    return UnionPayChannel(
        {
            "mer_id": TEST_MER_ID,
            "environment": environment,
            "sign_cert": (FIXTURES / "acp_test_sign.pfx").read_bytes(),
            "sign_cert_password": "000000",
            "root_cert": (FIXTURES / "acp_test_root.cer").read_bytes(),
            "middle_cert": (FIXTURES / "acp_test_middle.cer").read_bytes(),
            "back_url": "https://shop.example/notify/unionpay",
        },
        clock=lambda: when,
    )


# -- the chains ---------------------------------------------------------------------


def test_every_real_unionpay_chain_certificate_is_sha1_with_rsa() -> None:
    """The finding behind CHAIN_ALGORITHMS: test and production, root to leaf."""
    for name in ("acp_test_root.cer", "acp_test_middle.cer", "unipayCertPublicKey.cer",
                 "verify_test.cer", "acp_test_enc.cer", "acp_prod_root.cer",
                 "acp_prod_middle.cer"):
        real = cert(name)
        assert real.signature_algorithm_oid == SHA1_RSA, name
        assert isinstance(real.public_key(), rsa.RSAPublicKey), name
    assert SHA1_RSA in CHAIN_ALGORITHMS


def test_real_test_chain_verifies_link_by_link() -> None:
    root, middle = cert("acp_test_root.cer"), cert("acp_test_middle.cer")
    platform = cert("unipayCertPublicKey.cer")
    verify_chain(platform, [middle, root], at=WHEN, algorithms=CHAIN_ALGORITHMS)
    verify_chain(middle, [root], at=WHEN, algorithms=CHAIN_ALGORITHMS)
    old = cert("verify_test.cer")  # the 00040000:SIGN certificate of 2017-2020
    verify_chain(old, [middle, root], at=datetime(2019, 1, 1, tzinfo=UTC),
                 algorithms=CHAIN_ALGORITHMS)
    enc = cert("acp_test_enc.cer")  # 00040000:SIGN too, 2015-2017
    verify_chain(enc, [middle, root], at=datetime(2016, 6, 1, tzinfo=UTC),
                 algorithms=CHAIN_ALGORITHMS)
    _, merchant, _ = load_pkcs12((FIXTURES / "acp_test_sign.pfx").read_bytes(), b"000000")
    assert merchant.signature_algorithm_oid == SHA1_RSA
    verify_chain(merchant, [middle, root], at=datetime(2017, 1, 1, tzinfo=UTC),
                 algorithms=CHAIN_ALGORITHMS)


def test_real_production_anchors_chain() -> None:
    root, middle = cert("acp_prod_root.cer"), cert("acp_prod_middle.cer")
    verify_chain(middle, [root], at=WHEN, algorithms=CHAIN_ALGORITHMS)


def test_sha1_links_are_refused_unless_asked_for() -> None:
    """SHA-1 stays out of the default set: only UnionPay's chain check admits it."""
    root, middle = cert("acp_test_root.cer"), cert("acp_test_middle.cer")
    with pytest.raises(SignatureError, match="not accepted"):
        verify_chain(cert("unipayCertPublicKey.cer"), [middle, root], at=WHEN)


@pytest.mark.parametrize(
    "case", ["expired leaf", "wrong issuer", "self-signed leaf", "unknown algorithm",
             "reversed chain"]
)
def test_real_chain_refusals(case: str) -> None:
    root, middle = cert("acp_test_root.cer"), cert("acp_test_middle.cer")
    leaf, chain, at = cert("unipayCertPublicKey.cer"), [middle, root], WHEN
    algorithms: Any = CHAIN_ALGORITHMS
    if case == "expired leaf":
        at = datetime(2025, 7, 31, 1, 19, 17, tzinfo=UTC)  # a second after notAfter
    elif case == "wrong issuer":
        chain = [cert("acp_prod_middle.cer"), cert("acp_prod_root.cer")]
    elif case == "self-signed leaf":
        leaf, chain = root, [root]
    elif case == "unknown algorithm":
        algorithms = {x509.SignatureAlgorithmOID.RSA_WITH_SHA256}
    elif case == "reversed chain":
        chain = [root, middle]
    with pytest.raises(SignatureError):
        verify_chain(leaf, chain, at=at, algorithms=algorithms)


# -- a channel built from the real files ----------------------------------------------


def test_channel_is_built_from_the_real_test_certificates() -> None:
    channel = real_channel()
    # certId: the decimal serial of acp_test_sign.pfx, as UnionPay's SDK logs it.
    assert channel.cert_id == "68759663125"


def test_real_signed_test_environment_message_verifies() -> None:
    """A real consume result UnionPay's test environment signed in 2022 with the
    certificate whose CN is 041@8310000000083040@中国银联股份有限公司@00016495."""
    fields = message("test_env_return_20220908.json")
    assert "\r\n" in fields["signPubKeyCert"]  # as UnionPay sends it
    channel = real_channel()
    notification = channel.parse_notification(
        httpx.Headers(HEADERS), urlencode(fields).encode("ascii")
    )
    assert (notification.kind, notification.status) == (
        NotificationKind.PAYMENT,
        PaymentStatus.PAID,
    )
    assert notification.amount == Money(1, "CNY")
    assert notification.out_trade_no == "yansongda20220908132206"
    assert notification.channel_trade_id == "782209081322060674028"
    assert notification.merchant_id == TEST_MER_ID
    # And through the hub: a success ack.
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(599)))
    with client, PayHub(channels=[real_channel()], http_client=client) as hub:
        outcome = hub.handle_notification("unionpay", HEADERS, urlencode(fields).encode())
    assert outcome.accepted, outcome.error


def test_real_signed_query_answer_verifies() -> None:
    fields = message("test_env_query_response_20220911.json")
    real_channel(when=datetime(2022, 9, 11, tzinfo=UTC)).verifier.verify(fields)


@pytest.mark.parametrize(
    "change",
    ["txnAmt", "orderId", "add empty field", "drop a field", "signPubKeyCert LF only"],
)
def test_any_change_to_a_real_message_breaks_it(change: str) -> None:
    fields = message("test_env_return_20220908.json")
    if change == "txnAmt":
        fields["txnAmt"] = "100"
    elif change == "orderId":
        fields["orderId"] = "yansongda20220908132207"
    elif change == "add empty field":
        fields["reqReserved"] = ""  # verification keeps empty fields, as UnionPay's SDKs
    elif change == "drop a field":
        del fields["traceNo"]
    elif change == "signPubKeyCert LF only":
        fields["signPubKeyCert"] = fields["signPubKeyCert"].replace("\r\n", "\n")
    with pytest.raises(SignatureError, match="does not verify"):
        real_channel().verifier.verify(fields)


def test_real_message_in_production_mode_needs_production_anchors() -> None:
    """Production trusts only the production root: the test chain does not reach it."""
    fields = message("test_env_return_20220908.json")
    channel = UnionPayChannel(
        {
            "mer_id": "898111448161234",
            "environment": "production",
            "sign_cert": (FIXTURES / "acp_test_sign.pfx").read_bytes(),
            "sign_cert_password": "000000",
            "root_cert": (FIXTURES / "acp_prod_root.cer").read_bytes(),
            "middle_cert": (FIXTURES / "acp_prod_middle.cer").read_bytes(),
        },
        clock=lambda: WHEN,
    )
    with pytest.raises(SignatureError, match="not issued by the configured chain"):
        channel.verifier.verify(fields)


def test_real_platform_certificate_outside_its_validity_is_refused() -> None:
    fields = message("test_env_return_20220908.json")
    later = real_channel(when=datetime(2025, 8, 1, tzinfo=UTC))
    with pytest.raises(SignatureError, match="validity"):
        later.verifier.verify(fields)
    earlier = real_channel(when=datetime(2020, 7, 31, tzinfo=UTC) - timedelta(days=1))
    with pytest.raises(SignatureError, match="validity"):
        earlier.verifier.verify(fields)
