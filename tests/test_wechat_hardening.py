"""Issue 11 for WeChat Pay: bad signed input is refused for good, and nothing is stored.

Every notification here is correctly signed and encrypted: only its content is
wrong. Each goes through a hub with a SQLite store and must end in a typed,
non-retryable error, a failure ack, and a store exactly as it was (no inbox
row, no anomaly, no event, the payment untouched). Also: WeChat's amount limit
(in answers and bills too), its order-number rule, and duplicate JSON keys.
The environment (point 16) is in test_wechat_config.py, real bills (point 20)
in test_wechat_bill.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_wechat_support import (
    PUB_KEY_ID,
    Clock,
    FakeWechat,
    notification_body,
    refund_resource,
    signed_headers,
    transaction_resource,
    world,
)

from payhub import (
    AmountError,
    InvalidRequestError,
    Money,
    NotificationRejected,
    PayHub,
    PaymentRequest,
    PayMethod,
    ProtocolError,
)
from payhub.channels.wechat import WechatPayChannel
from payhub.models import RefundQueryRequest
from payhub.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "wechat"
ORDER = "A100001"
LIMIT = 2**31 - 1


@dataclass
class Shop:
    channel: WechatPayChannel
    fake: FakeWechat
    hub: PayHub
    store: Store

    def deliver(self, body: bytes) -> Any:
        headers = signed_headers(
            self.fake.signer_key, self.fake.signer_serial, body, clock=self.fake.clock
        )
        return self.hub.handle_notification("wechat", headers, body)

    def snapshot(self) -> Any:
        payment = self.store.payment(ORDER)
        assert payment is not None
        return (
            payment.model_dump(),
            self.store.inbox(),
            self.store.anomalies(),
            [e.model_dump() for e in self.store.events()],
        )


@pytest.fixture
def shop(tmp_path: Path, merchant_keys: Any, platform_keys: Any) -> Iterator[Shop]:
    channel, fake = world("public_key", merchant_keys.private, platform_keys.private, Clock())
    with Store(f"sqlite:///{tmp_path / 'payhub.db'}") as store:
        store.upgrade()
        hub = PayHub(
            channels=[channel], http_client=httpx.Client(transport=fake.transport()), store=store
        )
        hub.pay(
            PaymentRequest(
                out_trade_no=ORDER, amount=Money(100), subject="Tea", method=PayMethod.QR
            )
        )
        yield Shop(channel, fake, hub, store)
        hub.close()


def refused(shop: Shop, body: bytes, error: type[Exception], match: str = "") -> Exception:
    """Deliver through the hub: a typed, non-retryable refusal, a failure ack, nothing stored."""
    before = shop.snapshot()
    outcome = shop.deliver(body)
    assert not outcome.accepted
    assert outcome.notification is None
    assert isinstance(outcome.error, error), repr(outcome.error)
    assert outcome.error.retryable is False
    assert match in outcome.error.message
    assert outcome.ack.ok is False
    assert outcome.ack.status_code == 500
    assert json.loads(outcome.ack.body)["code"] == "FAIL"
    assert shop.snapshot() == before
    return outcome.error


def payment_body(**amount: Any) -> bytes:
    resource = transaction_resource(out_trade_no=ORDER)
    resource["amount"].update(amount)
    return notification_body(resource)


def refund_body(**amount: Any) -> bytes:
    resource = refund_resource(out_trade_no=ORDER)
    resource["amount"].update(amount)
    return notification_body(resource, event_type="REFUND.SUCCESS")


def test_the_good_notification_is_accepted(shop: Shop) -> None:
    """The control: the same hub and store take a well-formed notification."""
    outcome = shop.deliver(payment_body())
    assert outcome.accepted
    assert len(shop.store.inbox()) == 1


# -- 6: zero ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount", [{"total": 0}, {"total": 0, "payer_total": 0}], ids=["total", "both"]
)
def test_a_payment_of_zero_is_refused(shop: Shop, amount: dict[str, int]) -> None:
    refused(shop, payment_body(**amount), AmountError, "total")


def test_a_refund_of_zero_is_refused(shop: Shop) -> None:
    refused(shop, refund_body(refund=0, payer_refund=0), AmountError, "refund")


def test_payer_total_above_total_is_refused(shop: Shop) -> None:
    refused(shop, payment_body(payer_total=101), AmountError, "payer_total")


# -- 7: WeChat's limit --------------------------------------------------------------


def test_the_limit_is_wechats_32_bit_total(shop: Shop) -> None:
    assert shop.channel.max_amount_minor() == LIMIT


@pytest.mark.parametrize(
    "value", [2**63, 2**64 + 5, LIMIT + 1], ids=["2**63", "2**64+5", "limit+1"]
)
@pytest.mark.parametrize("field", ["total", "payer_total"])
def test_payment_amounts_above_the_limit_are_refused(shop: Shop, field: str, value: int) -> None:
    """2**63 used to raise OverflowError out of the hub on SQLite."""
    amount = {"total": value, "payer_total": value} if field == "total" else {field: value}
    refused(shop, payment_body(**amount), AmountError, "limit")


@pytest.mark.parametrize("value", [2**63, LIMIT + 1])
def test_refund_amounts_above_the_limit_are_refused(shop: Shop, value: int) -> None:
    refused(shop, refund_body(refund=value, payer_refund=value), AmountError, "limit")


def test_the_limit_itself_parses(shop: Shop) -> None:
    body = payment_body(total=LIMIT, payer_total=LIMIT)
    headers = signed_headers(shop.fake.signer_key, PUB_KEY_ID, body, clock=shop.fake.clock)
    assert shop.channel.parse_notification(httpx.Headers(headers), body).amount == Money(LIMIT)


def test_requests_above_the_limit_are_not_eligible_nor_sent(shop: Shop) -> None:
    big = PaymentRequest(
        out_trade_no="A100002", amount=Money(LIMIT + 1), subject="Tea", method=PayMethod.QR
    )
    assert "limit" in (shop.channel.request_problem(big) or "")
    sent = len(shop.fake.requests)
    with pytest.raises(AmountError):
        next(shop.channel.pay(big))
    assert len(shop.fake.requests) == sent


def test_answers_above_the_limit_are_refused(shop: Shop) -> None:
    shop.fake.routes["GET", f"/v3/pay/transactions/out-trade-no/{ORDER}"] = lambda _: (
        shop.fake.signed(200, transaction_resource(out_trade_no=ORDER, amount={"total": 2**63}))
    )
    with pytest.raises(AmountError):
        shop.hub.query("wechat", ORDER)


def test_bill_amounts_above_the_limit_are_refused(shop: Shop) -> None:
    text = (FIXTURES / "tradebill_all_wxjava.csv").read_text("utf-8")
    shop.fake.bill = text.replace("`6.00,", "`21474836.48,").encode()
    with pytest.raises(ProtocolError, match="limit") as caught:
        shop.hub.download_bill("wechat", date(2019, 7, 25))
    assert caught.value.retryable is False


# -- 10: identifiers ------------------------------------------------------------------

BAD_IDS = {
    "NUL": "A100\x001",
    "control": "A100\x1b01",
    "newline": "A100001\n",
    "space": "A100001 ",
    "leading space": " A100001",
    "non-ASCII": "A100001é",
    "33 chars": "A" * 33,
    "100,000 chars": "A" * 100_000,
}


@pytest.mark.parametrize("value", BAD_IDS.values(), ids=BAD_IDS.keys())
@pytest.mark.parametrize("field", ["out_trade_no", "transaction_id"])
def test_malformed_payment_identifiers_are_refused(shop: Shop, field: str, value: str) -> None:
    resource = transaction_resource(out_trade_no=ORDER)
    resource[field] = value
    error = refused(shop, notification_body(resource), ProtocolError, field)
    assert len(error.message) < 200  # a 100,000-character value is not echoed


REFUND_IDS = [
    *(pytest.param(f, v, id=f"{f}-{k}") for f in ("out_refund_no", "refund_id")
      for k, v in BAD_IDS.items() if k != "33 chars"),
    pytest.param("out_refund_no", "R" * 65, id="out_refund_no-65 chars"),
    pytest.param("refund_id", "5" * 33, id="refund_id-33 chars"),
]


@pytest.mark.parametrize(("field", "value"), REFUND_IDS)
def test_malformed_refund_identifiers_are_refused(shop: Shop, field: str, value: str) -> None:
    resource = refund_resource(out_trade_no=ORDER)
    resource[field] = value
    body = notification_body(resource, event_type="REFUND.SUCCESS")
    refused(shop, body, ProtocolError, field)


@pytest.mark.parametrize("value", ["EV-\x00", "EV 1", "E" * 37, "E" * 100_000])
def test_a_malformed_notification_id_is_refused(shop: Shop, value: str) -> None:
    envelope = json.loads(payment_body())
    envelope["id"] = value
    refused(shop, json.dumps(envelope).encode(), ProtocolError, "id")


@pytest.mark.parametrize(("field", "said"), [("mchid", "merchant id"), ("appid", "app id")])
@pytest.mark.parametrize("value", ["1900000109\x00", "A" * 100_000])
def test_a_malformed_merchant_or_app_id_is_refused(
    shop: Shop, field: str, said: str, value: str
) -> None:
    """Only the configured ids (held to WeChat's grammar) pass: anything else is not ours."""
    resource = transaction_resource(out_trade_no=ORDER)
    resource[field] = value
    error = refused(shop, notification_body(resource), NotificationRejected, said)
    assert len(error.message) < 200


def test_malformed_identifiers_in_answers_are_refused(shop: Shop) -> None:
    shop.fake.routes["GET", f"/v3/pay/transactions/out-trade-no/{ORDER}"] = lambda _: (
        shop.fake.signed(200, transaction_resource(out_trade_no=ORDER, transaction_id="42\x00"))
    )
    with pytest.raises(ProtocolError, match="transaction_id") as caught:
        shop.hub.query("wechat", ORDER)
    assert caught.value.retryable is False
    answer = shop.fake.refund_answer(ORDER, "R100001", 40, 100, "SUCCESS")
    answer["refund_id"] = "5" * 100_000
    shop.fake.routes["GET", "/v3/refund/domestic/refunds/R100001"] = lambda _: (
        shop.fake.signed(200, answer)
    )
    request = RefundQueryRequest(out_trade_no=ORDER, out_refund_no="R100001")
    with pytest.raises(ProtocolError, match="refund_id") as caught:
        shop.hub.refund_query("wechat", request)
    assert caught.value.retryable is False


# -- 13: duplicate JSON keys ----------------------------------------------------------


def test_a_repeated_key_in_the_envelope_is_refused(shop: Shop) -> None:
    good = payment_body().decode()
    # "id" twice: the last would have won, naming another notification.
    body = good.replace('"id": "EV-', '"id": "EV-FORGED", "id": "EV-', 1).encode()
    assert body != good.encode()
    refused(shop, body, ProtocolError, "repeats a key")


@pytest.mark.parametrize(
    "plaintext",
    [
        '"out_trade_no": "A100001", "out_trade_no": "A100009"',
        '"amount": {"total": 100, "total": 1, "currency": "CNY"}',
    ],
    ids=["out_trade_no", "amount.total"],
)
def test_a_repeated_key_in_the_decrypted_resource_is_refused(shop: Shop, plaintext: str) -> None:
    resource = transaction_resource(out_trade_no=ORDER)
    text = json.dumps(resource)
    key = plaintext.split(":", 1)[0]
    start = text.index(key)
    end = text.index("}", start) + 1 if key == '"amount"' else text.index(",", start)
    forged = (text[:start] + plaintext + text[end:]).encode()
    body = notification_body(forged)
    refused(shop, body, ProtocolError, "repeats a key")


# -- 23: WeChat's order-number rule -------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("A10001", None),
        ("A" * 32, None),
        ("2024_03-01|a*b", None),
        ("A1001", "6-32"),
        ("A" * 33, "6-32"),
        ("ORDER.001", "letters"),
        ("ORDER 001", "letters"),
        ("订单000001", "letters"),
    ],
)
def test_order_number_rule(shop: Shop, number: str, problem: str | None) -> None:
    got = shop.channel.order_number_problem(number)
    if problem is None:
        assert got is None
    else:
        assert got is not None
        assert problem in got


def test_a_short_order_number_is_not_sent(shop: Shop) -> None:
    request = PaymentRequest(
        out_trade_no="A1001", amount=Money(1), subject="Tea", method=PayMethod.QR
    )
    assert shop.channel.request_problem(request) is not None
    with pytest.raises(InvalidRequestError, match="6-32"):
        next(shop.channel.pay(request))
