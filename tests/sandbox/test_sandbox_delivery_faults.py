"""Delivery faults: delay, duplicates, reorder, drop, replay, tamper; scope; control API."""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
import pytest
from payhub_sandbox import (
    DeliveryStatus,
    FormTamperer,
    HeaderSignatureTamperer,
    InvalidInputError,
    ManualClock,
    OutboundNotification,
    Sandbox,
    create_app,
    event_type_of,
)
from sandbox_alipay_client import AlipayWireClient, notification_verifies
from sandbox_support import APP_ID, BASE_URL, SELLER_ID, START, Shop, new_trade

from payhub.money import Money

MINUTE = 60 / 60  # one minute of Alipay time at time factor 60


def _paid(alipay: AlipayWireClient, sandbox: Sandbox, out_trade_no: str = "T1") -> str:
    trade_no = new_trade(alipay, out_trade_no, "100.00")
    sandbox.alipay.pay(APP_ID, out_trade_no)
    return trade_no


# -- delay --------------------------------------------------------------------------


def test_fixed_delay_moves_the_first_attempt(alipay, sandbox: Sandbox, shop: Shop, clock) -> None:
    fault = sandbox.add_delivery_fault(out_trade_no="T1", delay=30)
    _paid(alipay, sandbox)
    (note,) = sandbox.notifications
    assert note.fault_id == fault.id
    assert note.next_at == START + timedelta(seconds=30)
    assert sandbox.deliver_due() == []
    clock.advance(29.9)
    assert sandbox.deliver_due() == []
    clock.advance(0.1)
    (attempt,) = sandbox.deliver_due()
    assert attempt.acknowledged
    assert attempt.effects == ("delayed",)
    assert attempt.fault_id == fault.id
    assert len(shop.requests) == 1


def test_random_delay_is_drawn_from_the_seeded_rng(platform_keys, merchant_keys) -> None:
    def delays(seed: int) -> list[float]:
        box = Sandbox(
            alipay_platform_key=platform_keys.private,
            clock=ManualClock(START),
            time_factor=60,
            notify_transport=Shop().transport,
        )
        box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
        box.add_delivery_fault(merchant_id=APP_ID, delay=(1.0, 5.0), seed=seed)
        http = httpx.Client(transport=httpx.WSGITransport(app=create_app(box)), base_url=BASE_URL)
        client = AlipayWireClient(
            http, app_id=APP_ID, private_key=merchant_keys.private, now=box.clock.now
        )
        for n in range(4):
            new_trade(client, f"D{n}", "1.00")
            box.alipay.pay(APP_ID, f"D{n}")
        http.close()
        box.stop()
        return [(n.next_at - START).total_seconds() for n in box.notifications]

    first = delays(7)
    assert all(1.0 <= d <= 5.0 for d in first)
    assert len(set(first)) == 4
    assert delays(7) == first
    assert delays(8) != first


def test_a_drawn_seed_is_reported(sandbox: Sandbox) -> None:
    fault = sandbox.add_delivery_fault(delay=(0, 1))
    assert isinstance(fault.seed, int)
    assert fault.to_json()["delay"] == [0.0, 1.0]


# -- duplicates ---------------------------------------------------------------------


def test_duplicates_send_n_identical_copies(alipay, sandbox: Sandbox, shop: Shop) -> None:
    sandbox.add_delivery_fault(merchant_id=APP_ID, duplicates=4)
    _paid(alipay, sandbox)
    attempts = sandbox.deliver_due()
    assert [(a.number, a.copy, a.copies) for a in attempts] == [(1, i, 4) for i in (1, 2, 3, 4)]
    assert all(a.effects == ("duplicate",) for a in attempts)
    assert len({r.content for r in shop.requests}) == 1
    assert len(shop.requests) == 4
    (note,) = sandbox.notifications
    assert (note.attempts, note.status) == (1, DeliveryStatus.ACKNOWLEDGED)


