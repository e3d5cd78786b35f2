"""The end-to-end demo: payhub against a locally running sandbox, over real HTTP.

It starts the sandbox (``payhub-sandbox``) and a tiny shop endpoint on free
loopback ports, then drives a whole payment life through payhub and checks
every step. Exit status 0 means every step behaved; anything else is a failure.

Run: ``./scripts/demo`` (or ``.venv/bin/python examples/demo.py``).
"""

from __future__ import annotations

import base64
import queue
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, Response, request
from payhub_sandbox import Sandbox, create_app
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from payhub import (
    ChannelError,
    ErrorCode,
    Event,
    Money,
    Notification,
    NotificationKind,
    PayHub,
    PaymentRequest,
    PaymentStatus,
    PayMethod,
    RefundRequest,
    RefundStatus,
)
from payhub.ledger import Account, AccountKind, WithdrawalStatus
from payhub.splits import Share, split
from payhub.splits_models import ReceiverBinding, ReceiverKind, SplitReceiver, TransferRequest
from payhub.store import PayoutState, SplitState, Store

SHANGHAI = ZoneInfo("Asia/Shanghai")
APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
MER_ID = "777290058110048"
MCH_ID = "1900000109"
WX_APP_ID = "wxd678efh567hg6787"
WX_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
WAIT_SECONDS = 15.0


class DemoFailure(Exception):
    """A step did not behave."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailure(what)


def step(text: str) -> None:
    print(f"\n== {text}")


def say(text: str) -> None:
    print(f"   {text}")


class _QuietHandler(WSGIRequestHandler):
    """The demo prints its own story; the servers' access lines would drown it."""

    def log(self, type: str, message: str, *args: object) -> None:
        if type == "error":
            super().log(type, message, *args)


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yield its base URL."""
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(5)


class ShopEndpoint:
    """The shop's notification endpoint: hands the raw body to payhub, answers its ack."""

    def __init__(self) -> None:
        self.hub: PayHub | None = None
        self.url = ""
        self.received: queue.Queue[Notification] = queue.Queue()
        self.rejected: list[str] = []
        self.app = Flask("demo-shop")
        self.app.add_url_rule(
            "/notify/<channel>", view_func=self.notify, methods=["POST"]
        )

    def notify(self, channel: str) -> Response:
        assert self.hub is not None
        outcome = self.hub.handle_notification(
            channel, list(request.headers.items()), request.get_data(cache=False)
        )
        if outcome.notification is not None:
            self.received.put(outcome.notification)
        elif outcome.error is not None:
            self.rejected.append(f"{channel}: {outcome.error.code.name}")
        ack = outcome.ack
        return Response(ack.body, status=ack.status_code, content_type=ack.content_type)

    def wait_for(
        self, matches: Callable[[Notification], bool], what: str
    ) -> Notification:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                notification = self.received.get(timeout=0.1)
            except queue.Empty:
                continue
            if matches(notification):
                return notification
        raise DemoFailure(f"no {what} notification within {WAIT_SECONDS:.0f} s")


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> tuple[str, str]:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


_ORDERS: list[str] = []


def order_no(prefix: str) -> str:
    """An order number both Alipay and UnionPay accept (8-40 letters and digits)."""
    number = f"{prefix}{datetime.now(SHANGHAI):%Y%m%d%H%M%S}{secrets.randbelow(10**6):06d}"
    if prefix == "DEMO":
        _ORDERS.append(number)
    return number


def setup_alipay(control: httpx.Client, sandbox_url: str, shop_url: str) -> dict[str, Any]:
    """Register an Alipay app with the sandbox; return its payhub channel configuration."""
    step("Alipay: register the shop's app with the sandbox (control API)")
    app_private, app_public = _pem(_new_key())
    response = control.post(
        "/alipay/merchants",
        json={"app_id": APP_ID, "public_key": app_public, "seller_id": SELLER_ID},
    )
    check(response.status_code == 201, f"merchant registration answered {response.status_code}")
    alipay_public = control.get("/alipay/platform-key").text
    say(f"app {APP_ID}, seller {SELLER_ID}; the sandbox's Alipay public key fetched")
    return {
        "type": "alipay",
        "app_id": APP_ID,
        "app_private_key": app_private,
        "alipay_public_key": alipay_public,
        "environment": "sandbox",
        "gateway": f"{sandbox_url}/gateway.do",
        "bill_download_hosts": [sandbox_url],
        "seller_id": SELLER_ID,
        "notify_url": f"{shop_url}/notify/alipay",
    }


