"""The EPay provider as a sandbox part, found through ``payhub_sandbox.parts``."""

from __future__ import annotations

import httpx
import pytest
from epay_support import KEY, PID, md5_sign
from payhub_epay_sandbox import EpaySimulator
from payhub_sandbox import ManualClock, Sandbox, create_app
from payhub_sandbox.parts import install_parts


def test_the_installed_part_mounts_on_the_sandbox_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYHUB_SANDBOX_PARTS", raising=False)
    clock = ManualClock()
    sandbox = Sandbox(clock=clock, time_factor=60)
    app = create_app(sandbox)
    assert "epay" in install_parts(app)
    epay = app.extensions["payhub_epay_sandbox"]
    assert isinstance(epay, EpaySimulator)
    assert epay.time_factor == 60
    epay.add_merchant(PID, KEY)
    params = {"act": "order", "pid": PID, "key": KEY, "out_trade_no": "NONE"}
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://sb") as http:
        assert http.get("/epay/api.php", params=params).json() == {
            "code": -1,
            "msg": "订单号不存在",
        }
        form = {
            "pid": PID,
            "type": "alipay",
            "out_trade_no": "P-1",
            "notify_url": "https://s/n",
            "return_url": "https://s/r",
            "name": "Card",
            "money": "1.00",
        }
        form["sign"] = md5_sign(form, KEY)
        page = http.post("/epay/submit.php", data=form)
        assert page.status_code == 302
        assert http.get(page.headers["location"]).status_code == 200
    # the same sandbox clock drives the part
    assert epay.order_by_out(PID, "P-1").created_at == clock.now()


def test_parts_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYHUB_SANDBOX_PARTS", "")
    app = create_app(Sandbox())
    assert install_parts(app) == []
    assert "payhub_epay_sandbox" not in app.extensions


def test_cashier_pays_and_returns_the_buyer_with_a_return_the_channel_verifies() -> None:
    from urllib.parse import parse_qsl, urlsplit

    from epay_support import make_shop

    from payhub import PayMethod

    shop = make_shop()
    result = shop.hub.pay(shop.request(method=PayMethod.WAP))
    cashier = shop.http.get(result.redirect_url or "").headers["location"]
    page = shop.http.get(f"http://epay.sandbox.test{cashier}")
    assert "Gift card" in page.text
    assert "12.50" in page.text
    paid = shop.http.post(f"http://epay.sandbox.test{cashier}/pay")
    assert paid.status_code == 302
    back = paid.headers["location"]
    assert back.startswith("https://shop.example/paid?")
    info = shop.hub.verify_return("epay", dict(parse_qsl(urlsplit(back).query)))
    assert info.out_trade_no == "ORDER-1"
    assert info.channel_trade_id == shop.trade_no("ORDER-1")


def test_the_control_api_drives_the_provider() -> None:
    from epay_support import make_shop

    from payhub import PayMethod

    shop = make_shop()
    http, base = shop.http, "http://epay.sandbox.test/epay/_control"
    assert http.post(f"{base}/merchants", json={"pid": "1003", "key": "k3"}).json() == {
        "pid": "1003"
    }
    assert http.post(f"{base}/faults", json={"kind": "bad_sign"}).json()["kind"] == "bad_sign"
    shop.hub.pay(shop.request(method=PayMethod.QR))
    trade_no = shop.trade_no("ORDER-1")
    assert http.post(f"{base}/orders/{trade_no}/pay").json()["status"] == 1
    first = http.post(f"{base}/deliver").json()
    assert [(d["acknowledged"], d["effects"]) for d in first] == [(False, ["bad_sign"])]
    assert http.delete(f"{base}/faults").json() == {"cleared": True}
    again = http.post(f"{base}/deliver", params={"force": "1"}).json()
    assert [d["acknowledged"] for d in again] == [True]