def test_concurrent_duplicates_are_in_flight_together(
    platform_keys, merchant_keys, clock: ManualClock
) -> None:
    copies = 6
    inside = threading.Barrier(copies, timeout=5)
    seen: list[bytes] = []

    def shop(request: httpx.Request) -> httpx.Response:
        seen.append(request.read())
        inside.wait()  # passes only if all copies are in the handler at once
        return httpx.Response(200, text="success")

    box = Sandbox(
        alipay_platform_key=platform_keys.private,
        clock=clock,
        time_factor=60,
        notify_transport=httpx.MockTransport(shop),
    )
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    box.add_delivery_fault(duplicates=copies, concurrent=True)
    with httpx.Client(
        transport=httpx.WSGITransport(app=create_app(box)), base_url=BASE_URL
    ) as http:
        client = AlipayWireClient(
            http, app_id=APP_ID, private_key=merchant_keys.private, now=clock.now
        )
        new_trade(client, "C1")
        box.alipay.pay(APP_ID, "C1")
    attempts = box.deliver_due()
    box.stop()
    assert len(attempts) == copies
    assert all(a.acknowledged for a in attempts), [a.error for a in attempts]
    assert all("concurrent" in a.effects for a in attempts)
    assert len(seen) == copies
    assert len(set(seen)) == 1


def test_a_failed_copy_does_not_spoil_an_acknowledged_one(alipay, sandbox, shop: Shop) -> None:
    sandbox.add_delivery_fault(duplicates=2)
    shop.answers = [500]
    _paid(alipay, sandbox)
    first, second = sandbox.deliver_due()
    assert (first.acknowledged, second.acknowledged) == (False, True)
    assert sandbox.notifications[0].status is DeliveryStatus.ACKNOWLEDGED


# -- reorder ------------------------------------------------------------------------


def test_reorder_holds_the_payment_until_the_refund_is_sent(
    alipay, sandbox: Sandbox, shop: Shop
) -> None:
    sandbox.add_delivery_fault(out_trade_no="T1", reorder=True)
    _paid(alipay, sandbox)
    (held,) = sandbox.notifications
    assert held.held
    assert held.next_at is None
    assert event_type_of(held) == "payment"
    assert sandbox.deliver_due(force=True) == []
    sandbox.alipay.refund(APP_ID, "T1", "30.00", out_refund_no="RF1")
    attempts = sandbox.deliver_due()
    assert [a.kind for a in attempts] == ["TRADE_SUCCESS (refund)", "TRADE_SUCCESS"]
    forms = shop.forms()
    assert forms[0]["refund_fee"] == "30.00"
    assert "refund_fee" not in forms[1]
    assert all(n.status is DeliveryStatus.ACKNOWLEDGED for n in sandbox.notifications)


def test_removing_a_reorder_fault_releases_what_it_holds(alipay, sandbox: Sandbox) -> None:
    fault = sandbox.add_delivery_fault(reorder=True)
    _paid(alipay, sandbox)
    assert sandbox.deliver_due() == []
    sandbox.remove_delivery_fault(fault.id)
    (attempt,) = sandbox.deliver_due()
    assert attempt.acknowledged


# -- drop ---------------------------------------------------------------------------


def test_drop_first_k_then_the_retry_schedule_goes_on(
    alipay, sandbox: Sandbox, shop: Shop, clock: ManualClock
) -> None:
    sandbox.add_delivery_fault(out_trade_no="T1", drop_first=3)
    _paid(alipay, sandbox)
    (first,) = sandbox.deliver_due()
    assert (first.number, first.status_code, first.acknowledged) == (1, None, False)
    assert first.effects == ("dropped",)
    assert not first.sent
    for number, gap in ((2, 4), (3, 10), (4, 10)):  # Alipay's 4m, 10m, 10m
        clock.advance(gap * MINUTE - 0.01)
        assert sandbox.deliver_due() == []
        clock.advance(0.01)
        (attempt,) = sandbox.deliver_due()
        assert attempt.number == number
    assert attempt.acknowledged
    assert attempt.effects == ()
    assert len(shop.requests) == 1  # three never left the sandbox


def test_dropping_every_attempt_gives_up(alipay, sandbox: Sandbox, clock: ManualClock) -> None:
    sandbox.add_delivery_fault(drop_first=8)
    _paid(alipay, sandbox)
    for _ in range(8):
        sandbox.deliver_due(force=True)
    (note,) = sandbox.notifications
    assert (note.attempts, note.status) == (8, DeliveryStatus.GAVE_UP)


# -- replay -------------------------------------------------------------------------


def test_replay_resends_an_acknowledged_notification_later(
    alipay, sandbox: Sandbox, shop: Shop, clock: ManualClock
) -> None:
    sandbox.add_delivery_fault(out_trade_no="T1", replay_after=90, replays=2)
    _paid(alipay, sandbox)
    (first,) = sandbox.deliver_due()
    assert first.acknowledged
    clock.advance(89)
    assert sandbox.deliver_due() == []
    clock.advance(1)
    (replay,) = sandbox.deliver_due()
    assert (replay.number, replay.effects) == (2, ("replay",))
    clock.advance(90)
    (again,) = sandbox.deliver_due()
    assert again.effects == ("replay",)
    clock.advance(1000)
    assert sandbox.deliver_due() == []
    assert len({r.content for r in shop.requests}) == 1
    assert len(shop.requests) == 3
    assert sandbox.notifications[0].status is DeliveryStatus.ACKNOWLEDGED


