"""The UnionPay sandbox's messages diffed against messages UnionPay's test environment sent.

The samples (tests/fixtures/unionpay/, sources in SOURCES.md) are checked first:
each must verify against UnionPay's real test chain and signing certificate,
and its ``accNo`` must decrypt with the real merchant key it was encrypted for.
Then the sandbox, driven through the same scenario, must answer with the same
fields, laid out the same way, with ``accNo`` encrypted the same way.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from sandbox_unionpay_client import (
    FRONT_URL,
    Env,
    Trust,
    parse_body,
    parse_form,
    unionpay_env,
    verify_message,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "unionpay"
RAW = json.loads((FIXTURES / "test_env_raw_answers_20240105.json").read_text("utf-8"))
QUERY_2022 = json.loads((FIXTURES / "test_env_query_response_20220911.json").read_text("utf-8"))
RETURN_2022 = json.loads((FIXTURES / "test_env_return_20220908.json").read_text("utf-8"))
TRAILING = ["signPubKeyCert", "signature"]
#: The masked card number inside ``accNo``, as the real ones decrypt.
MASKED_CARD = r"[0-9]{4}\*+[0-9]{4}"


def _pem(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((FIXTURES / name).read_bytes())


REAL_TRUST = Trust(_pem("acp_test_root.cer"), _pem("acp_test_middle.cer"))
REAL_MERCHANT_KEY = pkcs12.load_key_and_certificates(
    (FIXTURES / "unipayAppCert.pfx").read_bytes(), b"000000"
)[0]


def layout(keys: list[str]) -> list[str]:
    """UnionPay's layout: every field sorted by name, then signPubKeyCert and signature."""
    return sorted(k for k in keys if k not in TRAILING) + [k for k in TRAILING if k in keys]


def decrypt_card(acc_no: str, key: object) -> str:
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.decrypt(base64.b64decode(acc_no), padding.PKCS1v15()).decode("ascii")


@pytest.fixture
def env(merchant_keys) -> Env:
    with unionpay_env(merchant_keys.private) as made:
        yield made


# -- the samples are genuine -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(k for k in RAW if not k.startswith("_")))
def test_raw_answers_verify_against_unionpays_test_chain(name: str) -> None:
    answer = parse_body(RAW[name])
    cert = verify_message(answer, REAL_TRUST, datetime(2024, 1, 5, 9, tzinfo=UTC))
    assert cert == _pem("unipayCertPublicKey.cer")
    assert list(answer) == layout(list(answer))  # the layout the sandbox copies


@pytest.mark.parametrize(
    "sample", [QUERY_2022, RETURN_2022, parse_body(RAW["queryTrans.do (consume, paid)"])]
)
def test_real_acc_no_is_the_masked_card_encrypted_for_the_merchants_signing_key(
    sample: dict[str, str],
) -> None:
    assert re.fullmatch(MASKED_CARD, decrypt_card(sample["accNo"], REAL_MERCHANT_KEY))


# -- the sandbox answers alike -----------------------------------------------------------


def _paid_consume(env: Env, order_id: str, **extra: str) -> dict[str, str]:
    made = env.client.app_consume(order_id, "1", **extra)
    env.sandbox.unionpay.pay(env.client.mer_id, order_id)
    return made


def test_query_answer_of_a_paid_consume(env: Env) -> None:
    made = _paid_consume(env, "QUERYREAL01")
    body = env.client.post(
        "queryTrans.do",
        env.client.sign(
            env.client.base("00", "00", "000000", "QUERYREAL01") | {"txnTime": made["txnTime"]}
        ),
    ).content.decode("utf-8")
    ours = parse_body(body)
    theirs = parse_body(RAW["queryTrans.do (consume, paid)"])
    assert list(ours) == layout(list(ours))
    assert set(ours) == set(theirs)
    for name in ("bizType", "respMsg", "origRespMsg", "issuerIdentifyMode", "signMethod"):
        assert ours[name] == theirs[name], name
    assert re.fullmatch(MASKED_CARD, decrypt_card(ours["accNo"], env.client.key))
    assert len(ours["accNo"]) == len(theirs["accNo"])


@pytest.mark.parametrize(
    ("txn_type", "name"),
    [
        ("04", "backTransReq.do (04 refund, bizType 000000)"),
        ("31", "backTransReq.do (31 undo, bizType 000000)"),
    ],
)
def test_refund_and_undo_with_biz_type_000000(env: Env, txn_type: str, name: str) -> None:
    """What widely used clients send (yansongda/pay) and UnionPay's test gateway
    accepted: bizType 000000 on backTransReq.do."""
    _paid_consume(env, "BACKREAL01")
    query_id = env.sandbox.unionpay.trade(env.client.mer_id, "BACKREAL01").trade_no
    ours = env.client.back(txn_type, "BACKREAL02", query_id, "1", bizType="000000")
    theirs = parse_body(RAW[name])
    assert ours["respCode"] == theirs["respCode"] == "00"
    assert ours["respMsg"] == theirs["respMsg"]
    assert ours["bizType"] == "000000"
    assert set(ours) == set(theirs)
    assert list(ours) == layout(list(ours))


def test_notification_and_front_return_of_a_paid_consume(env: Env) -> None:
    made = env.client.call(
        "appTransReq.do",
        env.client.consume_fields("NOTIFYREAL1", "1", channelType="08", frontUrl=FRONT_URL),
    )
    assert made["respCode"] == "00"
    trade = env.sandbox.unionpay.pay(env.client.mer_id, "NOTIFYREAL1")
    env.sandbox.deliver_due()
    raw = env.shop.requests[-1].content
    notified = parse_form(raw)
    names = [part.split(b"=", 1)[0].decode() for part in raw.split(b"&")]
    assert names == layout(names)
    found = env.sandbox.unionpay.engine.front_return(trade)
    assert found is not None
    returned = found[1]
    theirs = set(RETURN_2022)
    for ours in (notified, returned):
        assert set(ours) == theirs, set(ours) ^ theirs
        assert ours["exchangeRate"] == RETURN_2022["exchangeRate"]
        assert re.fullmatch(MASKED_CARD, decrypt_card(ours["accNo"], env.client.key))
        verify_message(ours, env.client.trust, env.clock.now())
    assert returned["respMsg"] == RETURN_2022["respMsg"] == "success"
    assert notified["respMsg"] == "Success!"  # the back notification's wording