def setup_unionpay(
    control: httpx.Client, sandbox_url: str, shop_url: str, workdir: Path
) -> dict[str, Any]:
    """Have the sandbox issue a UnionPay signing certificate (PKCS#12) for the shop."""
    step("UnionPay: the sandbox issues the shop's signing certificate (PKCS#12)")
    password = secrets.token_urlsafe(12)
    response = control.post("/unionpay/merchants", json={"mer_id": MER_ID, "password": password})
    check(response.status_code == 201, f"certificate issuance answered {response.status_code}")
    issued = response.json()
    pfx = workdir / "unionpay-merchant.pfx"
    pfx.write_bytes(base64.b64decode(issued["pfx"]))
    pfx.chmod(0o600)
    say(f"merId {MER_ID}, certId {issued['cert_id']}; .pfx written to {pfx.name}")
    return {
        "type": "unionpay",
        "mer_id": MER_ID,
        "environment": "test",
        "sign_cert": {"$file": str(pfx)},
        "sign_cert_password": password,
        "root_cert": issued["root_cert"],
        "middle_cert": issued["middle_cert"],
        "gateway_url": sandbox_url,
        "back_url": f"{shop_url}/notify/unionpay",
        "front_url": f"{shop_url}/return/unionpay",
    }


def setup_wechat(control: httpx.Client, sandbox_url: str, shop_url: str) -> dict[str, Any]:
    """Register a WeChat Pay merchant (public-key mode) with the sandbox."""
    step("WeChat Pay: register the merchant's API key and APIv3 key with the sandbox")
    private, public = _pem(_new_key())
    api_v3_key = secrets.token_hex(16)  # 32 ASCII characters, as WeChat issues them
    response = control.post(
        "/wechat/merchants",
        json={
            "mch_id": MCH_ID,
            "app_id": WX_APP_ID,
            "merchant_serial_no": WX_SERIAL,
            "merchant_public_key": public,
            "api_v3_key": api_v3_key,
            "key_mode": "public_key",
        },
    )
    check(response.status_code == 201, f"merchant registration answered {response.status_code}")
    platform = control.get("/wechat/public-key").json()
    say(f"mchid {MCH_ID}; WeChat Pay public key {platform['public_key_id']} fetched")
    return {
        "type": "wechat",
        "mch_id": MCH_ID,
        "app_id": WX_APP_ID,
        "merchant_private_key": private,
        "merchant_serial_no": WX_SERIAL,
        "api_v3_key": api_v3_key,
        "wechatpay_public_key": platform["public_key"],
        "wechatpay_public_key_id": platform["public_key_id"],
        "environment": "sandbox",
        "base_url": sandbox_url,
        "notify_url": f"{shop_url}/notify/wechat",
        "refund_notify_url": f"{shop_url}/notify/wechat",
    }