# -- tamper -------------------------------------------------------------------------


def test_tamper_amount_breaks_the_signature_then_the_resend_is_genuine(
    alipay, sandbox: Sandbox, shop: Shop, clock: ManualClock, platform_keys
) -> None:
    sandbox.add_delivery_fault(out_trade_no="T1", tamper="amount")
    shop.answers = ["fail"]  # the shop rejects the forged one
    _paid(alipay, sandbox)
    (forged,) = sandbox.deliver_due()
    assert forged.effects == ("tampered-amount",)
    assert not forged.acknowledged
    clock.advance(4 * MINUTE)
    (genuine,) = sandbox.deliver_due()
    assert genuine.acknowledged
    assert genuine.effects == ()
    bad, good = shop.forms()
    assert (bad["total_amount"], bad["receipt_amount"]) == ("0.01", "0.01")
    assert good["total_amount"] == "100.00"
    assert bad["sign"] == good["sign"]
    assert not notification_verifies(bad, platform_keys.public)
    assert notification_verifies(good, platform_keys.public)


def test_tamper_amount_to_a_chosen_amount(alipay, sandbox: Sandbox, shop: Shop) -> None:
    sandbox.add_delivery_fault(tamper="amount", tamper_amount="99.99")
    _paid(alipay, sandbox)
    sandbox.deliver_due()
    assert shop.forms()[0]["total_amount"] == "99.99"


def test_tamper_signature(
    alipay, sandbox: Sandbox, shop: Shop, clock: ManualClock, platform_keys
) -> None:
    sandbox.add_delivery_fault(tamper="signature", tamper_attempts=2)
    shop.answers = ["fail", "fail"]
    _paid(alipay, sandbox)
    sandbox.deliver_due()
    clock.advance(4 * MINUTE)
    sandbox.deliver_due()
    clock.advance(10 * MINUTE)
    sandbox.deliver_due()
    first, second, third = shop.forms()
    assert first["sign"] != third["sign"]
    assert {k: v for k, v in first.items() if k != "sign"} == {
        k: v for k, v in third.items() if k != "sign"
    }
    assert not notification_verifies(first, platform_keys.public)
    assert not notification_verifies(second, platform_keys.public)
    assert notification_verifies(third, platform_keys.public)
    assert [a.effects for a in sandbox.deliveries] == [
        ("tampered-signature",),
        ("tampered-signature",),
        (),
    ]


def _note(body: bytes, headers: tuple[tuple[str, str], ...] = (), kind: str = "x") -> object:
    return OutboundNotification(
        id="N1",
        channel="test",
        merchant_id="M",
        event_id="E",
        kind=kind,
        trade_no="T",
        url="http://shop.test/",
        headers=headers,
        body=body,
        created_at=START,
        delays=(),
    )


def test_form_tamperer_minor_units_and_percent_encoded_signature() -> None:
    tamperer = FormTamperer(("txnAmt",), "signature", frozenset({"txnAmt"}))
    note = _note(b"orderId=A1&txnAmt=10000&signature=ab%2Bcd%3D%3D&txnAmtX=5")
    _, body = tamperer.tamper_amount(note, None)
    assert body == b"orderId=A1&txnAmt=1&signature=ab%2Bcd%3D%3D&txnAmtX=5"
    _, body = tamperer.tamper_amount(note, Money(250))
    assert b"&txnAmt=250&" in body
    _, body = tamperer.tamper_signature(note)
    assert body.startswith(b"orderId=A1&txnAmt=10000&signature=")
    assert body != note.body
    with pytest.raises(Exception, match="no amount field"):
        FormTamperer(("total_amount",), "sign").tamper_amount(note, None)


def test_header_signature_tamperer() -> None:
    tamperer = HeaderSignatureTamperer("Wechatpay-Signature")
    note = _note(b"{}", (("Wechatpay-Signature", "QUJDRA=="), ("Content-Type", "x")))
    headers, body = tamperer.tamper_signature(note)
    assert body == b"{}"
    assert dict(headers)["Wechatpay-Signature"] != "QUJDRA=="
    assert dict(headers)["Content-Type"] == "x"
    with pytest.raises(Exception, match="not in clear text"):
        tamperer.tamper_amount(note, None)


