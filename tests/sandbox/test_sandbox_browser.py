"""The cashier pages and the console in a real browser: headless Chromium driven by Playwright.

Debian's ``chromium`` (``/usr/bin/chromium``, or ``PAYHUB_CHROMIUM``) is used,
never a browser Playwright downloads. A buyer pays through each channel's
cashier page; the shop (payhub + flask-payhub, served over HTTP) receives the
notification; an operator refunds from the sandbox console and the refund lands
in the shop's store. On failure a screenshot goes to
``$PAYHUB_ARTIFACTS_DIR/screenshots/`` (default ``artifacts/screenshots/``).

Without chromium or Playwright these tests skip, saying why, except under CI
(``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from live_shop import ALIPAY_APP_ID, LiveShop, live_sandbox, live_shop
from payhub_sandbox import Sandbox
from sandbox_unionpay_client import session_pki

from payhub.money import Money

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"


def _chromium() -> str | None:
    given = os.environ.get("PAYHUB_CHROMIUM")
    if given:
        return given if Path(given).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[browser]')"
    if _chromium() is None:
        return "no chromium on PATH (apt-get install chromium, or set PAYHUB_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing is not None:
        if IN_CI:
            pytest.fail(f"CI=true and the browser tests cannot run: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=_chromium(), headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        context.close()


@contextmanager
def screenshot_on_failure(page: Any, name: str) -> Iterator[None]:
    """Keep what the browser showed when the test failed (a CI artifact)."""
    try:
        yield
    except BaseException:
        folder = Path(os.environ.get("PAYHUB_ARTIFACTS_DIR", REPO / "artifacts")) / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
        raise


def _eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


@pytest.fixture
def world(platform_keys, merchant_keys, tmp_path: Path) -> Iterator[tuple[Sandbox, str, LiveShop]]:
    sandbox = Sandbox(
        alipay_platform_key=platform_keys.private, unionpay_pki=session_pki(), time_factor=60
    )
    with (
        live_sandbox(sandbox) as url,
        live_shop(
            sandbox, url, merchant_keys, tmp_path, channels=("alipay", "wechat", "unionpay")
        ) as shop,
    ):
        yield sandbox, url, shop


def _shop_shows(page: Any, shop: LiveShop, order: str, selector: str, text: str) -> None:
    """Reload the shop's order page until ``selector`` reads ``text``."""

    def shown() -> bool:
        page.goto(f"{shop.url}/orders/{order}")
        return bool(page.inner_text(selector) == text)

    _eventually(shown)


@pytest.mark.parametrize(
    ("channel", "order", "method", "button"),
    [
        ("alipay", "BR-ALI-1", "qr", "确认付款 Pay"),
        ("wechat", "BR-WX-1", "qr", "确认支付 Pay"),
        ("unionpay", "BRUNION00001", "page", "确认付款 Pay"),
    ],
)
def test_pay_through_the_cashier_page_and_the_shop_is_notified(
    page: Any, world, channel: str, order: str, method: str, button: str
) -> None:
    _sandbox, url, shop = world
    with screenshot_on_failure(page, f"pay-{channel}"):
        # The buyer clicks "buy" in the shop and lands on the channel's page (UnionPay:
        # through the auto-submitting form payhub rendered).
        page.goto(f"{shop.url}/buy/{channel}/{order}?method={method}")
        page.wait_for_url(re.compile(re.escape(url) + ".*"))
        assert "10.00" in page.content()
        page.get_by_role("button", name=button).click()
        page.wait_for_load_state()
        _shop_shows(page, shop, order, "#status", "paid")
        got = [r for r in shop.received if r.path == f"/payhub/notify/{channel}"]
        assert got
        assert all(r.status in (200, 204) for r in got)


def test_refund_from_the_console_lands_in_the_shop(page: Any, world) -> None:
    _sandbox, url, shop = world
    with screenshot_on_failure(page, "console-refund"):
        page.goto(f"{shop.url}/buy/alipay/BR-REF-1")
        page.get_by_role("button", name="确认付款 Pay").click()
        _shop_shows(page, shop, "BR-REF-1", "#status", "paid")

        page.goto(f"{url}/")
        row = page.locator('tr[data-out-trade-no="BR-REF-1"]')
        assert row.locator("td.status").inner_text() == "TRADE_SUCCESS"
        row.get_by_label("refund amount").fill("4.00")
        row.get_by_role("button", name="refund").click()
        page.wait_for_url(re.compile(r".*\?msg=.*"))
        assert "refund: alipay trade BR-REF-1" in page.inner_text("#message")
        page.locator('tr[data-out-trade-no="BR-REF-1"] td.refunded').filter(
            has_text="4.00"
        ).wait_for()

        _shop_shows(page, shop, "BR-REF-1", "#refunded", "4.00")
        assert shop.payment("BR-REF-1").refunded == Money(400)


def test_the_console_refreshes_itself(page: Any, world) -> None:
    sandbox, url, shop = world
    with screenshot_on_failure(page, "console-live"):
        page.goto(f"{url}/")
        page.locator("#refresh").filter(has_text="live").wait_for()
        assert page.locator('tr[data-out-trade-no="BR-LIVE-1"]').count() == 0
        page.goto(f"{shop.url}/buy/alipay/BR-LIVE-1")  # (another tab, in effect)
        page.goto(f"{url}/")
        row = page.locator('tr[data-out-trade-no="BR-LIVE-1"]')
        assert row.locator("td.status").inner_text() == "WAIT_BUYER_PAY"
        sandbox.alipay.pay(ALIPAY_APP_ID, "BR-LIVE-1")  # paid elsewhere; no reload here
        row.locator("td.status").filter(has_text="TRADE_SUCCESS").wait_for(timeout=10_000)
        assert "?msg" not in page.url  # the same page, refreshed in place