def wechat_story(hub: PayHub, control: httpx.Client, shop: ShopEndpoint) -> None:
    step("WeChat Pay: a native (QR) payment, /v3/pay/transactions/native")
    order = order_no("DEMO")
    result = hub.pay(
        PaymentRequest(
            out_trade_no=order,
            amount=Money(1800, "CNY"),
            subject="Licence key, 1 year",
            method=PayMethod.QR,
            channel="wechat",
        )
    )
    check(bool(result.qr_code), "no code_url returned")
    say(f"{order}: code_url {result.qr_code}")

    step("WeChat Pay: the buyer pays; the notification is verified and decrypted")
    response = control.post(f"/wechat/trades/{order}/pay", json={"mch_id": MCH_ID})
    check(response.status_code == 200, f"buyer payment answered {response.status_code}")
    note = shop.wait_for(
        lambda n: n.out_trade_no == order and n.kind is NotificationKind.PAYMENT, "payment"
    )
    check(note.amount == Money(1800, "CNY"), f"notified amount {note.amount}")
    say(f"verified (RSA signature, AES-256-GCM resource): {note.amount}, "
        f"transaction {note.channel_trade_id}")
    status = hub.query("wechat", order)
    check(status.status is PaymentStatus.PAID, f"query says {status.status}")
    say(f"query by out_trade_no: {status.status.value}")

    step("WeChat Pay: refund part (/v3/refund/domestic/refunds)")
    refund_no = order_no("RFND")
    hub.refund(
        "wechat",
        RefundRequest(
            out_trade_no=order,
            out_refund_no=refund_no,
            amount=Money(800, "CNY"),
            total=Money(1800, "CNY"),
        ),
    )
    refund_note = shop.wait_for(
        lambda n: n.out_refund_no == refund_no and n.kind is NotificationKind.REFUND, "refund"
    )
    check(refund_note.refund_amount == Money(800, "CNY"), "refund notification amount")
    say(f"REFUND.SUCCESS verified: {refund_note.refund_amount}")


def alipay_story(hub: PayHub, control: httpx.Client, shop: ShopEndpoint) -> None:
    step("Alipay: create a QR payment (alipay.trade.precreate)")
    paid_no = order_no("DEMO")
    result = hub.pay(
        PaymentRequest(
            out_trade_no=paid_no,
            amount=Money.parse("30.00", "CNY"),
            subject="Steam 礼品卡 30 元",
            method=PayMethod.QR,
        )
    )
    check(bool(result.qr_code), "no QR content returned")
    say(f"{paid_no}: show this QR code to the buyer: {result.qr_code}")

    step("Alipay: the buyer scans and pays (sandbox control API)")
    response = control.post(f"/alipay/trades/{paid_no}/pay", json={"app_id": APP_ID})
    check(response.status_code == 200, f"buyer payment answered {response.status_code}")
    say(f"sandbox trade status: {response.json().get('trade_status')}")

    step("Alipay: the asynchronous notification arrives and is verified")
    note = shop.wait_for(
        lambda n: n.out_trade_no == paid_no and n.kind is NotificationKind.PAYMENT,
        "payment",
    )
    check(note.amount == Money(3000, "CNY"), f"notified amount {note.amount}")
    check(note.status is PaymentStatus.PAID, f"notified status {note.status}")
    say(f"verified: {note.kind.value} {note.amount} trade {note.channel_trade_id}")
    say(f"event key {note.event_key}; the shop acked 'success'")

    step("Alipay: query the payment (alipay.trade.query)")
    status = hub.query("alipay", paid_no)
    check(status.status is PaymentStatus.PAID, f"query says {status.status}")
    check(status.amount == Money(3000, "CNY"), f"query amount {status.amount}")
    say(f"{paid_no}: {status.status.value}, {status.amount}")

    step("Alipay: refund part of it (alipay.trade.refund)")
    refund = hub.refund(
        "alipay",
        RefundRequest(
            out_trade_no=paid_no,
            out_refund_no=f"{paid_no}R1",
            amount=Money.parse("10.00", "CNY"),
            reason="card key already used",
        ),
    )
    check(refund.status is RefundStatus.SUCCEEDED, f"refund status {refund.status}")
    check(
        refund.refunded_total == Money(1000, "CNY"),
        f"refunded total {refund.refunded_total}",
    )
    say(f"refunded {refund.amount}; total refunded so far {refund.refunded_total}")
    refund_note = shop.wait_for(
        lambda n: n.out_trade_no == paid_no and n.kind is NotificationKind.REFUND,
        "refund",
    )
    check(refund_note.refunded_total == Money(1000, "CNY"), "refund notification total")
    say(f"refund notification verified: refunded so far {refund_note.refunded_total}")

    step("Alipay: close another, unpaid payment (alipay.trade.close)")
    unpaid_no = order_no("DEMO")
    hub.pay(
        PaymentRequest(
            out_trade_no=unpaid_no,
            amount=Money.parse("50.00", "CNY"),
            subject="Licence key",
            method=PayMethod.QR,
        )
    )
    hub.close_trade("alipay", unpaid_no)
    stored = hub.store.payment(unpaid_no) if hub.store is not None else None
    check(stored is not None and stored.status.value == "closed", f"stored as {stored}")
    try:  # Alipay never opened a trade for a QR code nobody scanned
        hub.query("alipay", unpaid_no)
        check(False, "Alipay knows a QR code nobody scanned")
    except ChannelError as exc:
        check(exc.code is ErrorCode.TRADE_NOT_FOUND, f"query of an unscanned code: {exc.code}")
    say(f"{unpaid_no}: closed; Alipay never opened it (nobody scanned the code)")

    step("Alipay: download and parse today's bill")
    records = hub.download_bill("alipay", datetime.now(SHANGHAI).date())
    mine = [r for r in records if r.out_trade_no == paid_no]
    kinds = sorted(r.kind.value for r in mine)
    check(kinds == ["payment", "refund"], f"bill lines for {paid_no}: {kinds}")
    total = sum((r.amount for r in mine), Money.zero("CNY"))
    check(total == Money(2000, "CNY"), f"bill net {total}")
    for record in mine:
        say(f"{record.kind.value:8} {record.amount}  trade {record.channel_trade_id}")
    say(f"{len(records)} bill lines in all; net for {paid_no}: {total}")