def test_an_unsupported_tamper_sends_the_genuine_body(sandbox: Sandbox, shop: Shop) -> None:
    sandbox.add_delivery_fault(channel="test", tamper="amount")
    sandbox._scheduler.enqueue(_note(b"a=1"), lambda r: r.status_code == 200)
    (attempt,) = sandbox.deliver_due()
    assert attempt.effects == ("tamper-unsupported",)
    assert shop.requests[0].content == b"a=1"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("TRADE_SUCCESS", "payment"),
        ("TRADE_SUCCESS (refund)", "refund"),
        ("TRADE_CLOSED (refund)", "refund"),
        ("TRADE_CLOSED", "close"),
        ("TRADE_FINISHED", "finish"),
        ("01 consume", "payment"),
        ("04 refund", "refund"),
        ("31 undo", "refund"),
        ("TRANSACTION.SUCCESS", "payment"),
        ("REFUND.SUCCESS", "refund"),
        ("something", "other"),
    ],
)
def test_event_type_guess(kind: str, expected: str) -> None:
    assert event_type_of(_note(b"", kind=kind)) == expected


# -- scope ----------------------------------------------------------------------------


def test_the_most_specific_fault_wins_and_limit_counts(alipay, sandbox: Sandbox) -> None:
    merchant = sandbox.add_delivery_fault(merchant_id=APP_ID, duplicates=2)
    trade = sandbox.add_delivery_fault(out_trade_no="T2", duplicates=3, limit=1)
    everyone = sandbox.add_delivery_fault(duplicates=5)
    other = sandbox.add_delivery_fault(merchant_id="2021000000000999", duplicates=7)
    _paid(alipay, sandbox, "T1")
    _paid(alipay, sandbox, "T2")
    sandbox.alipay.refund(APP_ID, "T2", "1.00")
    assert [n.fault_id for n in sandbox.notifications] == [merchant.id, trade.id, merchant.id]
    assert sandbox.delivery_fault(trade.id).matched == 1
    assert sandbox.delivery_fault(everyone.id).matched == 0
    assert sandbox.delivery_fault(other.id).matched == 0


