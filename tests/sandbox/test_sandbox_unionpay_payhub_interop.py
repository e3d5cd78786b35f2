"""payhub's own UnionPay channel against the sandbox, in-process.

The two are written independently from PROTOCOLS.md; they must agree on the
wire. (The sandbox itself never imports ``payhub.channels``.) Where they
disagree on something PROTOCOLS.md leaves open, the test says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from payhub_sandbox import Sandbox, create_app
from sandbox_support import Shop
from sandbox_unionpay_client import MER_ID, parse_html_form, session_alipay_key, session_pki

from payhub import PayHub, models
from payhub.errors import ChannelError, ErrorCode, SignatureError
from payhub.money import Money

unionpay = pytest.importorskip("payhub.channels.unionpay")
from payhub.channels import run_flow_sync  # noqa: E402 - only once the channel exists

SANDBOX = "http://sandbox.test"
NOTIFY_URL = "http://shop.test/unionpay/notify"
RETURN_URL = "http://shop.test/unionpay/return"


@dataclass
class Live:
    sandbox: Sandbox
    shop: Shop
    hub: PayHub
    http: httpx.Client

    @property
    def channel(self) -> object:
        return self.hub.channel("unionpay")

    def run(self, flow: object) -> object:
        return run_flow_sync(flow, self.http.send)  # type: ignore[arg-type]

    def notify(self, index: int = -1) -> object:
        self.sandbox.deliver_due()
        sent = self.shop.requests[index]
        return self.hub.handle_notification("unionpay", sent.headers, sent.content)


def _hub(
    sandbox: Sandbox, http: httpx.Client, merchant_keys, store: object = None, clock=None
) -> PayHub:
    pfx, _ = sandbox.issue_unionpay_merchant(MER_ID, "000000", key=merchant_keys.private)
    channel = unionpay.UnionPayChannel(
        {
            "mer_id": MER_ID,
            "environment": "test",
            "sign_cert": pfx,
            "sign_cert_password": "000000",
            "root_cert": sandbox.unionpay_root_cert_pem,
            "middle_cert": sandbox.unionpay_middle_cert_pem,
            "gateway_url": SANDBOX,
            "back_url": NOTIFY_URL,
        },
        clock=clock,
    )
    return PayHub(channels=[channel], http_client=http, store=store)  # type: ignore[arg-type]


@pytest.fixture
def live(merchant_keys) -> Iterator[Live]:
    shop = Shop()
    box = Sandbox(  # the real clock: payhub stamps txnTime and checks certificates with it
        alipay_platform_key=session_alipay_key(),
        time_factor=60,
        notify_transport=shop.transport,
        base_url=SANDBOX,
        unionpay_pki=session_pki(),
    )
    http = httpx.Client(transport=httpx.WSGITransport(app=create_app(box)))
    hub = _hub(box, http, merchant_keys)
    yield Live(box, shop, hub, http)
    http.close()
    box.stop()


def _request(order_id: str, method: str = "page", minor: int = 1000) -> models.PaymentRequest:
    return models.PaymentRequest(
        out_trade_no=order_id,
        amount=Money(minor),
        subject="礼品卡 / gift card",
        method=method,
        notify_url=NOTIFY_URL,
        return_url=RETURN_URL,
        channel="unionpay",
    )


def test_front_consume_pay_notify_query_refund(live: Live) -> None:
    result = live.hub.pay(_request("INTEROP0001"))
    action, fields = parse_html_form(result.form_html)
    assert action == f"{SANDBOX}/gateway/api/frontTransReq.do"
    cashier = live.http.post(action, data=fields)  # the buyer's browser submits the form
    assert cashier.status_code == 200
    assert "银联在线支付" in cashier.text
    assert live.hub.query("unionpay", "INTEROP0001").status is models.PaymentStatus.PENDING

    trade = live.sandbox.unionpay_trade(MER_ID, "INTEROP0001")
    paid_page = live.http.post(f"{SANDBOX}/unionpay/cashier/{trade.trade_no}")
    front, returned = parse_html_form(paid_page.text)
    assert front == RETURN_URL
    info = live.hub.verify_return("unionpay", returned)
    assert (info.out_trade_no, info.amount) == ("INTEROP0001", Money(1000))

    outcome = live.notify(0)
    assert outcome.accepted, outcome.error
    assert outcome.ack.status_code == 200
    assert outcome.notification.status is models.PaymentStatus.PAID
    assert outcome.notification.channel_trade_id == trade.trade_no
    (attempt,) = live.sandbox.deliveries
    assert attempt.acknowledged

    paid = live.hub.query("unionpay", "INTEROP0001")
    assert paid.status is models.PaymentStatus.PAID
    assert paid.amount == Money(1000)
    assert paid.channel_trade_id == trade.trade_no

    refund = live.hub.refund(
        "unionpay",
        models.RefundRequest(
            out_trade_no="INTEROP0001", out_refund_no="REFUND0001", amount=Money(400)
        ),
    )
    assert refund.status is models.RefundStatus.PENDING  # 00 = accepted, by ACP's rules
    assert live.sandbox.unionpay_trade(MER_ID, "INTEROP0001").refunded == Money(400)
    noted = live.notify()
    assert noted.accepted, noted.error
    assert noted.notification.refund_amount == Money(400)
    assert noted.notification.out_refund_no == "REFUND0001"
    found = live.hub.refund_query(
        "unionpay",
        models.RefundQueryRequest(out_trade_no="INTEROP0001", out_refund_no="REFUND0001"),
    )
    assert found.status is models.RefundStatus.SUCCEEDED

    with pytest.raises(ChannelError) as too_much:
        live.hub.refund(
            "unionpay",
            models.RefundRequest(
                out_trade_no="INTEROP0001", out_refund_no="REFUND0002", amount=Money(601)
            ),
        )
    assert too_much.value.channel_code == "36"
    # payhub's table reads 36 as INVALID_REQUEST, not REFUND_EXCEEDS_PAID (reported).
    assert too_much.value.code is ErrorCode.INVALID_REQUEST

    with pytest.raises(ChannelError) as missing:
        live.hub.query("unionpay", "NOSUCHORDER1")
    assert missing.value.channel_code == "34"
    assert missing.value.code is ErrorCode.TRADE_NOT_FOUND


def test_app_consume_and_undo(live: Live) -> None:
    result = live.hub.pay(_request("INTEROP0002", "app", 880))
    tn = result.app_params["tn"]
    trade = live.sandbox.unionpay_trade(MER_ID, "INTEROP0002")
    assert trade.extra["tn"] == tn
    live.sandbox.unionpay.pay(MER_ID, "INTEROP0002")
    assert live.notify().accepted
    undo = live.run(
        live.channel.undo(  # type: ignore[attr-defined]
            "INTEROP0002", trade.trade_no, Money(880), out_undo_no="UNDO00001"
        )
    )
    assert undo.status is models.RefundStatus.PENDING  # type: ignore[attr-defined]
    assert live.sandbox.unionpay_trade(MER_ID, "INTEROP0002").close_reason == "undone"
    noted = live.notify()
    assert noted.accepted, noted.error
    assert noted.notification.raw["txnType"] == "31"


@pytest.mark.parametrize(
    "kind", ["other_chain", "expired", "self_signed", "foreign_cn", "wrong_key", "unsigned"]
)
def test_payhub_refuses_a_faulty_platform_signature(live: Live, kind: str) -> None:
    live.hub.pay(_request("INTEROP0003", "app"))
    live.sandbox.unionpay_fault(kind)
    with pytest.raises(SignatureError):
        live.hub.query("unionpay", "INTEROP0003")
    live.sandbox.unionpay.pay(MER_ID, "INTEROP0003")
    outcome = live.notify()
    assert not outcome.accepted
    assert outcome.ack.status_code != 200  # so UnionPay sends it again
    live.sandbox.unionpay_fault(None)
    assert live.hub.query("unionpay", "INTEROP0003").status is models.PaymentStatus.PAID


def test_refund_notification_with_a_store(restartable: Restartable) -> None:
    """UnionPay names a refund by its own orderId; the store finds the payment by origQryId."""
    box, shop, store = restartable.box, restartable.shop, restartable.store
    with restartable.process() as (live, _):
        seen: list[str] = []
        live.hub.subscribe("*", lambda event: seen.append(event.type))
        live.hub.pay(_request("INTEROP0004", "app"))
        box.unionpay.pay(MER_ID, "INTEROP0004")
        assert live.notify().accepted
        live.hub.refund(
            "unionpay",
            models.RefundRequest(
                out_trade_no="INTEROP0004", out_refund_no="REFUND0004", amount=Money(100)
            ),
        )
        outcome = live.notify()
        assert outcome.accepted, outcome.error
        record = store.payment("INTEROP0004")
        assert record is not None
        assert record.refunded == Money(100)
        assert [r.out_refund_no for r in store.refunds("INTEROP0004")] == ["REFUND0004"]
        # The refund's event is delivered right away, though the notification named
        # the refund's own order number.
        assert seen == ["payment.succeeded", "payment.refunded"]
        assert store.events(out_trade_no="INTEROP0004", pending=True) == []
        # The same refund notification again (a resend) is acknowledged and changes nothing.
        sent = shop.requests[-1]
        again = live.hub.handle_notification("unionpay", sent.headers, sent.content)
        assert again.accepted
        assert store.payment("INTEROP0004").refunded == Money(100)


class _LoseBackTrans(httpx.BaseTransport):
    """The shop's link to UnionPay; it can lose the answer to backTransReq.do
    (UnionPay took the refund; payhub sees a read timeout)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.lose = False
        #: respCode of every backTransReq.do answer, lost or not
        self.back_codes: list[str] = []
        #: (orderId, txnTime) of every backTransReq.do request
        self.back_sent: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path.endswith("/backTransReq.do"):
            sent = parse_qs(request.content.decode())
            self.back_sent.append((sent["orderId"][0], sent["txnTime"][0]))
            answer = parse_qs(response.read().decode())
            self.back_codes.append(answer["respCode"][0])
            if self.lose:
                raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