LEDGER = {
    "default_plan": "T+1",
    "plans": {"fast-cards": "instant", "split-seller": "instant"},
    "instant_fee_rate": "0.003",
    "seller_fees": {"default": {"type": "percentage", "rate": "0.01"}},
    "withdrawal": {"minimum": 100, "fee": {"type": "fixed", "amount": 100}},
    # T+1 counts Chinese working days; a year chinesecalendar does not know yet
    # falls back to Monday-Friday (a warning is logged) rather than stopping the demo
    "calendar": {"beyond": "weekends"},
}


def platform_story(hub: PayHub, control: httpx.Client, shop: ShopEndpoint) -> None:
    step("Platform: two sellers on Alipay, balances in the ledger")
    ledger = hub.ledger
    orders = {}
    for seller, amount in (("alice-cards", "30.00"), ("fast-cards", "20.00")):
        number = order_no("SELL")
        hub.pay(
            PaymentRequest(
                out_trade_no=number,
                amount=Money.parse(amount, "CNY"),
                subject=f"{seller} gift card",
                method=PayMethod.QR,
                seller=seller,
            )
        )
        response = control.post(f"/alipay/trades/{number}/pay", json={"app_id": APP_ID})
        check(response.status_code == 200, f"buyer payment answered {response.status_code}")
        shop.wait_for(
            lambda n, number=number: n.out_trade_no == number
            and n.kind is NotificationKind.PAYMENT,
            "payment",
        )
        orders[seller] = number

    def show(seller: str) -> dict[str, Money]:
        found = {
            b.account.kind.value: b.balance for b in ledger.balances(seller) if b.balance.minor
        }
        say(f"{seller}: " + ", ".join(f"{k} {v}" for k, v in sorted(found.items())))
        return found

    alice = show("alice-cards")
    check(alice == {"pending": Money(2970, "CNY")}, f"alice after paying: {alice}")
    fast = show("fast-cards")  # 秒到: available at once, 1 % + 0.3 % instant fee
    check(fast == {"available": Money(1974, "CNY")}, f"fast-cards after paying: {fast}")

    step("Platform: refund 10.00 of alice's payment (its fee share comes back)")
    hub.refund(
        "alipay",
        RefundRequest(
            out_trade_no=orders["alice-cards"],
            out_refund_no=f"{orders['alice-cards']}R",
            amount=Money.parse("10.00", "CNY"),
        ),
    )
    alice = show("alice-cards")
    check(alice == {"pending": Money(1980, "CNY")}, f"alice after the refund: {alice}")

    step("Platform: the clock moves on; the T+1 settlement run makes alice's batch")
    later = datetime.now(SHANGHAI) + timedelta(days=6)
    report = ledger.settle(at=later)
    for batch in (ledger.batch(i) for i in report.batch_ids):
        say(f"batch {batch.id}: {batch.party} {batch.amount} from {len(batch.members)} entries")
    parties = sorted(ledger.batch(i).party for i in report.batch_ids)
    check(parties == ["alice-cards", "shop"], f"batches for {parties}")
    check(ledger.settle(at=later).batches == 0, "a second run made batches")
    alice = show("alice-cards")
    check(alice == {"available": Money(1980, "CNY")}, f"alice after settling: {alice}")

    step("Platform: fast-cards withdraws 15.00 (fee 1.00), then it is paid out")
    withdrawal = ledger.withdraw("fast-cards", Money.parse("15.00", "CNY"))
    ledger.mark_withdrawal_paid(withdrawal.id, "bank transfer 0001")
    fast = show("fast-cards")
    check(fast == {"available": Money(474, "CNY")}, f"fast-cards after withdrawing: {fast}")
    revenue = ledger.balance(Account("platform", AccountKind.REVENUE, "CNY"))
    say(f"platform fee revenue: {revenue}")
    # 1 % of each payment less what its refund returned (the shop's own 30.00 less
    # 10.00 refunded, alice's the same), fast-cards' 0.3 % instant fee, the withdrawal fee
    check(revenue == Money(20 + 20 + 20 + 6 + 100, "CNY"), f"revenue {revenue}")
    check(sum(ledger.totals().values()) == 0, "the ledger does not balance")