def test_event_types_narrow_a_fault(alipay, sandbox: Sandbox, shop: Shop) -> None:
    sandbox.add_delivery_fault(event_types=["refund"], duplicates=2)
    _paid(alipay, sandbox)
    sandbox.alipay.refund(APP_ID, "T1", "1.00")
    payment, refund = sandbox.notifications
    assert (payment.fault_id, refund.fault_id) == (None, "F0001")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs an effect"),
        ({"duplicates": 0}, "duplicates"),
        ({"delay": -1}, "delay"),
        ({"delay": (3, 1)}, "low must not exceed"),
        ({"delay": float("nan")}, "delay"),
        ({"tamper": "body"}, "tamper must be"),
        ({"tamper": "signature", "tamper_amount": "1.00"}, "needs tamper='amount'"),
        ({"tamper": "amount", "tamper_amount": "1e3"}, "tamper_amount"),
        ({"reorder": "yes"}, "true or false"),
        ({"reorder": True, "event_types": ["paid"]}, "event_types"),
        ({"reorder": True, "colour": "red"}, "unknown fault option"),
        ({"reorder": True, "limit": 0}, "limit"),
    ],
)
def test_invalid_faults_are_refused(sandbox: Sandbox, options, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        sandbox.add_delivery_fault(**options)


# -- resend ---------------------------------------------------------------------------


def test_resend_an_acknowledged_and_a_pending_notification(
    alipay, sandbox: Sandbox, shop: Shop
) -> None:
    _paid(alipay, sandbox)
    sandbox.deliver_due()
    (note,) = sandbox.notifications
    (again,) = sandbox.resend_notification(note.id)
    assert (again.number, again.effects, again.acknowledged) == (2, ("resend",), True)
    assert shop.requests[0].content == shop.requests[1].content

    shop.answers = ["fail"]
    new_trade(alipay, "T2")
    sandbox.alipay.pay(APP_ID, "T2")
    (failed,) = sandbox.deliver_due()
    assert not failed.acknowledged
    (now,) = sandbox.resend_notification(failed.notification_id)
    assert (now.number, now.effects, now.acknowledged) == (2, (), True)
    assert sandbox.notification(failed.notification_id).status is DeliveryStatus.ACKNOWLEDGED


# -- control API ----------------------------------------------------------------------


def test_control_api_for_faults(http: httpx.Client, alipay, sandbox: Sandbox, shop: Shop) -> None:
    created = http.post(
        "/_control/delivery-faults",
        json={"app_id": APP_ID, "out_trade_no": "T1", "duplicates": 3, "delay": [1, 2], "seed": 1},
    )
    assert created.status_code == 201, created.text
    fault = created.json()
    assert fault["merchant_id"] == APP_ID
    assert fault["effects"] == ["delay", "duplicates"]
    assert http.get("/_control/delivery-faults").json() == [fault]
    assert http.get(f"/_control/delivery-faults/{fault['id']}").json() == fault

    bad = http.post("/_control/delivery-faults", json={"duplicates": "3"})
    assert (bad.status_code, bad.json()["error"]) == (400, "INVALID_INPUT")
    missing = http.get("/_control/delivery-faults/F9999")
    assert (missing.status_code, missing.json()["error"]) == (404, "FAULT_NOT_FOUND")

    http.post("/_control/delivery-faults", json={"merchant": APP_ID, "tamper": "signature"})
    removed = http.delete(f"/_control/delivery-faults/{fault['id']}")
    assert removed.json()["id"] == fault["id"]
    assert http.delete("/_control/delivery-faults").json() == {"removed": 1}
    assert sandbox.delivery_faults == []


def test_control_api_refund_and_resend(http: httpx.Client, alipay, sandbox: Sandbox) -> None:
    _paid(alipay, sandbox)
    refund = http.post(
        "/_control/alipay/trades/T1/refund",
        json={"app_id": APP_ID, "amount": "10.00", "out_request_no": "RF-1"},
    )
    assert refund.status_code == 201, refund.text
    assert (refund.json()["out_refund_no"], refund.json()["amount"]) == ("RF-1", "10.00")
    too_much = http.post(
        "/_control/alipay/trades/T1/refund", json={"app_id": APP_ID, "amount": "95.00"}
    )
    assert (too_much.status_code, too_much.json()["error"]) == (409, "TRADE_STATE")
    sandbox.deliver_due()
    first = sandbox.notifications[0].id
    resent = http.post(f"/_control/notifications/{first}/resend")
    assert [a["effects"] for a in resent.json()] == [["resend"]]
    unknown = http.post("/_control/notifications/N999999/resend")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "NOTIFICATION_NOT_FOUND")


def test_merchant_refund_rules(alipay, sandbox: Sandbox) -> None:
    new_trade(alipay, "T9")
    with pytest.raises(Exception, match="cannot be refunded"):
        sandbox.alipay.refund(APP_ID, "T9", "1.00")
    sandbox.alipay.pay(APP_ID, "T9")
    first = sandbox.alipay.refund(APP_ID, "T9", "1.00", out_refund_no="X")
    assert sandbox.alipay.refund(APP_ID, "T9", "1.00", out_refund_no="X") == first
    with pytest.raises(InvalidInputError, match="another amount"):
        sandbox.alipay.refund(APP_ID, "T9", "2.00", out_refund_no="X")
    with pytest.raises(InvalidInputError, match="not an amount"):
        sandbox.alipay.refund(APP_ID, "T9", "-1")
    full = sandbox.alipay.refund(APP_ID, "T9", "99.00")
    assert full.full
    assert full.out_refund_no.startswith("R2-")


# -- every channel: the scheduler is channel-neutral ----------------------------------


