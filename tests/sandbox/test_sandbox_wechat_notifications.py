"""Notifications (encrypted, signed, resent on WeChat's schedule) and refunds."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from payhub_sandbox import DeliveryStatus
from sandbox_wechat_client import (
    API_V3_KEY,
    APPID,
    MCHID,
    NOTIFY_URL,
    REFUND_NOTIFY_URL,
    WechatEnv,
    decrypt,
    decrypt_fails,
    verify_platform,
    wechat_env,
)

#: WeChat's gaps between attempts, in seconds.
SCHEDULE = [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600]


@pytest.fixture
def env(merchant_keys, platform_keys) -> Iterator[WechatEnv]:
    yield from wechat_env(merchant_keys.private, platform_keys.private)


def _paid(env: WechatEnv, out_trade_no: str = "ORDER-0001", total: int = 100) -> None:
    assert env.client.native(out_trade_no, total=total).status_code == 200
    env.pay(out_trade_no)


def _open(env: WechatEnv, request: httpx.Request) -> tuple[dict, dict]:
    """Verify a notification and decrypt it: (envelope, resource)."""
    verify_platform(request.headers, request.content, env.platform_keys())
    envelope = json.loads(request.content)
    return envelope, json.loads(decrypt(API_V3_KEY, envelope["resource"]))


def test_payment_notification(env: WechatEnv) -> None:
    _paid(env)
    (attempt,) = env.sandbox.deliver_due()
    assert attempt.acknowledged
    (sent,) = env.shop.requests
    assert str(sent.url) == NOTIFY_URL
    assert sent.method == "POST"
    assert sent.headers["Content-Type"] == "application/json"
    assert "x-payhub-sandbox-resign" not in sent.headers
    assert sent.headers["Wechatpay-Serial"] == env.sandbox.wechat_public_key_id
    envelope, resource = _open(env, sent)
    assert list(envelope) == [
        "id",
        "create_time",
        "resource_type",
        "event_type",
        "summary",
        "resource",
    ]
    assert envelope["resource_type"] == "encrypt-resource"
    assert envelope["event_type"] == "TRANSACTION.SUCCESS"
    assert envelope["create_time"] == "2024-03-01T10:00:00+08:00"
    block = envelope["resource"]
    assert block["original_type"] == "transaction"
    assert block["associated_data"] == "transaction"
    assert len(block["nonce"]) == 12
    trade = env.sandbox.wechat_trade(MCHID, "ORDER-0001")
    assert resource == {
        "mchid": MCHID,
        "appid": APPID,
        "out_trade_no": "ORDER-0001",
        "transaction_id": trade.trade_no,
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2024-03-01T10:00:00+08:00",
        "payer": {"openid": trade.buyer_id},
        "amount": {"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"},
    }
    # Another key, nonce or associated data does not open it.
    assert decrypt_fails(b"x" * 32, block)
    assert decrypt_fails(API_V3_KEY, {**block, "associated_data": "refund"})
    assert decrypt_fails(API_V3_KEY, {**block, "nonce": "000000000000"})


def test_certificate_mode_notification(merchant_keys, platform_keys) -> None:
    for env in wechat_env(merchant_keys.private, platform_keys.private, key_mode="certificate"):
        _paid(env)
        env.sandbox.deliver_due()
        (sent,) = env.shop.requests
        (serial,) = env.sandbox.wechat_platform_certificate_serials
        assert verify_platform(sent.headers, sent.content, env.platform_keys()) == serial


def test_resend_schedule_until_a_2xx(env: WechatEnv) -> None:
    env.shop.answers = [500, 404, 503, httpx.ConnectError("down"), 302, 204]
    _paid(env)
    assert [a.number for a in env.sandbox.deliver_due()] == [1]
    for gap in SCHEDULE[:5]:
        env.clock.advance(gap / 60 - 0.01)
        assert env.sandbox.deliver_due() == []  # not due yet
        env.clock.advance(0.01)
        assert len(env.sandbox.deliver_due()) == 1
    attempts = env.sandbox.deliveries
    assert [a.acknowledged for a in attempts] == [False] * 5 + [True]
    assert [a.status_code for a in attempts] == [500, 404, 503, None, 302, 204]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps == pytest.approx([g / 60 for g in SCHEDULE[:5]])
    (notification,) = env.sandbox.notifications
    assert notification.status is DeliveryStatus.ACKNOWLEDGED
    env.clock.advance(24 * 3600)
    assert env.sandbox.deliver_due() == []

    # The same event, the same bytes; a fresh signature on every attempt.
    bodies = {r.content for r in env.shop.requests}
    assert len(bodies) == 1
    stamps = [int(r.headers["Wechatpay-Timestamp"]) for r in env.shop.requests]
    assert stamps == sorted(stamps)
    assert stamps[-1] > stamps[0]
    for request in env.shop.requests:
        verify_platform(request.headers, request.content, env.platform_keys())


@pytest.mark.parametrize("answer", ["", "FAIL", 201])
def test_any_2xx_acknowledges(env: WechatEnv, answer: str | int) -> None:
    env.shop.answers = [answer]
    _paid(env)
    (attempt,) = env.sandbox.deliver_due()
    assert attempt.acknowledged


def test_gives_up_after_sixteen_attempts(env: WechatEnv) -> None:
    env.shop.answers = [500] * 20
    _paid(env)
    for _ in range(20):
        env.sandbox.deliver_due()
        env.clock.advance(6 * 3600 / 60)
    (notification,) = env.sandbox.notifications
    assert notification.attempts == 16
    assert notification.status is DeliveryStatus.GAVE_UP
    assert sum(SCHEDULE) == 24 * 3600 + 4 * 60


def test_a_resend_hours_later_still_has_a_fresh_timestamp(merchant_keys, platform_keys) -> None:
    for env in wechat_env(merchant_keys.private, platform_keys.private, time_factor=1):
        env.shop.answers = [500, 500, 500, 500]
        _paid(env)
        env.sandbox.deliver_due()
        for gap in SCHEDULE[:4]:
            env.clock.advance(gap)
            env.sandbox.deliver_due()
        last = env.shop.requests[-1]
        now = env.clock.now().timestamp()
        assert abs(int(last.headers["Wechatpay-Timestamp"]) - now) <= 300
        assert (
            env.shop.requests[0].headers["Wechatpay-Timestamp"]
            != last.headers["Wechatpay-Timestamp"]
        )
        verify_platform(last.headers, last.content, env.platform_keys())


def test_payment_through_the_control_api(env: WechatEnv) -> None:
    env.client.native("ORDER-0001")
    response = env.http.post("/_control/wechat/trades/ORDER-0001/pay", json={"mch_id": MCHID})
    assert response.status_code == 200, response.text
    assert response.json()["trade_state"] == "SUCCESS"
    again = env.http.post("/_control/wechat/trades/ORDER-0001/pay", json={"mch_id": MCHID})
    assert again.status_code == 409
    missing = env.http.post("/_control/wechat/trades/NOPE/pay", json={"mch_id": MCHID})
    assert missing.status_code == 404
    attempts = env.http.post("/_control/deliver").json()
    assert [a["channel"] for a in attempts] == ["wechat"]
    listed = env.http.get(f"/_control/wechat/trades/ORDER-0001?mch_id={MCHID}").json()
    assert listed["trade_state"] == "SUCCESS"
    everything = env.http.get("/_control/trades").json()
    assert everything[0]["channel"] == "wechat"


# -- refunds ---------------------------------------------------------------------------------


def _refund_events(env: WechatEnv) -> list[tuple[str, dict]]:
    out = []
    for request in env.shop.requests:
        if str(request.url) == REFUND_NOTIFY_URL:
            envelope, resource = _open(env, request)
            assert envelope["resource"]["original_type"] == "refund"
            out.append((envelope["event_type"], resource))
    return out


def test_partial_then_full_refund(merchant_keys, platform_keys) -> None:
    for env in wechat_env(merchant_keys.private, platform_keys.private, refund_delay=60):
        _paid(env, total=100)
        first = env.client.refund("R-1", 30)
        assert first.status_code == 200, first.text
        env.verify(first)
        data = first.json()
        assert data["status"] == "PROCESSING"
        assert "success_time" not in data
        assert data["amount"]["refund"] == 30
        assert data["amount"]["total"] == 100
        assert data["out_trade_no"] == "ORDER-0001"
        assert env.client.query("ORDER-0001").json()["trade_state"] == "REFUND"

        query = env.client.get("/v3/refund/domestic/refunds/R-1")
        assert query.json()["status"] == "PROCESSING"
        env.clock.advance(1)  # 60 WeChat seconds at factor 60
        query = env.client.get("/v3/refund/domestic/refunds/R-1")
        assert query.json()["status"] == "SUCCESS"
        assert query.json()["success_time"] == "2024-03-01T10:00:01+08:00"

        # Beyond what is left: refused. The rest: accepted.
        over = env.client.refund("R-2", 71)
        assert over.status_code == 400
        assert over.json()["code"] == "INVALID_REQUEST"
        rest = env.client.refund("R-2", 70, transaction_id=data["transaction_id"])
        assert rest.status_code == 200, rest.text
        env.clock.advance(1)
        env.sandbox.deliver_due()
        events = _refund_events(env)
        assert [e for e, _ in events] == ["REFUND.SUCCESS", "REFUND.SUCCESS"]
        assert [r["amount"]["refund"] for _, r in events] == [30, 70]
        assert events[0][1]["refund_status"] == "SUCCESS"
        assert events[0][1]["out_refund_no"] == "R-1"
        assert events[0][1]["mchid"] == MCHID
        full = env.client.refund("R-3", 1)
        assert full.json()["code"] == "INVALID_REQUEST"
        assert "全额" in full.json()["message"]
        trade = env.sandbox.wechat_trade(MCHID, "ORDER-0001")
        assert trade.refunded.minor == 100
        assert env.client.query("ORDER-0001").json()["trade_state"] == "REFUND"


def test_refund_is_idempotent_per_out_refund_no(env: WechatEnv) -> None:
    _paid(env)
    first = env.client.refund("R-1", 40).json()
    again = env.client.refund("R-1", 40)
    assert again.status_code == 200
    assert again.json()["refund_id"] == first["refund_id"]
    assert len(env.sandbox.refunds) == 1
    other = env.client.refund("R-1", 41)
    assert other.status_code == 400
    assert other.json()["code"] == "INVALID_REQUEST"
    assert env.sandbox.wechat_trade(MCHID, "ORDER-0001").refunded.minor == 40


def test_refund_errors(env: WechatEnv) -> None:
    missing = env.client.refund("R-1", 10, out_trade_no="NO-SUCH-ORDER")
    assert (missing.status_code, missing.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")
    env.client.native("ORDER-0001")
    unpaid = env.client.refund("R-1", 10)
    assert (unpaid.status_code, unpaid.json()["code"]) == (400, "INVALID_REQUEST")
    env.pay("ORDER-0001")
    wrong_total = env.client.refund("R-1", 10, total=99)
    assert wrong_total.json()["code"] == "INVALID_REQUEST"
    for raw_amount in (
        '{"refund":10.0,"total":100,"currency":"CNY"}',
        '{"refund":-10,"total":100,"currency":"CNY"}',
        '{"refund":10,"total":100}',
    ):
        body = '{"out_trade_no":"ORDER-0001","out_refund_no":"R-1","amount":' + raw_amount + "}"
        response = env.client.request("POST", "/v3/refund/domestic/refunds", raw=body.encode())
        assert (response.status_code, response.json()["code"]) == (400, "PARAM_ERROR"), body
    unknown = env.client.get("/v3/refund/domestic/refunds/NO-SUCH-REFUND")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")
    assert env.sandbox.refunds == []


@pytest.mark.parametrize(
    ("outcome", "event", "refunded"),
    [("ABNORMAL", "REFUND.ABNORMAL", 30), ("CLOSED", "REFUND.CLOSED", 0)],
)
def test_refund_outcomes(
    merchant_keys, platform_keys, outcome: str, event: str, refunded: int
) -> None:
    for env in wechat_env(merchant_keys.private, platform_keys.private, refund_delay=3600):
        _paid(env)
        env.client.refund("R-1", 30)
        response = env.http.post(
            "/_control/wechat/refunds/R-1/settle", json={"mch_id": MCHID, "status": outcome}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == outcome
        env.sandbox.deliver_due()
        ((kind, resource),) = _refund_events(env)
        assert kind == event
        assert resource["refund_status"] == outcome
        assert "success_time" not in resource
        assert env.client.get("/v3/refund/domestic/refunds/R-1").json()["status"] == outcome
        assert env.sandbox.wechat_trade(MCHID, "ORDER-0001").refunded.minor == refunded
        again = env.http.post("/_control/wechat/refunds/R-1/settle", json={"mch_id": MCHID})
        assert again.status_code == 409
        env.clock.advance(timedelta(hours=2).total_seconds())
        assert env.sandbox.wechat_refund(MCHID, "R-1").status == outcome


def test_refund_without_notify_url_is_not_notified(env: WechatEnv) -> None:
    _paid(env)
    body = {
        "out_trade_no": "ORDER-0001",
        "out_refund_no": "R-1",
        "amount": {"refund": 100, "total": 100, "currency": "CNY"},
    }
    assert env.client.post("/v3/refund/domestic/refunds", body).status_code == 200
    env.sandbox.deliver_due()
    assert [str(r.url) for r in env.shop.requests] == [NOTIFY_URL]
    assert env.sandbox.wechat_refund(MCHID, "R-1").status == "SUCCESS"


def test_a_resend_after_rotation_is_signed_with_the_new_certificate(
    merchant_keys, platform_keys
) -> None:
    for env in wechat_env(merchant_keys.private, platform_keys.private, key_mode="certificate"):
        env.shop.answers = [500]
        _paid(env)
        env.sandbox.deliver_due()
        (old,) = env.sandbox.wechat_platform_certificate_serials
        new = env.sandbox.rotate_wechat_platform_certificate()
        env.sandbox.retire_wechat_platform_certificate(old)
        env.clock.advance(15 / 60)
        env.sandbox.deliver_due()
        first, second = env.shop.requests
        assert first.headers["Wechatpay-Serial"] == old
        assert verify_platform(second.headers, second.content, env.platform_keys()) == new