PLATFORM_MCH = "1900000110"  # the platform's own WeChat Pay merchant, a split receiver
SELLER_OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


def _until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.1)
    raise DemoFailure(f"{what} within {WAIT_SECONDS:.0f} s")


def split_story(hub: PayHub, control: httpx.Client, shop: ShopEndpoint) -> None:
    step("分账: a WeChat payment made for splitting (settle_info.profit_sharing)")
    ledger = hub.ledger
    store = hub.store
    assert store is not None
    order = order_no("SPLT")
    hub.pay(
        PaymentRequest(
            out_trade_no=order,
            amount=Money.parse("100.00", "CNY"),
            subject="Marketplace order",
            method=PayMethod.QR,
            channel="wechat",
            seller="split-seller",
            split=True,
        )
    )
    response = control.post(f"/wechat/trades/{order}/pay", json={"mch_id": MCH_ID})
    check(response.status_code == 200, f"buyer payment answered {response.status_code}")
    shop.wait_for(
        lambda n: n.out_trade_no == order and n.kind is NotificationKind.PAYMENT, "payment"
    )
    seller = Account("split-seller", AccountKind.AVAILABLE, "CNY")
    say(f"{order} paid; split-seller available {ledger.balance(seller)} (秒到, fees taken)")

    step("分账: bind the platform as a receiver, split 20 % to it, the rest stays")
    binding = ReceiverBinding(
        kind=ReceiverKind.MERCHANT,
        account=PLATFORM_MCH,
        name="示例平台",
        relation_type="SERVICE_PROVIDER",
    )
    hub.bind_receivers("wechat", "BIND1", [binding])
    plan = split(
        Money.parse("100.00", "CNY"),
        [Share.ratio("platform", Decimal("0.2")), Share.remainder("split-seller")],
    )
    receivers = {
        "platform": SplitReceiver(kind=ReceiverKind.MERCHANT, account=PLATFORM_MCH, name="示例平台")
    }
    record = hub.split(order, f"{order}S", plan, receivers)
    if record.status is SplitState.PROCESSING:
        _until(lambda: hub.sync_split(record.out_split_no).status.final, "the split settled")
        record = hub.sync_split(record.out_split_no)
    check(record.status is SplitState.SUCCEEDED, f"split {record.status.value}")
    again = hub.split(order, f"{order}S", plan, receivers)
    check(again.status is SplitState.SUCCEEDED, "the repeated split is not the stored one")
    paid_out = ledger.balance(Account("platform", AccountKind.PAID_OUT, "CNY"))
    left = ledger.balance(seller)
    say(f"split {record.out_split_no}: {record.amount} to the platform (order "
        f"{record.channel_split_id}); split-seller available {left}")
    check(left == Money(7870, "CNY"), f"seller after the split: {left}")
    check(paid_out.minor >= 2000, f"platform paid_out {paid_out}")

    step("Payout: split-seller withdraws 50.00 (fee 1.00); WeChat merchant transfer to its openid")
    control.put(
        "/splits/balance", json={"channel": "wechat", "merchant_id": MCH_ID, "amount": 10**7}
    )
    withdrawal = ledger.withdraw("split-seller", Money.parse("50.00", "CNY"))
    number = f"{order}P"
    payout = hub.payout(
        "wechat",
        withdrawal.id,
        TransferRequest(
            out_transfer_no=number,
            kind=ReceiverKind.OPENID,
            account=SELLER_OPENID,
            amount=withdrawal.amount - withdrawal.fee,
            remark="提现",
            scene_id="1005",
            scene_report=(("岗位类型", "商户"), ("报酬说明", "货款提现")),
            notify_url=f"{shop.url}/notify/wechat",
        ),
    )
    say(f"payout {number}: {payout.status.value}; package_info for the user's confirm page")
    response = control.post(f"/splits/wechat/transfers/{number}/confirm", json={"mch_id": MCH_ID})
    check(response.status_code == 200, f"the user's confirmation answered {response.status_code}")

    def paid() -> bool:
        found = store.payout(number)
        return found is not None and found.status.final

    _until(paid, "the transfer notification (MCHTRANSFER.BILL.FINISHED) applied")
    final = store.payout(number)
    assert final is not None
    check(final.status is PayoutState.SUCCEEDED, f"payout {final.status.value}")
    [w] = list(ledger.withdrawals(party="split-seller"))
    check(w.status is WithdrawalStatus.PAID, f"withdrawal {w.status.value}")
    say(f"the notification marked withdrawal {w.id} paid: {w.note}")
    check(sum(ledger.totals().values()) == 0, "the ledger does not balance")


