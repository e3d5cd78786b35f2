"""Notifications to ``backUrl``: signed form POSTs, resent with growing intervals until HTTP 200."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from payhub_sandbox import UNIONPAY_RETRY_DELAYS, DeliveryStatus
from sandbox_unionpay_client import (
    BACK_URL,
    MER_ID,
    Env,
    VerifyError,
    unionpay_env,
    verify_message,
)


@pytest.fixture
def env(merchant_keys) -> Iterator[Env]:
    with unionpay_env(merchant_keys.private) as made:
        yield made


def _pay(env: Env, order_id: str = "NOTIFY0001", amount: str = "1999") -> dict[str, str]:
    created = env.client.app_consume(order_id, amount, reqReserved="{shop=1&x=y}")
    env.sandbox.unionpay.pay(MER_ID, order_id)
    return created


def test_the_paid_notification(env: Env) -> None:
    created = _pay(env)
    (attempt,) = env.sandbox.deliver_due()
    assert attempt.acknowledged
    (request,) = env.shop.requests
    assert request.method == "POST"
    assert str(request.url) == BACK_URL
    assert request.headers["content-type"] == "application/x-www-form-urlencoded; charset=UTF-8"
    (fields,) = env.notifications()
    cert = verify_message(fields, env.client.trust, env.clock.now())
    platform = env.http.get("/_control/unionpay/certs").json()["sign_cert"]
    assert cert.public_bytes(serialization.Encoding.PEM).decode() == platform
    trade = env.sandbox.unionpay_trade(MER_ID, "NOTIFY0001")
    assert fields["respCode"] == "00"
    assert fields["merId"] == MER_ID
    assert fields["orderId"] == "NOTIFY0001"
    assert fields["queryId"] == trade.trade_no
    assert fields["txnAmt"] == "1999"
    assert fields["currencyCode"] == "156"
    assert fields["txnTime"] == created["txnTime"]
    assert (fields["txnType"], fields["txnSubType"], fields["bizType"]) == ("01", "01", "000201")
    assert fields["reqReserved"] == "{shop=1&x=y}"
    assert fields["signPubKeyCert"].count("\r\n") > 5  # CRLF kept through URL-encoding
    assert fields["settleDate"] == "0301"
    assert env.sandbox.notifications[0].event_id == trade.trade_no


def test_resent_with_growing_intervals_until_http_200(env: Env) -> None:
    env.shop.answers = [500, 404, httpx.ConnectError("down"), "fail"]  # 200 "fail" acks
    _pay(env)
    start = env.clock.now()
    times = []
    for _ in range(200):
        for attempt in env.sandbox.deliver_due():
            times.append((attempt.at - start).total_seconds())
        if env.sandbox.notifications[0].status is not DeliveryStatus.PENDING:
            break
        env.clock.advance(0.25)
    # 0s, then 1m, 2m, 4m between attempts, divided by the time factor 60.
    assert times == [0.0, 1.0, 3.0, 7.0]
    (notification,) = env.sandbox.notifications
    assert notification.status is DeliveryStatus.ACKNOWLEDGED
    assert [a.status_code for a in env.sandbox.deliveries] == [500, 404, None, 200]
    bodies = {r.content for r in env.shop.requests}
    assert len(bodies) == 1  # every resend carries the same bytes
    env.clock.advance(3600)
    assert env.sandbox.deliver_due() == []


def test_gives_up_after_the_schedule(env: Env) -> None:
    env.shop.answers = [204] * 10  # only 200 acknowledges
    _pay(env)
    while env.sandbox.notifications[0].status is DeliveryStatus.PENDING:
        env.sandbox.deliver_due()
        env.clock.advance(0.5)
    attempts = env.sandbox.deliveries
    assert len(attempts) == len(UNIONPAY_RETRY_DELAYS) + 1 == 6
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps == [d / 60 for d in UNIONPAY_RETRY_DELAYS] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert env.sandbox.notifications[0].status is DeliveryStatus.GAVE_UP


def test_refund_and_undo_notifications(env: Env) -> None:
    _pay(env, "NOTIFY0002", "1000")
    paid_qid = env.sandbox.unionpay_trade(MER_ID, "NOTIFY0002").trade_no
    refund = env.client.refund("NREFUND001", paid_qid, "300", reqReserved="{r=1}")
    undo_target = _pay(env, "NOTIFY0003", "500")
    undo_qid = env.sandbox.unionpay_trade(MER_ID, "NOTIFY0003").trade_no
    undo = env.client.undo("NUNDO00001", undo_qid, "500")
    env.sandbox.deliver_due()
    notes = env.notifications()
    assert [n["txnType"] for n in notes] == ["01", "04", "01", "31"]
    for note in notes:
        verify_message(note, env.client.trust, env.clock.now())
    refunded = notes[1]
    assert refunded["orderId"] == "NREFUND001"
    assert refunded["origQryId"] == paid_qid
    assert refunded["queryId"] == refund["queryId"]
    assert refunded["txnAmt"] == "300"
    assert refunded["txnSubType"] == "00"
    assert refunded["reqReserved"] == "{r=1}"
    undone = notes[3]
    assert (undone["orderId"], undone["origQryId"], undone["txnAmt"]) == (
        "NUNDO00001",
        undo_qid,
        "500",
    )
    assert undone["queryId"] == undo["queryId"]
    assert undo_target["respCode"] == "00"
    kinds = [n.kind for n in env.sandbox.notifications]
    assert kinds == ["01 consume", "04 refund", "01 consume", "31 undo"]


def test_a_fault_signs_new_notifications_but_resends_keep_their_bytes(env: Env) -> None:
    env.shop.answers = [500]
    _pay(env, "NOTIFY0004")
    env.sandbox.deliver_due()
    env.client.app_consume("NOTIFY0005")
    env.sandbox.unionpay_fault("other_chain")
    env.sandbox.unionpay.pay(MER_ID, "NOTIFY0005")
    env.clock.advance(1)
    env.sandbox.deliver_due()
    first, faulty, resent = env.shop.requests  # the new one was due first
    assert first.content == resent.content
    notes = env.notifications()
    assert [n["orderId"] for n in notes] == ["NOTIFY0004", "NOTIFY0005", "NOTIFY0004"]
    verify_message(notes[2], env.client.trust, env.clock.now())
    with pytest.raises(VerifyError, match="chain"):
        verify_message(notes[1], env.client.trust, env.clock.now())
    assert faulty.url == BACK_URL


def test_notifications_in_the_control_api(env: Env) -> None:
    _pay(env)
    env.sandbox.deliver_due()
    (listed,) = env.http.get("/_control/notifications").json()
    assert listed["channel"] == "unionpay"
    assert listed["merchant_id"] == MER_ID
    assert listed["status"] == "ACKNOWLEDGED"
    (delivered,) = env.http.get("/_control/deliveries").json()
    assert delivered["status_code"] == 200


def test_delivery_faults_apply_to_unionpay(env: Env) -> None:
    """A tampered amount fails a correct client's check; the genuine resend passes."""
    env.sandbox.add_delivery_fault(channel="unionpay", tamper="amount", tamper_attempts=1)
    env.shop.answers = [400]  # the shop refuses what does not verify
    _pay(env, "NOTIFY0006", "1000")
    env.sandbox.deliver_due()
    env.clock.advance(1)
    env.sandbox.deliver_due()
    forged, genuine = env.notifications()
    assert forged["txnAmt"] != "1000"
    with pytest.raises(VerifyError, match="signature"):
        verify_message(forged, env.client.trust, env.clock.now())
    verify_message(genuine, env.client.trust, env.clock.now())
    assert genuine["txnAmt"] == "1000"
    (listed,) = env.http.get("/_control/notifications").json()
    assert listed["event_type"] == "payment"
