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