class _FormFields(HTMLParser):
    """The action and hidden fields of an auto-submitting form, as a browser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form" and not self.action:
            self.action = found.get("action") or ""
        elif tag == "input" and found.get("name"):
            self.fields[str(found["name"])] = found.get("value") or ""


def unionpay_story(hub: PayHub, control: httpx.Client, shop: ShopEndpoint) -> None:
    step("UnionPay: a browser consume (frontTransReq.do form)")
    order = order_no("DEMO")
    result = hub.pay(
        PaymentRequest(
            out_trade_no=order,
            amount=Money.parse("100.00", "CNY"),
            subject="Game top-up 100",
            method=PayMethod.PAGE,
            channel="unionpay",
        )
    )
    check(bool(result.form_html), "no form returned")
    form = _FormFields()
    form.feed(result.form_html or "")
    say(f"{order}: the auto-submitting form posts {len(form.fields)} signed fields")
    cashier = httpx.post(form.action, data=form.fields, timeout=10)
    check(cashier.status_code == 200, f"the cashier page answered {cashier.status_code}")
    say("the buyer's browser reached the UnionPay cashier page")

    step("UnionPay: the buyer pays; the signed back notification is verified")
    response = control.post(f"/unionpay/trades/{order}/pay", json={"mer_id": MER_ID})
    check(response.status_code == 200, f"buyer payment answered {response.status_code}")
    note = shop.wait_for(
        lambda n: n.out_trade_no == order and n.kind is NotificationKind.PAYMENT, "payment"
    )
    check(note.amount == Money(10000, "CNY"), f"notified amount {note.amount}")
    say(f"verified (certificate chain, CN, signature): {note.amount}, queryId "
        f"{note.channel_trade_id}")
    status = hub.query("unionpay", order)
    check(status.status is PaymentStatus.PAID, f"query says {status.status}")
    say(f"queryTrans.do: {status.status.value}")

    step("UnionPay: refund part (backTransReq.do, txnType 04)")
    refund_no = order_no("RFND")
    hub.refund(
        "unionpay",
        RefundRequest(out_trade_no=order, out_refund_no=refund_no, amount=Money(2500, "CNY")),
    )
    refund_note = shop.wait_for(
        lambda n: n.out_refund_no == refund_no and n.kind is NotificationKind.REFUND, "refund"
    )
    check(refund_note.refund_amount == Money(2500, "CNY"), "refund notification amount")
    say(f"refund notification verified: {refund_note.refund_amount}")


class EventLog:
    """The shop's side of the outbox: deliver goods once per payment.succeeded event id."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}
        self.delivered: list[str] = []

    def __call__(self, event: Event) -> None:
        first = event.id not in self.seen
        self.seen[event.id] = event.type
        if event.type == "payment.succeeded" and first and event.out_trade_no:
            # A real shop sends the card key here; it is never printed or logged.
            self.delivered.append(event.out_trade_no)
            say(f"event {event.type} ({event.id[:12]}...): card key sent to the buyer")
        elif first:
            say(f"event {event.type} ({event.id[:12]}...)")


