"""The console over real HTTP: every channel's merchants and trades, local times, cashier
links, the close button, the live-refresh endpoint; and the startup banner."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from live_shop import (
    ALIPAY_APP_ID,
    WECHAT_MCH_ID,
    LiveShop,
    live_sandbox,
    live_shop,
    serve,
)
from payhub_sandbox import CHINA_TZ, CONSOLE_TZ_KEY, Sandbox, TradeState, create_app
from sandbox_unionpay_client import MER_ID, UnionPayWireClient, session_pki, trust_of
from test_sandbox_cli_trigger_listen import _env

from payhub import models
from payhub.money import Money


def _pay_request(order: str, channel: str) -> models.PaymentRequest:
    return models.PaymentRequest(
        out_trade_no=order, amount=Money(1000), subject="礼品卡", method="qr", channel=channel
    )


@pytest.fixture
def everything(
    platform_keys, merchant_keys, tmp_path: Path
) -> Iterator[tuple[Sandbox, str, LiveShop]]:
    sandbox = Sandbox(alipay_platform_key=platform_keys.private, unionpay_pki=session_pki())
    with (
        live_sandbox(sandbox) as url,
        live_shop(sandbox, url, merchant_keys, tmp_path, channels=("alipay", "wechat")) as shop,
    ):
        shop.hub.pay(_pay_request("CON-A1", "alipay"))
        shop.hub.pay(_pay_request("CON-A2", "alipay"))
        shop.hub.pay(_pay_request("CON-W1", "wechat"))
        _, cert = sandbox.issue_unionpay_merchant(MER_ID, "000000", key=merchant_keys.private)
        with httpx.Client(base_url=url) as http:
            client = UnionPayWireClient(
                http,
                mer_id=MER_ID,
                key=merchant_keys.private,
                cert_id=str(cert.serial_number),
                trust=trust_of(session_pki()),
                now=lambda: datetime.now(UTC),
            )
            page = client.front_consume("CONU00000001")
            assert page.status_code == 200
            assert "CONU00000001" in page.text, page.text
        yield sandbox, url, shop


def _rows(html: str) -> dict[str, str]:
    """out_trade_no → its row in the trades table."""
    table = html.split('<table id="trades">', 1)[1].split("</table>", 1)[0]
    return dict(
        re.findall(r'<tr data-trade="[^"]+" data-out-trade-no="([^"]+)">(.*?)</tr>', table, re.S)
    )


def test_every_channel_with_cashier_links_and_local_times(everything) -> None:
    sandbox, url, _ = everything
    html = httpx.get(f"{url}/").text
    assert ALIPAY_APP_ID in html.split('id="alipay-merchants"', 1)[1].split("</table>", 1)[0]
    assert WECHAT_MCH_ID in html.split('id="wechat-merchants"', 1)[1].split("</table>", 1)[0]
    assert MER_ID in html
    rows = _rows(html)
    assert set(rows) == {"CON-A1", "CON-A2", "CON-W1", "CONU00000001"}
    for trade in sandbox.trades:
        row = rows[trade.out_trade_no]
        local = trade.created_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
        assert f"<td>{local}</td>" in row  # Asia/Shanghai by default
        (link,) = re.findall(r'<a href="([^"]+)" class="cashier">', row)
        prefix = {
            "alipay": "/alipay/cashier/",
            "wechat": "/wechat/pay/",
            "unionpay": "/unionpay/cashier/",
        }[trade.channel]
        assert link.startswith(f"{url}{prefix}")
        page = httpx.get(link)
        assert page.status_code == 200
        assert trade.out_trade_no in page.text or trade.amount.to_decimal_string() in page.text
        # pay, fail, close for every unpaid trade whose channel can close; pay for all
        assert f"/_console/trades/{trade.trade_no}/pay" in row
        if trade.channel != "unionpay":  # UnionPay has no close (docs/sandbox.md)
            assert f"/_console/trades/{trade.trade_no}/close" in row


def test_the_zone_is_the_consoles(platform_keys) -> None:
    sandbox = Sandbox(alipay_platform_key=platform_keys.private)
    app = create_app(sandbox)
    app.config[CONSOLE_TZ_KEY] = UTC
    html = app.test_client().get("/").get_data(as_text=True)
    assert "(UTC)" in html
    sandbox.stop()


def test_close_button_and_the_live_refresh_endpoint(everything) -> None:
    sandbox, url, _shop = everything
    first = httpx.get(f"{url}/_console/state.json").json()
    assert first == httpx.get(f"{url}/_console/state.json").json() | {"now": first["now"]}
    trade = sandbox.alipay_trade(ALIPAY_APP_ID, "CON-A1")
    answer = httpx.post(f"{url}/_console/trades/{trade.trade_no}/close")
    assert answer.status_code == 303
    assert sandbox.alipay_trade(ALIPAY_APP_ID, "CON-A1").state is TradeState.CLOSED
    assert sandbox.alipay_trade(ALIPAY_APP_ID, "CON-A1").close_reason != "timeout"
    sandbox.wechat.pay(WECHAT_MCH_ID, "CON-W1")
    after = httpx.get(f"{url}/_console/state.json").json()
    assert after["stamp"] != first["stamp"]
    rows = _rows(after["html"])
    assert "TRADE_CLOSED" in rows["CON-A1"]
    assert "SUCCESS" in rows["CON-W1"]
    assert "/refund" in rows["CON-W1"]  # a paid trade offers a refund
    # a page from another origin cannot drive the console
    foreign = httpx.post(
        f"{url}/_console/trades/{trade.trade_no}/pay", headers={"Origin": "http://evil.test"}
    )
    assert foreign.status_code == 403


def test_banner_lists_every_channel_and_parts(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "payhub_sandbox", "run", "--port", "0"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env()
    ) as proc:
        try:
            lines = []
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if "-----END PUBLIC KEY-----" in line:
                    break
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    text = "".join(lines)
    url = lines[0].split()[-1]
    for expected in (
        f"alipay         {url}/gateway.do",
        f"wechat         {url}/v3/",
        f"unionpay       {url}/gateway/api/",
        f"epay           {url}/epay/ (sandbox part)",
        "WeChat merchants",
        "UnionPay merchants",
    ):
        assert expected in text


def test_parts_are_listed_on_the_console(platform_keys) -> None:
    sandbox = Sandbox(alipay_platform_key=platform_keys.private)
    with serve(create_app(sandbox)) as (url, _):
        html = httpx.get(f"{url}/").text
    assert '<table id="parts">' in html
    assert "<code>/epay/</code>" in html
    sandbox.stop()
