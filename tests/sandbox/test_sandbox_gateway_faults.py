"""Gateway faults: a channel's gateway down, slow, busy or behind a failing proxy, on purpose."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from flask import Flask
from payhub_sandbox import FaultMode, ManualClock, Sandbox, TradeNotFoundError, create_app
from sandbox_alipay_client import AlipayWireClient, parse_reply
from sandbox_support import APP_ID, SELLER_ID
from werkzeug.serving import WSGIRequestHandler, make_server

OTHER_APP_ID = "2021000000000002"
PRECREATE = "alipay.trade.precreate"


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: object) -> None:
        pass


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """The app on a free loopback port, in a thread: a live server, with real sockets."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def other(sandbox: Sandbox, http: httpx.Client, other_keys, clock: ManualClock) -> AlipayWireClient:
    """A second Alipay app in the same sandbox."""
    sandbox.add_alipay_merchant(OTHER_APP_ID, other_keys.public_pem, "2088000000000002")
    return AlipayWireClient(
        http, app_id=OTHER_APP_ID, private_key=other_keys.private, now=clock.now
    )


def precreate(client: AlipayWireClient, out_trade_no: str) -> httpx.Response:
    params = client.params(
        PRECREATE, {"out_trade_no": out_trade_no, "total_amount": "1.00", "subject": "Card"}
    )
    return client.send(client.signed(params))


def has_trade(sandbox: Sandbox, app_id: str, out_trade_no: str) -> bool:
    try:
        sandbox.alipay_trade(app_id, out_trade_no)
    except TradeNotFoundError:
        return False
    return True


# -- the modes ------------------------------------------------------------------------