def main() -> int:
    print("payhub end-to-end demo against the local sandbox")
    shop = ShopEndpoint()
    events = EventLog()
    sandbox = Sandbox(time_factor=600, bills_ready_immediately=True)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="payhub-demo-") as tmp,
            serve(create_app(sandbox)) as sandbox_url,
            serve(shop.app) as shop_url,
            httpx.Client(base_url=f"{sandbox_url}/_control", timeout=10) as control,
        ):
            workdir = Path(tmp)
            sandbox.base_url = sandbox_url
            sandbox.start_delivery_thread()
            shop.url = shop_url
            say(f"sandbox at {sandbox_url}, shop endpoint at {shop_url}")
            channels = {
                "alipay": setup_alipay(control, sandbox_url, shop_url),
                "unionpay": setup_unionpay(control, sandbox_url, shop_url, workdir),
                "wechat": setup_wechat(control, sandbox_url, shop_url),
            }
            step("payhub: one hub, every channel, the embedded SQLite store")
            store = Store(f"sqlite:///{workdir / 'payhub.sqlite3'}", ledger=LEDGER)
            store.upgrade()
            say(f"store {store.url} at revision {store.current_revision()}")
            with PayHub.from_config({"channels": channels}, store=store) as hub:
                hub.subscribe("*", events)
                shop.hub = hub
                alipay_story(hub, control, shop)
                platform_story(hub, control, shop)
                unionpay_story(hub, control, shop)
                wechat_story(hub, control, shop)
                split_story(hub, control, shop)
                step("Exactly once: what the store and the outbox say")
                for record in store_payments(store):
                    say(f"{record.out_trade_no}: {record.status.value}, refunded {record.refunded}")
                    for ev in store.events(out_trade_no=record.out_trade_no):
                        say(f"  outbox {ev.type} {ev.id[:12]}... delivered {ev.attempts}x")
                check(not store.events(pending=True), "outbox events left undelivered")
                paid = sorted(set(events.delivered))
                check(len(paid) == len(events.delivered), "goods delivered twice for a payment")
                check(len(paid) == 6, f"goods delivered for {len(paid)} payments, expected 6")
            store.close()
            check(not shop.rejected, f"notifications rejected: {shop.rejected}")
    except DemoFailure as exc:
        print(f"\nDEMO FAILED: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # any payhub error is a demo failure too, shown by type
        print(f"\nDEMO FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        sandbox.stop()
    print("\nAll steps behaved.")
    return 0


def store_payments(store: Store) -> list[Any]:
    """Every payment the demo made, as the store records them."""
    return [store.payment(no) for no in sorted(_ORDERS) if store.payment(no) is not None]


if __name__ == "__main__":
    sys.exit(main())

