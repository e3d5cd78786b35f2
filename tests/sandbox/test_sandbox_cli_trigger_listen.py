"""``payhub-sandbox trigger`` and ``listen`` against a real sandbox server and a real shop.

The sandbox and the shop (payhub + flask-payhub, SQLite store) are each served
over HTTP on loopback; ``listen`` runs as a subprocess, as a QA engineer runs
it; ``trigger`` and the list commands run in-process through ``main``.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from live_shop import ALIPAY_APP_ID, LiveShop, live_sandbox, live_shop
from payhub_sandbox import DeliveryStatus, Sandbox, TradeState
from payhub_sandbox.cli import main

from payhub import models
from payhub.money import Money

REPO = Path(__file__).resolve().parents[2]
#: A public name nothing answers for: the channels "notify" it; only ``listen`` reaches the shop.
UNREACHABLE = "http://shop.invalid"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO), str(REPO / "sandbox"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.pop("PAYHUB_SANDBOX_TOKEN", None)
    return env


def _wait(predicate: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.fixture
def served(platform_keys) -> Iterator[tuple[Sandbox, str]]:
    sandbox = Sandbox(alipay_platform_key=platform_keys.private, time_factor=60)
    with live_sandbox(sandbox) as url:
        yield sandbox, url


def _order(shop: LiveShop, out_trade_no: str, channel: str = "alipay") -> None:
    shop.hub.pay(
        models.PaymentRequest(
            out_trade_no=out_trade_no,
            amount=Money(1000),
            subject="礼品卡",
            method="qr",
            channel=channel,
        )
    )


def _trigger(capsys, url: str, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["trigger", *args, "--url", url, "--json"])
    out = capsys.readouterr().out
    return code, (json.loads(out) if code == 0 else {})


class _Lines:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._queue: queue.Queue[str | None] = queue.Queue()
        stream = proc.stdout

        def pump() -> None:
            for line in stream:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def next_matching(self, marker: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            seen.append(line)
            if marker in line:
                return line
        raise AssertionError(f"no {marker!r} in {seen}")


def test_listen_forwards_each_notification_byte_exact_and_reports_the_answer(
    served, merchant_keys, tmp_path: Path, capsys
) -> None:
    sandbox, url = served
    with live_shop(sandbox, url, merchant_keys, tmp_path, notify_base=UNREACHABLE) as shop:
        _order(shop, "LISTEN-1")
        command = [sys.executable, "-m", "payhub_sandbox", "listen"]
        command += ["--forward-to", shop.url, "--url", url]
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
        ) as proc:
            lines = _Lines(proc)
            try:
                ready = lines.next_matching("Ready")
                assert shop.url in ready
                (listener,) = sandbox.listeners.list()
                assert listener.channel is None

                code, done = _trigger(capsys, url, "payment", "--channel", "alipay")
                assert code == 0
                assert done["trade"]["out_trade_no"] == "LISTEN-1"
                assert done["trade"]["trade_status"] == "TRADE_SUCCESS"

                line = lines.next_matching("[200]")
                assert "alipay" in line
                assert f"{shop.url}/payhub/notify/alipay" in line
                assert "success" in line  # Alipay's acknowledgement, from the shop
                _wait(lambda: sandbox.notifications[0].status is DeliveryStatus.ACKNOWLEDGED)
                (note,) = sandbox.notifications
                assert note.url == f"{UNREACHABLE}/payhub/notify/alipay"
                (got,) = shop.received
                assert got.body == note.body  # byte for byte
                sent = dict(note.headers)
                assert got.headers["Content-Type"] == sent["Content-Type"]
                assert not any(k.lower().startswith("x-payhub-sandbox") for k in got.headers)
                assert shop.payment("LISTEN-1").status.value == "paid"

                code, done = _trigger(
                    capsys, url, "refund", "--channel", "alipay", "--amount", "4.00"
                )
                assert code == 0
                assert done["refund"]["amount"] == "4.00"
                lines.next_matching("[200]")
                _wait(lambda: shop.payment("LISTEN-1").refunded == Money(400))
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=20)
            assert proc.returncode == 0
    assert sandbox.listeners.list() == []  # it unsubscribed on its way out


def test_listen_json_lines_and_a_failing_shop(
    served, merchant_keys, tmp_path: Path, capsys
) -> None:
    sandbox, url = served
    with live_shop(sandbox, url, merchant_keys, tmp_path, notify_base=UNREACHABLE) as shop:
        _order(shop, "LISTEN-2")
        # A path given: every notification goes to exactly that URL (here: no such route).
        target = f"{shop.url}/nowhere"
        command = [sys.executable, "-m", "payhub_sandbox", "listen", "--json"]
        command += ["--forward-to", target, "--url", url, "--channel", "alipay"]
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env()
        ) as proc:
            lines = _Lines(proc)
            try:
                _wait(sandbox.listeners.list)
                assert _trigger(capsys, url, "payment", "--channel", "alipay")[0] == 0
                record = json.loads(lines.next_matching('"status"'))
                assert record["status"] == 404
                assert record["forwarded_to"] == target
                assert record["channel"] == "alipay"
                assert record["kind"] == "TRADE_SUCCESS"
                assert record["notification"] == sandbox.notifications[0].id
                # The shop's 404 is not Alipay's "success": the sandbox will retry.
                _wait(lambda: sandbox.deliveries)
                assert sandbox.notifications[0].status is DeliveryStatus.PENDING
                assert not sandbox.deliveries[0].acknowledged
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
            assert proc.returncode == 0
    assert sandbox.listeners.list() == []


def test_a_dead_listener_is_dropped_and_delivery_goes_on(served, merchant_keys, tmp_path) -> None:
    sandbox, url = served
    with live_shop(sandbox, url, merchant_keys, tmp_path) as shop:
        _order(shop, "DEAD-1")
        # Subscribed, then gone without unsubscribing (a killed process): nothing listens there.
        httpx.post(f"{url}/_control/listeners", json={"url": "http://127.0.0.1:9/"})
        sandbox.alipay.pay(ALIPAY_APP_ID, "DEAD-1")
        _wait(lambda: shop.received)
        assert sandbox.listeners.list() == []
        _wait(lambda: shop.payment("DEAD-1").status.value == "paid")


@pytest.fixture
def shop_and_box(served, merchant_keys, tmp_path: Path) -> Iterator[tuple[Sandbox, str, LiveShop]]:
    sandbox, url = served
    with live_shop(sandbox, url, merchant_keys, tmp_path) as shop:
        yield sandbox, url, shop


def test_trigger_duplicate_notification(shop_and_box, capsys) -> None:
    sandbox, url, shop = shop_and_box
    _order(shop, "DUP-1")
    code, done = _trigger(
        capsys, url, "duplicate-notification", "--channel", "alipay", "--count", "3"
    )
    assert code == 0
    assert done["delivery_fault"]["duplicates"] == 3
    _wait(lambda: len(shop.received) >= 3)
    assert {r.body for r in shop.received} == {sandbox.notifications[0].body}
    assert [r.status for r in shop.received] == [200, 200, 200]
    assert shop.payment("DUP-1").status.value == "paid"  # applied once, acknowledged thrice


def test_trigger_delayed_notification(shop_and_box, capsys) -> None:
    sandbox, url, shop = shop_and_box
    _order(shop, "LATE-1")
    before = sandbox.clock.now()
    code, _ = _trigger(
        capsys, url, "delayed-notification", "--channel", "alipay", "--seconds", "600"
    )
    assert code == 0
    (note,) = sandbox.notifications
    assert note.next_at is not None
    assert (note.next_at - before).total_seconds() >= 599
    time.sleep(0.5)  # the delivery thread runs every 50 ms: nothing is due yet
    assert shop.received == []
    sandbox.resend_notification(note.id)  # as if the ten minutes had passed
    assert shop.payment("LATE-1").status.value == "paid"


def test_trigger_lost_notification_leaves_only_a_query(shop_and_box, capsys) -> None:
    sandbox, url, shop = shop_and_box
    _order(shop, "LOST-1")
    assert _trigger(capsys, url, "lost-notification", "--channel", "alipay")[0] == 0
    _wait(lambda: sandbox.deliveries)
    assert sandbox.deliveries[0].effects == ("dropped",)
    assert shop.received == []
    assert shop.payment("LOST-1").status.value == "pending"
    found = shop.hub.sync_payment("LOST-1")  # what `payhub sync` does for each
    assert found is not None
    assert shop.payment("LOST-1").status.value == "paid"  # found by the query


def test_trigger_payment_failed_and_the_choice_of_trade(shop_and_box, capsys) -> None:
    sandbox, url, shop = shop_and_box
    _order(shop, "OLD-1")
    _order(shop, "NEW-1")
    code, done = _trigger(capsys, url, "payment-failed", "--channel", "alipay")
    assert code == 0
    assert done["trade"]["out_trade_no"] == "NEW-1"  # the newest unpaid one
    assert sandbox.alipay_trade(ALIPAY_APP_ID, "NEW-1").state is TradeState.CLOSED
    code, done = _trigger(capsys, url, "payment", "--channel", "alipay", "--order", "OLD-1")
    assert done["trade"]["state"] == "PAID"
    # Nothing unpaid is left; a refund of nothing paid on WeChat: both refused, exit 1.
    capsys.readouterr()
    assert main(["trigger", "payment", "--channel", "alipay", "--url", url]) == 1
    assert "no unpaid alipay order" in capsys.readouterr().err
    assert main(["trigger", "refund", "--channel", "wechat", "--url", url]) == 1
    assert main(["trigger", "payment", "--channel", "alipay", "--order", "NOPE", "--url", url]) == 1
    assert "no alipay order 'NOPE'" in capsys.readouterr().err


def test_trigger_outage_for_n_seconds(shop_and_box, capsys) -> None:
    sandbox, url, shop = shop_and_box
    code, done = _trigger(capsys, url, "outage", "--channel", "alipay", "--seconds", "1")
    assert code == 0
    assert done["gateway_fault"]["mode"] == "down"
    assert 0 < done["gateway_fault"]["expires_in"] <= 1
    assert httpx.post(f"{url}/gateway.do").status_code == 503
    with pytest.raises(Exception, match=r"503|unavailable|HTTP"):
        _order(shop, "OUT-1")
    time.sleep(1.1)
    assert sandbox.gateway_faults.list() == []
    _order(shop, "OUT-2")  # the channel is back
    assert sandbox.alipay_trade(ALIPAY_APP_ID, "OUT-2").state is TradeState.PENDING
    capsys.readouterr()
    assert main(["trigger", "outage", "--channel", "wechat", "--mode", "slow", "--url", url]) == 2


def test_usage_and_reachability_errors(served, capsys) -> None:
    _, url = served
    assert main(["trigger", "nonsense", "--channel", "alipay", "--url", url]) == 2
    assert main(["trigger", "payment", "--url", url]) == 2  # --channel is required
    capsys.readouterr()
    assert main(["trigger", "payment", "--channel", "alipay", "--url", "http://127.0.0.1:9"]) == 1
    assert "cannot reach the sandbox" in capsys.readouterr().err
    assert main(["listen", "--forward-to", "ftp://x", "--url", url]) == 2


def test_a_token_protected_sandbox(platform_keys, capsys) -> None:
    from live_shop import serve
    from payhub_sandbox import create_app

    sandbox = Sandbox(alipay_platform_key=platform_keys.private)
    with serve(create_app(sandbox, token="s3cret-token-for-tests")) as (url, _):
        capsys.readouterr()
        assert main(["trades", "--url", url]) == 1
        err = capsys.readouterr().err
        assert "403" in err
        assert "s3cret" not in err
        assert main(["trades", "--url", url, "--token", "s3cret-token-for-tests", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == []
    sandbox.stop()


def test_trades_and_notifications_json(shop_and_box, capsys) -> None:
    sandbox, url, shop = shop_and_box
    _order(shop, "LIST-1")
    sandbox.alipay.pay(ALIPAY_APP_ID, "LIST-1")
    _wait(lambda: shop.received)
    capsys.readouterr()
    assert main(["trades", "--json", "--url", url]) == 0
    (trade,) = json.loads(capsys.readouterr().out)
    assert (trade["out_trade_no"], trade["state"], trade["amount"]) == ("LIST-1", "PAID", "10.00")
    assert main(["notifications", "--json", "--url", url]) == 0
    (note,) = json.loads(capsys.readouterr().out)
    assert note["kind"] == "TRADE_SUCCESS"
    assert "body" not in note  # signed bytes are not for the screen
    assert main(["trades", "--url", url]) == 0
    table = capsys.readouterr().out
    assert "LIST-1" in table
    assert "TRADE_SUCCESS" in table


def test_version_and_help(capsys) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"payhub-sandbox {version('payhub-sandbox')}"
    for command in (["trades"], ["notifications"], ["listen"], ["trigger"], ["run"]):
        assert main([*command, "--help"]) == 0
        text = capsys.readouterr().out
        assert "BOOLEAN" not in text
        assert "<bool>" not in text
    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--bills-immediately / --bills-next-day" in text
    assert main([]) == 2  # no command: the usage, exit 2


def test_a_channel_listener_takes_only_its_channel(served, merchant_keys, tmp_path) -> None:
    from live_shop import serve

    sandbox, url = served
    taken: list[bytes] = []

    def listener(environ, start_response):  # a listener that acknowledges as WeChat would
        taken.append(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        start_response("204 No Content", [])
        return [b""]

    with live_shop(sandbox, url, merchant_keys, tmp_path) as shop, serve(listener) as (own, _):
        made = httpx.post(f"{url}/_control/listeners", json={"url": own, "channel": "wechat"})
        assert made.status_code == 201
        assert httpx.post(f"{url}/_control/listeners", json={"url": "x"}).status_code == 400
        bad = httpx.post(f"{url}/_control/listeners", json={"url": own, "channel": "paypal"})
        assert bad.status_code == 400
        _order(shop, "CH-1")
        sandbox.alipay.pay(ALIPAY_APP_ID, "CH-1")
        _wait(lambda: shop.received)  # Alipay's went to the shop itself
        assert taken == []
        listed = httpx.get(f"{url}/_control/listeners").json()
        assert [entry["channel"] for entry in listed] == ["wechat"]
        assert httpx.delete(f"{url}/_control/listeners/{listed[0]['id']}").status_code == 200
        assert httpx.delete(f"{url}/_control/listeners/{listed[0]['id']}").status_code == 404