class _HubShop:
    """A shop endpoint that answers with the hub's exact ack."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.hub: object = None
        self.outcomes: list[object] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        outcome = self.hub.handle_notification(self.channel, request.headers, request.read())
        self.outcomes.append(outcome)
        ack = outcome.ack
        return httpx.Response(ack.status_code, content=ack.body, headers=ack.headers)


def _settle(box: Sandbox) -> None:
    for _ in range(10):
        box.deliver_due(force=True)
        if all(n.status is not DeliveryStatus.PENDING for n in box.notifications):
            return
    raise AssertionError(box.deliveries)


@pytest.mark.parametrize("tamper", ["amount", "signature"])
def test_unionpay_notifications_take_faults(merchant_keys, tamper: str) -> None:
    unionpay = pytest.importorskip("payhub.channels.unionpay")
    from sandbox_unionpay_client import MER_ID, parse_html_form, session_alipay_key, session_pki

    from payhub import PayHub, PaymentRequest

    shop = _HubShop("unionpay")
    box = Sandbox(
        alipay_platform_key=session_alipay_key(),
        time_factor=60,
        notify_transport=shop.transport,
        base_url=BASE_URL,
        unionpay_pki=session_pki(),
    )
    http = httpx.Client(transport=httpx.WSGITransport(app=create_app(box)))
    pfx, _ = box.issue_unionpay_merchant(MER_ID, "000000", key=merchant_keys.private)
    channel = unionpay.UnionPayChannel(
        {
            "mer_id": MER_ID,
            "environment": "test",
            "sign_cert": pfx,
            "sign_cert_password": "000000",
            "root_cert": box.unionpay_root_cert_pem,
            "middle_cert": box.unionpay_middle_cert_pem,
            "gateway_url": BASE_URL,
            "back_url": "http://shop.test/unionpay/notify",
        }
    )
    shop.hub = PayHub(channels=[channel], http_client=http)
    result = shop.hub.pay(
        PaymentRequest(
            out_trade_no="UPFAULT001",
            amount=Money(1000),
            subject="gift card",
            method="page",
            channel="unionpay",
        )
    )
    action, fields = parse_html_form(result.form_html)
    assert http.post(action, data=fields).status_code == 200
    box.add_delivery_fault(channel="unionpay", merchant_id=MER_ID, tamper=tamper, duplicates=2)
    box.unionpay.pay(MER_ID, "UPFAULT001")
    _settle(box)
    http.close()
    box.stop()
    forged = box.deliveries[:2]
    assert [a.effects for a in forged] == [(f"tampered-{tamper}", "duplicate")] * 2
    assert not any(a.acknowledged for a in forged)
    assert [o.accepted for o in shop.outcomes] == [False, False, True, True]
    assert shop.outcomes[-1].notification.amount == Money(1000)


def test_wechat_notifications_take_faults(merchant_keys, platform_keys) -> None:
    wechat = pytest.importorskip("payhub.channels.wechat")
    from sandbox_wechat_client import API_V3_KEY, APPID, MCHID, spare_key

    from payhub import PayHub, PaymentRequest

    shop = _HubShop("wechat")
    box = Sandbox(
        time_factor=60,
        notify_transport=shop.transport,
        base_url=BASE_URL,
        alipay_platform_key=platform_keys.private,
        wechat_public_key=platform_keys.private,
        wechat_platform_key=spare_key(),
    )
    serial = "3775B6A45ACD588826D15E583A95F5DD2C3B1A7F"
    box.add_wechat_merchant(
        MCHID, APPID, serial, merchant_keys.public_pem, API_V3_KEY, "public_key"
    )
    http = httpx.Client(transport=httpx.WSGITransport(app=create_app(box)))
    channel = wechat.WechatPayChannel.from_config(
        "wechat",
        {
            "mch_id": MCHID,
            "app_id": APPID,
            "merchant_private_key": merchant_keys.private_pem,
            "merchant_serial_no": serial,
            "api_v3_key": API_V3_KEY.decode(),
            "environment": "sandbox",
            "base_url": BASE_URL,
            "notify_url": "http://shop.test/wechat/notify",
            "wechatpay_public_key": box.wechat_public_key_pem,
            "wechatpay_public_key_id": box.wechat_public_key_id,
        },
    )
    shop.hub = PayHub(channels=[channel], http_client=http)
    shop.hub.pay(
        PaymentRequest(
            out_trade_no="WXFAULT1",
            amount=Money(1000),
            subject="gift",
            method="qr",
            channel="wechat",
        )
    )
    box.add_delivery_fault(channel="wechat", tamper="signature", drop_first=1, duplicates=3)
    trade_no = box.wechat_trade(MCHID, "WXFAULT1").trade_no
    console = create_app(box).test_client()
    assert f"/_console/trades/{trade_no}/pay" in console.get("/").get_data(as_text=True)
    box.wechat.pay(MCHID, "WXFAULT1")
    _settle(box)
    page = console.get("/").get_data(as_text=True)
    assert "WXFAULT1" in page
    assert "tampered-signature, duplicate" in page
    # every channel refunds from the merchant side now (sandbox.wechat.refund)
    assert f"/_console/trades/{trade_no}/refund" in page
    http.close()
    box.stop()
    effects = [a.effects for a in box.deliveries]
    assert effects[0] == ("dropped",)
    assert effects[1:4] == [("tampered-signature", "duplicate")] * 3
    assert effects[4:] == [("duplicate",)] * 3
    assert [o.accepted for o in shop.outcomes] == [False] * 3 + [True] * 3
