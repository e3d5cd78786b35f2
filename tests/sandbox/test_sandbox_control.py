"""The control API and the console page."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest
from payhub_sandbox import ManualClock, Sandbox, TradeState, create_app
from sandbox_alipay_client import AlipayWireClient
from sandbox_support import APP_ID, NOTIFY_URL, SELLER_ID, Shop, new_trade


def test_register_merchant_then_use_it(
    http: httpx.Client, other_keys, clock: ManualClock, platform_keys
) -> None:
    created = http.post(
        "/_control/alipay/merchants",
        json={
            "app_id": "2021000000000009",
            "public_key": other_keys.public_base64,
            "seller_id": "2088000000000009",
            "sign_type": "RSA2",
            "charset": "gbk",
        },
    )
    assert created.status_code == 201
    assert created.json()["charset"] == "gbk"
    assert created.json()["public_key"] == other_keys.public_pem
    listed = http.get("/_control/alipay/merchants").json()
    assert {m["app_id"] for m in listed} == {APP_ID, "2021000000000009"}
    client = AlipayWireClient(
        http, app_id="2021000000000009", private_key=other_keys.private, now=clock.now
    )
    reply = client.call("alipay.trade.query", {"out_trade_no": "x"})
    assert reply.node["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    assert reply.verifies(platform_keys.public)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"app_id": "a", "seller_id": "s"}, 400),
        ({"app_id": "a", "seller_id": "s", "public_key": "not a key"}, 400),
        ({"app_id": "a", "seller_id": "s", "public_key": "PEM", "sign_type": "MD5"}, 400),
        ([1, 2], 400),
    ],
)
def test_register_merchant_errors(http: httpx.Client, body, status) -> None:
    response = http.post("/_control/alipay/merchants", json=body)
    assert response.status_code == status
    assert response.json()["error"] == "INVALID_INPUT"


def test_platform_key(http: httpx.Client, sandbox: Sandbox, platform_keys) -> None:
    response = http.get("/_control/alipay/platform-key")
    assert response.status_code == 200
    assert response.text == platform_keys.public_pem
    assert "PRIVATE" not in response.text
    assert sandbox.alipay_public_key_pem == platform_keys.public_pem


def test_pay_finish_close_and_lists(
    http: httpx.Client, alipay: AlipayWireClient, sandbox: Sandbox, shop: Shop
) -> None:
    trade_no = new_trade(alipay, "T1", "20.00")
    new_trade(alipay, "T2")
    paid = http.post("/_control/alipay/trades/T1/pay", json={"app_id": APP_ID})
    assert paid.status_code == 200
    assert paid.json()["trade_status"] == "TRADE_SUCCESS"
    assert paid.json()["trade_no"] == trade_no
    again = http.post("/_control/alipay/trades/T1/pay", json={"app_id": APP_ID})
    assert again.status_code == 409
    assert again.json()["error"] == "TRADE_STATE"
    missing = http.post("/_control/alipay/trades/T9/pay", json={"app_id": APP_ID})
    assert missing.status_code == 404
    unknown_app = http.post("/_control/alipay/trades/T1/pay", json={"app_id": "nope"})
    assert unknown_app.status_code == 404
    assert unknown_app.json()["error"] == "UNKNOWN_MERCHANT"
    assert http.post("/_control/alipay/trades/T1/pay", json={}).status_code == 400

    got = http.get("/_control/alipay/trades/T1", params={"app_id": APP_ID}).json()
    assert got["state"] == "PAID"
    assert got["amount"] == "20.00"

    alipay.call(
        "alipay.trade.refund",
        {"out_trade_no": "T1", "refund_amount": "5.00", "out_request_no": "R1"},
    )
    finished = http.post("/_control/alipay/trades/T1/finish", json={"app_id": APP_ID})
    assert finished.json()["trade_status"] == "TRADE_FINISHED"
    closed = http.post(
        "/_control/alipay/trades/T2/close", json={"app_id": APP_ID, "reason": "merchant"}
    )
    assert closed.json()["trade_status"] == "TRADE_CLOSED"
    assert closed.json()["close_reason"] == "merchant"

    trades = http.get("/_control/trades").json()
    assert [t["out_trade_no"] for t in trades] == ["T1", "T2"]
    refunds = http.get("/_control/refunds").json()
    assert [(r["out_refund_no"], r["amount"]) for r in refunds] == [("R1", "5.00")]

    shop.answers = ["fail"]
    delivered = http.post("/_control/deliver").json()
    assert [a["acknowledged"] for a in delivered] == [False, True, True]
    assert [a["kind"] for a in delivered] == [
        "TRADE_SUCCESS",
        "TRADE_SUCCESS (refund)",
        "TRADE_FINISHED",
    ]
    assert http.post("/_control/deliver").json() == []
    forced = http.post("/_control/deliver", json={"force": True}).json()
    assert [a["number"] for a in forced] == [2]
    log = http.get("/_control/deliveries").json()
    assert len(log) == 4
    assert log[0]["response_body"] == "fail"
    notifications = http.get("/_control/notifications").json()
    assert [n["status"] for n in notifications] == ["ACKNOWLEDGED"] * 3
    assert notifications[0]["url"] == NOTIFY_URL


def test_clock(http: httpx.Client, sandbox: Sandbox) -> None:
    before = http.get("/_control/clock").json()
    assert before == {
        "now": "2024-03-01T02:00:00+00:00",
        "manual": True,
        "time_factor": 60.0,
    }
    after = http.post("/_control/clock/advance", json={"seconds": 90}).json()
    assert after["now"] == "2024-03-01T02:01:30+00:00"
    assert http.post("/_control/clock/advance", json={"seconds": -1}).status_code == 400
    assert http.post("/_control/clock/advance", json={"seconds": "1"}).status_code == 400


def test_clock_cannot_move_the_real_one(platform_keys) -> None:
    box = Sandbox(alipay_platform_key=platform_keys.private)
    client = create_app(box).test_client()
    response = client.post("/_control/clock/advance", json={"seconds": 1})
    assert response.status_code == 400
    assert client.get("/_control/clock").get_json()["manual"] is False


def test_close_expired_endpoint(http: httpx.Client, alipay: AlipayWireClient, clock) -> None:
    alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": "T1", "total_amount": "1.00", "subject": "s", "timeout_express": "1m"},
    )
    clock.advance(1)
    closed = http.post("/_control/close-expired").json()
    assert [t["out_trade_no"] for t in closed] == ["T1"]


def test_bill_endpoint(http: httpx.Client, alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    new_trade(alipay, "T1")
    sandbox.alipay.pay(APP_ID, "T1")
    response = http.get(f"/_control/alipay/bills/{APP_ID}/2024-03-01")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content), metadata_encoding="gbk") as zf:
        assert f"{SELLER_ID}_20240301_业务明细.csv" in zf.namelist()
    assert http.get(f"/_control/alipay/bills/{APP_ID}/yesterday").status_code == 400


def test_console_lists_everything(
    http: httpx.Client, alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    trade_no = new_trade(alipay, "T1", subject="控制台")
    sandbox.alipay.pay(APP_ID, "T1")
    alipay.call(
        "alipay.trade.refund",
        {"out_trade_no": "T1", "refund_amount": "1.00", "out_request_no": "R-console"},
    )
    sandbox.deliver_due()
    page = http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for text in (APP_ID, SELLER_ID, trade_no, "控制台", "R-console", "TRADE_SUCCESS", "success"):
        assert text in page.text
    assert "PRIVATE KEY" not in page.text


# -- who may drive it (issue 11 point 19) -------------------------------------------


def _pending(sandbox: Sandbox, out_trade_no: str) -> bool:
    return sandbox.alipay_trade(APP_ID, out_trade_no).state is TradeState.PENDING


@pytest.mark.parametrize("host", ["evil.example", "rebind.attacker.com:8000", "192.0.2.7", ""])
def test_a_foreign_host_is_refused(http: httpx.Client, alipay, sandbox: Sandbox, host: str) -> None:
    """DNS rebinding: a hostile name resolving to 127.0.0.1 makes the browser send
    that name as Host, and the page is same-origin with it, so Origin does not help."""
    new_trade(alipay, "H1")
    origin = {"Origin": f"http://{host}"} if host else {}
    for method, path in (
        ("POST", "/_control/alipay/trades/H1/pay"),
        ("GET", "/_control/trades"),
        ("GET", "/"),
    ):
        response = http.request(
            method, path, json={"app_id": APP_ID}, headers={"Host": host, **origin}
        )
        assert response.status_code == 403, (method, path)
        assert response.json()["error"] == "FORBIDDEN_HOST"
    assert _pending(sandbox, "H1")


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://sandbox.test:9999"},  # another port is another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # e.g. another dev server on localhost
        {"Origin": "http://sandbox.test", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_cross_origin_post_is_refused(
    http: httpx.Client, alipay, sandbox: Sandbox, headers: dict[str, str]
) -> None:
    new_trade(alipay, "O1")
    response = http.post("/_control/alipay/trades/O1/pay", json={"app_id": APP_ID}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "CROSS_ORIGIN"
    assert _pending(sandbox, "O1")
    console = http.post(f"/_console/trades/{sandbox.trades[0].trade_no}/pay", headers=headers)
    assert console.status_code == 403
    assert _pending(sandbox, "O1")


def test_the_sandboxs_own_pages_and_clients_still_work(
    http: httpx.Client, alipay, sandbox: Sandbox
) -> None:
    trade_no = new_trade(alipay, "S1")
    # The console's own form: same origin, as a browser sends it.
    same = {"Origin": "http://sandbox.test", "Sec-Fetch-Site": "same-origin"}
    response = http.post(f"/_console/trades/{trade_no}/pay", headers=same)
    assert response.status_code == 303
    assert not _pending(sandbox, "S1")
    # A script (no Origin), on loopback names.
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000", "sandbox.test"):
        assert http.get("/_control/clock", headers={"Host": host}).status_code == 200
    # The channel-facing pages are not the guard's: a shop calls them cross-origin.
    gateway = http.post("/gateway.do", headers={"Origin": "http://shop.example"})
    assert gateway.status_code != 403


def test_allowed_hosts_and_base_url_host(sandbox: Sandbox) -> None:
    sandbox.base_url = "http://sandbox.lan:8000"
    app = create_app(sandbox, allowed_hosts=["dev-box.corp"])
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://x") as http:
        for host in ("sandbox.lan:8000", "dev-box.corp", "DEV-BOX.corp."):
            assert http.get("/_control/clock", headers={"Host": host}).status_code == 200
        assert http.get("/_control/clock", headers={"Host": "other.corp"}).status_code == 403


def test_a_token_is_required_when_one_is_set(sandbox: Sandbox, alipay) -> None:
    app = create_app(sandbox, token="t0k3n-for-tests")
    transport = httpx.WSGITransport(app=app)
    with httpx.Client(transport=transport, base_url="http://127.0.0.1:8000") as http:
        trade_no = new_trade(alipay, "K1")  # the gateway needs no token
        pay = ("/_control/alipay/trades/K1/pay", {"app_id": APP_ID})
        refused = http.post(pay[0], json=pay[1])
        assert refused.status_code == 403
        assert refused.json()["error"] == "TOKEN_REQUIRED"
        assert "t0k3n" not in refused.text
        wrong = http.post(pay[0], json=pay[1], headers={"X-Sandbox-Token": "guess"})
        assert wrong.status_code == 403
        assert http.get("/").status_code == 403
        assert http.post(f"/_console/trades/{trade_no}/pay").status_code == 403
        assert _pending(sandbox, "K1")
        ok = http.get("/_control/trades", headers={"X-Sandbox-Token": "t0k3n-for-tests"})
        assert ok.status_code == 200
        ok = http.get("/_control/trades", headers={"Authorization": "Bearer t0k3n-for-tests"})
        assert ok.status_code == 200
        # A person: /?token=... once, then the console and its buttons work.
        assert http.get("/?token=guess").status_code == 403
        entry = http.get("/?token=t0k3n-for-tests")
        assert entry.status_code == 303
        cookie = entry.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert http.get("/").status_code == 200
        same = {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}
        assert http.post(f"/_console/trades/{trade_no}/pay", headers=same).status_code == 303
        assert not _pending(sandbox, "K1")