def test_without_a_fault_the_gateway_answers(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    assert not sandbox.gateway_faults
    response = precreate(alipay, "F0")
    assert parse_reply(response, PRECREATE).code == "10000"


def test_down_answers_503_with_an_empty_body(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    sandbox.set_fault("alipay", "down")
    response = precreate(alipay, "F1")
    assert response.status_code == 503
    assert response.content == b""
    assert not has_trade(sandbox, APP_ID, "F1")  # nothing reached the channel
    [fault] = sandbox.gateway_faults.list()
    assert (fault.mode, fault.hits, fault.count) == (FaultMode.DOWN, 1, None)


def test_down_with_close_in_process_still_answers_503(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    # In-process there is no socket to drop: the empty 503 is the closest.
    sandbox.set_fault("alipay", "down", close=True)
    assert precreate(alipay, "F2").status_code == 503


def test_down_with_close_drops_the_connection_of_a_live_server(
    app: Flask, sandbox: Sandbox, merchant_keys, clock: ManualClock
) -> None:
    sandbox.set_fault("alipay", "down", close=True, count=1)
    with serve(app) as url, httpx.Client(base_url=url) as http:
        client = AlipayWireClient(
            http, app_id=APP_ID, private_key=merchant_keys.private, now=clock.now
        )
        with pytest.raises(httpx.RemoteProtocolError):
            precreate(client, "F3")
        # count=1: the next request goes through, on a new connection.
        assert parse_reply(precreate(client, "F3"), PRECREATE).code == "10000"


def test_system_error_is_alipays_signed_busy_answer(
    alipay: AlipayWireClient, sandbox: Sandbox, platform_keys
) -> None:
    sandbox.set_fault("alipay", "system_error")
    response = precreate(alipay, "F4")
    assert response.status_code == 200
    reply = parse_reply(response, PRECREATE)
    assert reply.name == "alipay_trade_precreate_response"
    assert (reply.code, reply.sub_code) == ("20000", "isp.unknow-error")
    assert reply.node["msg"] == "Service Currently Unavailable"
    assert reply.verifies(platform_keys.public)
    assert not has_trade(sandbox, APP_ID, "F4")


def test_system_error_40004_is_acq_system_error(
    alipay: AlipayWireClient, sandbox: Sandbox, platform_keys
) -> None:
    sandbox.set_fault("alipay", FaultMode.SYSTEM_ERROR, code="40004")
    reply = parse_reply(precreate(alipay, "F5"), PRECREATE)
    assert (reply.code, reply.sub_code) == ("40004", "ACQ.SYSTEM_ERROR")
    assert reply.verifies(platform_keys.public)


def test_system_error_on_a_page_method_is_the_error_page(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    sandbox.set_fault("alipay", "system_error")
    params = alipay.params(
        "alipay.trade.page.pay",
        {
            "out_trade_no": "F6",
            "total_amount": "1.00",
            "subject": "Card",
            "product_code": "FAST_INSTANT_TRADE_PAY",
        },
    )
    response = alipay.send(alipay.signed(params), "get")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "isp.unknow-error" in response.text


def test_html_error_is_an_nginx_502_page(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    sandbox.set_fault("alipay", "html_error")
    response = precreate(alipay, "F7")
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>502 Bad Gateway</title>" in response.text
    assert "nginx" in response.text


def test_slow_answers_normally_after_the_wait(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    sandbox.set_fault("alipay", "slow", seconds=0.3)
    started = time.monotonic()
    reply = parse_reply(precreate(alipay, "F8"), PRECREATE)
    assert time.monotonic() - started >= 0.3
    assert reply.code == "10000"  # late, but done: the trade exists
    assert has_trade(sandbox, APP_ID, "F8")


def test_slow_beyond_the_client_timeout_on_a_live_server(
    app: Flask, sandbox: Sandbox, merchant_keys, clock: ManualClock
) -> None:
    sandbox.set_fault("alipay", "slow", seconds=30)
    with serve(app) as url, httpx.Client(base_url=url, timeout=0.3) as http:
        client = AlipayWireClient(
            http, app_id=APP_ID, private_key=merchant_keys.private, now=clock.now
        )
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            precreate(client, "F9")
        assert time.monotonic() - started < 5
        assert not has_trade(sandbox, APP_ID, "F9")
        # Clearing the fault releases the held request: the channel does the
        # work the client gave up on (why a timed-out attempt "may exist").
        assert sandbox.clear_faults() == 1
        deadline = time.monotonic() + 5
        while not has_trade(sandbox, APP_ID, "F9") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert has_trade(sandbox, APP_ID, "F9")


def test_clearing_a_slow_fault_releases_the_requests_it_holds(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    sandbox.set_fault("alipay", "slow", seconds=60)
    answers: list[int] = []
    worker = threading.Thread(target=lambda: answers.append(precreate(alipay, "F10").status_code))
    started = time.monotonic()
    worker.start()
    deadline = time.monotonic() + 5
    while sandbox.gateway_faults.list()[0].hits == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    sandbox.stop()  # stopping the sandbox clears its faults too
    worker.join(5)
    assert answers == [200]
    assert time.monotonic() - started < 5


# -- scope: count, merchant, channel ------------------------------------------------------


def test_count_fails_the_next_n_requests_then_the_fault_is_gone(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    sandbox.set_fault("alipay", "down", count=2)
    assert precreate(alipay, "C1").status_code == 503
    [fault] = sandbox.gateway_faults.list()
    assert (fault.count, fault.hits) == (1, 1)
    assert precreate(alipay, "C1").status_code == 503
    assert sandbox.gateway_faults.list() == []
    assert parse_reply(precreate(alipay, "C1"), PRECREATE).code == "10000"


def test_a_fault_for_one_app_leaves_the_others_alone(
    alipay: AlipayWireClient, other: AlipayWireClient, sandbox: Sandbox
) -> None:
    sandbox.set_fault("alipay", "down", app_id=APP_ID)
    assert precreate(alipay, "M1").status_code == 503
    assert parse_reply(precreate(other, "M1"), PRECREATE).code == "10000"


def test_an_apps_own_fault_wins_over_the_channels(
    alipay: AlipayWireClient, other: AlipayWireClient, sandbox: Sandbox
) -> None:
    sandbox.set_fault("alipay", "down")
    sandbox.set_fault("alipay", "html_error", app_id=OTHER_APP_ID)
    assert precreate(alipay, "M2").status_code == 503
    assert precreate(other, "M2").status_code == 502
    assert sandbox.clear_faults("alipay", app_id=OTHER_APP_ID) == 1
    assert precreate(other, "M2").status_code == 503  # the channel's fault again


def test_setting_a_fault_again_replaces_it(alipay: AlipayWireClient, sandbox: Sandbox) -> None:
    sandbox.set_fault("alipay", "down")
    sandbox.set_fault("alipay", "html_error")
    assert [f.mode for f in sandbox.gateway_faults.list()] == [FaultMode.HTML_ERROR]
    assert precreate(alipay, "M3").status_code == 502


def test_the_rest_of_the_sandbox_works_while_the_gateway_is_down(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    sandbox.set_fault("alipay", "down")
    assert http.get("/_control/trades").status_code == 200
    assert http.get("/_control/alipay/merchants").status_code == 200


def test_wechat_faults_match_the_mchid_of_the_authorization_header(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    sandbox.set_fault("wechat", "system_error", app_id="1900000001")
    auth = 'WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="n",signature="s"'
    busy = http.post("/v3/pay/transactions/native", json={}, headers={"Authorization": auth})
    assert busy.status_code == 500
    assert busy.json()["code"] == "SYSTEM_ERROR"
    other = auth.replace("1900000001", "1900000002")
    passed = http.post("/v3/pay/transactions/native", json={}, headers={"Authorization": other})
    assert passed.status_code != 500  # not faulted: whatever the gateway answers
    assert sandbox.gateway_faults.list()[0].hits == 1


def test_unionpay_faults_match_the_mer_id_of_the_form(http: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.set_fault("unionpay", "down", app_id="777290058110048")
    down = http.post("/gateway/api/backTransReq.do", data={"merId": "777290058110048"})
    assert down.status_code == 503
    sandbox.set_fault("unionpay", "system_error", code="01")
    busy = http.post("/gateway/api/queryTrans.do", data={"merId": "777290058110099"})
    assert busy.text.startswith("respCode=01&")


# -- the control API --------------------------------------------------------------------


def test_control_api_sets_lists_and_clears_faults(
    http: httpx.Client, alipay: AlipayWireClient
) -> None:
    created = http.post(
        "/_control/faults", json={"channel": "alipay", "mode": "system_error", "count": 3}
    )
    assert created.status_code == 201
    assert created.json() == {
        "channel": "alipay",
        "mode": "system_error",
        "app_id": None,
        "seconds": None,
        "count": 3,
        "close": False,
        "code": "20000",
        "hits": 0,
        "expires_in": None,
    }
    http.post(
        "/_control/faults",
        json={"channel": "alipay", "mode": "slow", "app_id": OTHER_APP_ID, "seconds": 2.5},
    )
    assert parse_reply(precreate(alipay, "K1"), PRECREATE).code == "20000"
    listed = {
        (f["app_id"], f["mode"], f["hits"], f["count"]) for f in http.get("/_control/faults").json()
    }
    assert listed == {(None, "system_error", 1, 2), (OTHER_APP_ID, "slow", 0, None)}

    one = http.delete("/_control/faults", params={"channel": "alipay", "app_id": OTHER_APP_ID})
    assert one.json() == {"cleared": 1}
    assert [f["mode"] for f in http.get("/_control/faults").json()] == ["system_error"]
    assert http.delete("/_control/faults").json() == {"cleared": 1}
    assert http.get("/_control/faults").json() == []
    assert parse_reply(precreate(alipay, "K1"), PRECREATE).code == "10000"


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "down"},
        {"channel": "paypal", "mode": "down"},
        {"channel": "alipay", "mode": "flaky"},
        {"channel": "alipay", "mode": "slow"},
        {"channel": "alipay", "mode": "slow", "seconds": 0},
        {"channel": "alipay", "mode": "slow", "seconds": 121},
        {"channel": "alipay", "mode": "slow", "seconds": "5"},
        {"channel": "alipay", "mode": "down", "seconds": 5},
        {"channel": "alipay", "mode": "down", "count": 0},
        {"channel": "alipay", "mode": "down", "count": True},
        {"channel": "alipay", "mode": "html_error", "close": True},
        {"channel": "alipay", "mode": "down", "code": "20000"},
        {"channel": "alipay", "mode": "system_error", "code": "40001"},
        {"channel": "alipay", "mode": "down", "app_id": ""},
        {"channel": "alipay", "mode": "down", "when": "now"},
        [1],
    ],
)
def test_control_api_refuses_bad_faults(http: httpx.Client, body: object) -> None:
    response = http.post("/_control/faults", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "INVALID_INPUT"
    assert http.get("/_control/faults").json() == []


def test_clearing_an_app_needs_its_channel(http: httpx.Client) -> None:
    response = http.delete("/_control/faults", params={"app_id": APP_ID})
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_INPUT"


def test_a_fresh_app_has_no_faults(platform_keys, merchant_keys) -> None:
    box = Sandbox(alipay_platform_key=platform_keys.private)
    box.add_alipay_merchant(APP_ID, merchant_keys.public_pem, SELLER_ID)
    app = create_app(box)
    transport = httpx.WSGITransport(app=app)
    with httpx.Client(transport=transport, base_url="http://sandbox.test") as http:
        assert http.get("/_control/faults").json() == []
    box.stop()
