"""The WeChat part of the control API and console, and how WeChat notifications
go through the shared delivery faults."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from payhub_sandbox import Sandbox, create_app
from sandbox_wechat_client import (
    API_V3_KEY,
    APPID,
    MCHID,
    WechatEnv,
    public_key_of,
    signed_message,
    verifies,
    wechat_env,
)


@pytest.fixture
def env(merchant_keys, platform_keys) -> Iterator[WechatEnv]:
    yield from wechat_env(merchant_keys.private, platform_keys.private)


def test_register_a_merchant_over_http(env: WechatEnv, other_keys) -> None:
    body = {
        "mch_id": "1900000002",
        "app_id": "wx-second",
        "merchant_serial_no": "abc123",
        "merchant_public_key": other_keys.public_pem,
        "api_v3_key": "k" * 32,
        "key_mode": "certificate",
        "refund_delay": 30,
    }
    created = env.http.post("/_control/wechat/merchants", json=body)
    assert created.status_code == 201, created.text
    data = created.json()
    assert data["merchant_serial_no"] == "ABC123"
    assert data["key_mode"] == "certificate"
    listed = env.http.get("/_control/wechat/merchants")
    assert "k" * 32 not in listed.text  # the API v3 key is never shown
    assert {m["mch_id"] for m in listed.json()} == {MCHID, "1900000002"}
    for bad in ({**body, "api_v3_key": "short"}, {**body, "key_mode": "both"}, {"mch_id": "1"}):
        response = env.http.post("/_control/wechat/merchants", json=bad)
        assert response.status_code == 400
        assert response.json()["error"] == "INVALID_INPUT"
        assert "k" * 32 not in response.text


def test_control_close_refund_bill_and_faults(env: WechatEnv) -> None:
    env.client.native("ORDER-0001")
    closed = env.http.post("/_control/wechat/trades/ORDER-0001/close", json={"mch_id": MCHID})
    assert closed.json()["trade_state"] == "CLOSED"
    assert (
        env.http.post(
            "/_control/wechat/trades/ORDER-0001/close", json={"mch_id": MCHID}
        ).status_code
        == 409
    )
    assert env.http.get("/_control/wechat/trades/ORDER-0001").status_code == 400  # no mch_id
    assert (
        env.http.get("/_control/wechat/trades/ORDER-0001?mch_id=nobody").json()["error"]
        == "TRADE_NOT_FOUND"
    )

    env.client.native("ORDER-0002")
    env.pay("ORDER-0002")
    env.client.refund("R-1", 10, out_trade_no="ORDER-0002")
    refund = env.http.get(f"/_control/wechat/refunds/R-1?mch_id={MCHID}").json()
    assert refund["channel"] == "wechat"
    assert refund["amount"] == "0.10"
    assert env.http.get(f"/_control/wechat/bills/{MCHID}/2024-03-01").text.startswith(
        "\ufeff交易时间"
    )

    added = env.http.post("/_control/wechat/faults", json={"code": "FREQUENCY_LIMITED", "times": 2})
    assert added.status_code == 201
    assert env.http.get("/_control/wechat/faults").json()[0]["remaining"] == 2
    assert env.client.query("ORDER-0002").status_code == 429
    assert env.client.query("ORDER-0002").status_code == 429
    assert env.client.query("ORDER-0002").status_code == 200
    bad = env.http.post("/_control/wechat/faults", json={"code": "NOT_A_CODE"})
    assert bad.status_code == 400


def test_consoles(env: WechatEnv) -> None:
    env.client.native("ORDER-0001")
    page = env.http.get("/wechat/")
    assert page.status_code == 200
    assert "ORDER-0001" in page.text
    assert env.sandbox.wechat_public_key_id in page.text
    assert "/wechat/pay/" in page.text
    main = env.http.get("/")
    assert main.status_code == 200
    assert "ORDER-0001" in main.text
    assert env.http.get("/wechat/pay/no-such-token").status_code == 404


def test_keys_are_made_only_when_needed(monkeypatch, platform_keys) -> None:
    """A sandbox that never speaks WeChat makes no WeChat key."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    made = []
    real = rsa.generate_private_key

    def counting(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    box = Sandbox(alipay_platform_key=platform_keys.private)
    monkeypatch.setattr(rsa, "generate_private_key", counting)
    create_app(box)
    assert made == []
    assert box.wechat_public_key_id.startswith("PUB_KEY_ID_")
    assert len(made) == 1
    box.stop()


def test_a_forged_signature_stays_forged_and_the_resend_is_genuine(env: WechatEnv) -> None:
    env.sandbox.add_delivery_fault(channel="wechat", tamper="signature", tamper_attempts=1)
    env.shop.answers = [401]  # a shop that verifies refuses the forgery
    env.client.native("ORDER-0001")
    env.pay("ORDER-0001")
    env.sandbox.deliver_due()
    env.clock.advance(15 / 60)
    env.sandbox.deliver_due()
    forged, genuine = env.shop.requests
    key = public_key_of(env.sandbox.wechat_public_key_pem)
    assert not verifies(
        key, signed_message(forged.headers, forged.content), forged.headers["Wechatpay-Signature"]
    )
    assert verifies(
        key,
        signed_message(genuine.headers, genuine.content),
        genuine.headers["Wechatpay-Signature"],
    )
    assert forged.content == genuine.content


def test_duplicates_each_carry_a_valid_signature(env: WechatEnv) -> None:
    env.sandbox.add_delivery_fault(channel="wechat", duplicates=3)
    env.client.native("ORDER-0001")
    env.pay("ORDER-0001")
    env.sandbox.deliver_due()
    assert len(env.shop.requests) == 3
    key = public_key_of(env.sandbox.wechat_public_key_pem)
    for request in env.shop.requests:
        assert verifies(
            key,
            signed_message(request.headers, request.content),
            request.headers["Wechatpay-Signature"],
        )
    assert len({json.loads(r.content)["id"] for r in env.shop.requests}) == 1


def test_merchant_replaced_keeps_its_trades(env: WechatEnv, merchant_keys) -> None:
    env.client.native("ORDER-0001")
    env.sandbox.add_wechat_merchant(
        MCHID, APPID, env.serial_no, merchant_keys.public_pem, API_V3_KEY, "certificate"
    )
    response = env.client.query("ORDER-0001")
    assert (
        response.headers["Wechatpay-Serial"] == env.sandbox.wechat_platform_certificate_serials[0]
    )


def test_portal_refund_and_console_buttons(env: WechatEnv) -> None:
    env.client.native("ORDER-0001")
    page = env.http.get("/")
    paid = env.http.post(
        f"/_console/trades/{env.sandbox.wechat_trade(MCHID, 'ORDER-0001').trade_no}/pay",
        data={"buyer_id": "o-console"},
    )
    assert paid.status_code == 303, page.text
    assert env.sandbox.wechat_trade(MCHID, "ORDER-0001").buyer_id == "o-console"
    refund = env.sandbox.wechat.refund(MCHID, "ORDER-0001", "0.40", out_refund_no="P-1")
    assert refund.status == "PROCESSING"
    assert env.sandbox.wechat.refund(MCHID, "ORDER-0001", "0.40", out_refund_no="P-1") == refund
    with pytest.raises(ValueError, match="another"):
        env.sandbox.wechat.refund(MCHID, "ORDER-0001", "0.41", out_refund_no="P-1")
    with pytest.raises(Exception, match="INVALID_REQUEST"):
        env.sandbox.wechat.refund(MCHID, "ORDER-0001", "0.61")
    env.sandbox.deliver_due()
    assert env.client.get("/v3/refund/domestic/refunds/P-1").json()["status"] == "SUCCESS"


def test_configuration_file(tmp_path, merchant_keys, platform_keys, monkeypatch) -> None:
    from cryptography.hazmat.primitives import serialization
    from payhub_sandbox import build_sandbox, load_config

    (tmp_path / "pub-key-private.pem").write_bytes(
        platform_keys.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "apiclient_key_public.pem").write_text(merchant_keys.public_pem)
    monkeypatch.setenv("SHOP_API_V3_KEY", API_V3_KEY.decode())
    config = {
        "wechat": {
            "public_key_private_key_file": "pub-key-private.pem",
            "merchants": [
                {
                    "mch_id": MCHID,
                    "app_id": APPID,
                    "merchant_serial_no": "ABCD",
                    "merchant_public_key_file": "apiclient_key_public.pem",
                    "api_v3_key": {"$env": "SHOP_API_V3_KEY"},
                    "key_mode": "certificate",
                    "refund_delay": 5,
                }
            ],
        }
    }
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps(config))
    loaded = load_config(path)
    assert API_V3_KEY.decode() not in repr(loaded)
    first = build_sandbox(loaded)
    second = build_sandbox(load_config(path))
    assert first.wechat_public_key_id == second.wechat_public_key_id  # the configured key
    merchant = first.wechat_merchant(MCHID)
    assert (merchant.key_mode, merchant.refund_delay) == ("certificate", 5.0)
    first.stop()
    second.stop()

    config["wechat"]["merchants"][0]["colour"] = "red"
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="colour"):
        load_config(path)


def test_gateway_fault_system_error_is_signed(env: WechatEnv) -> None:
    env.sandbox.set_fault("wechat", "system_error", count=1)
    busy = env.client.native("ORDER-0001")
    assert (busy.status_code, busy.json()["code"]) == (500, "SYSTEM_ERROR")
    key = public_key_of(env.sandbox.wechat_public_key_pem)
    assert verifies(
        key, signed_message(busy.headers, busy.content), busy.headers["Wechatpay-Signature"]
    )
    assert env.client.native("ORDER-0001").status_code == 200