@dataclass
class Restartable:
    """A sandbox and a store that outlive the shop's process (hub, channel, client)."""

    box: Sandbox
    shop: Shop
    store: Any
    merchant_keys: Any

    @contextmanager
    def process(self, *, later: timedelta = timedelta(0)) -> Iterator[tuple[Live, _LoseBackTrans]]:
        """One run of the shop, ``later`` than now: its own hub, channel (no
        remembered txnTime; its clock stamps txnTime) and link."""
        link = _LoseBackTrans(httpx.WSGITransport(app=create_app(self.box)))
        clock = (lambda: datetime.now(UTC) + later) if later else None
        with httpx.Client(transport=link) as http:
            hub = _hub(self.box, http, self.merchant_keys, self.store, clock)
            yield Live(self.box, self.shop, hub, http), link

    def refunded_once(self, out_trade_no: str, amount: Money) -> None:
        from payhub.store import PaymentState

        record = self.store.payment(out_trade_no)
        assert (record.status, record.refunded) == (PaymentState.PARTIALLY_REFUNDED, amount)
        types = [e.type for e in self.store.events(out_trade_no=out_trade_no)]
        assert types.count("payment.refunded") == 1


@pytest.fixture
def restartable(merchant_keys, tmp_path: Path) -> Iterator[Restartable]:
    from payhub.store import Store

    shop = Shop()
    with (
        Sandbox(
            alipay_platform_key=session_alipay_key(),
            notify_transport=shop.transport,
            base_url=SANDBOX,
            unionpay_pki=session_pki(),
        ) as box,
        Store(f"sqlite:///{tmp_path / 'payhub.db'}") as store,
    ):
        store.upgrade()
        yield Restartable(box, shop, store, merchant_keys)


def _paid_then_refund_lost(
    live: Live, link: _LoseBackTrans, out_trade_no: str, request: models.RefundRequest
) -> None:
    from payhub.errors import ChannelTimeout

    live.hub.pay(_request(out_trade_no, "app", minor=1000))
    live.sandbox.unionpay.pay(MER_ID, out_trade_no)
    assert live.notify().accepted
    link.lose = True
    with pytest.raises(ChannelTimeout):
        live.hub.refund(None, request)
    link.lose = False


def test_refund_answer_lost_then_a_restart_sync_finds_it(restartable: Restartable) -> None:
    """ACP finds a refund only by orderId + its own txnTime; payhub keeps the
    txnTime with the refund, so a new process's sync finds it."""
    from payhub.store import RefundState

    request = models.RefundRequest(
        out_trade_no="INTEROP0005", out_refund_no="REFUND0005", amount=Money(300)
    )
    with restartable.process() as (live, link):
        _paid_then_refund_lost(live, link, "INTEROP0005", request)
    stored = restartable.store.refund("REFUND0005")
    assert stored.status is RefundState.PENDING
    assert set(stored.channel_context) == {"txnTime"}
    # A restart ten minutes on: nothing in memory, and "now" is not the refund's txnTime.
    with restartable.process(later=timedelta(minutes=10)) as (live, _):
        report = live.hub.sync_pending(older_than=timedelta(0))
        assert (report.refunds_changed, report.refund_errors) == (
            {"REFUND0005": RefundState.SUCCEEDED},
            {},
        )
        # UnionPay's refund notification then arrives: a duplicate.
        restartable.box.deliver_due()
        outcome = live.hub.handle_notification(
            "unionpay", restartable.shop.requests[-1].headers, restartable.shop.requests[-1].content
        )
        assert outcome.accepted
    restartable.refunded_once("INTEROP0005", Money(300))


def test_refund_retried_after_a_lost_answer_is_not_released(restartable: Restartable) -> None:
    """A retry with the same number resends the same orderId + txnTime; UnionPay
    answers 12 (duplicate). payhub must not take that as a refusal and release
    the refund: it asks UnionPay, which says the refund was made."""
    from payhub.store import RefundState

    request = models.RefundRequest(
        out_trade_no="INTEROP0006", out_refund_no="REFUND0006", amount=Money(300)
    )
    with restartable.process() as (live, link):
        _paid_then_refund_lost(live, link, "INTEROP0006", request)
        assert link.back_codes == ["00"]  # made, but the answer was lost
        first = link.back_sent
    # The retry comes from another process, ten minutes on.
    with restartable.process(later=timedelta(minutes=10)) as (live, link):
        retried = live.hub.refund(None, request)
        assert link.back_sent == first  # the same orderId and txnTime: the same transaction
        assert link.back_codes == ["12"]  # which UnionPay calls a duplicate
        assert retried.status is models.RefundStatus.SUCCEEDED
        assert restartable.store.refund("REFUND0006").status is RefundState.SUCCEEDED
        restartable.box.deliver_due()
        for sent in restartable.shop.requests[1:]:
            assert live.hub.handle_notification("unionpay", sent.headers, sent.content).accepted
    restartable.refunded_once("INTEROP0006", Money(300))
