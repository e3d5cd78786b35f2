"""The pytest plugin, as a shop's test suite uses it (run by pytester)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

pytest_plugins = ["pytester"]

#: Inner runs skip unrelated plugins (hypothesis' and benchmark's summaries are slow). They
#: run in a subprocess: in-process, pytester forgets the modules a run imported and the
#: next run imports them afresh beside the ones the loaded plugin holds (SQLAlchemy's
#: dialects then warn, an error here, and hubs of two runs got mixed up).
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")

INI = """
[pytest]
filterwarnings = error
payhub_sandbox_time_factor = 6000
"""

HUB_TESTS = """
from pathlib import Path

import pytest
from payhub import Money, PaymentRequest, PaymentState
from payhub_sandbox import TradeNotFoundError
from payhub_sandbox.pytest_plugin import ALIPAY_APP_ID


def order(hub, out_trade_no, minor=1000):
    return hub.pay(PaymentRequest(out_trade_no=out_trade_no, amount=Money(minor),
                                  subject="gift card", method="qr", channel="alipay"))


def test_pay_and_wait(payhub_sandbox_hub, payhub_pay_as_buyer, payhub_wait_for_notification):
    hub = payhub_sandbox_hub
    events = []
    hub.subscribe("payment.succeeded", events.append)
    result = order(hub, "S1")
    assert result.qr_code.startswith("http://payhub-sandbox.test/alipay/cashier/")
    trade = payhub_pay_as_buyer("S1")
    assert trade.state.value == "PAID"
    attempt = payhub_wait_for_notification("S1", event_type="payment")
    assert (attempt.acknowledged, attempt.response_body) == (True, "success")
    assert hub.store.payment("S1").status is PaymentState.PAID
    assert [e.out_trade_no for e in events] == ["S1"]


def test_alipay_transfers_in_certificate_mode(payhub_sandbox, payhub_sandbox_hub,
                                              payhub_sandbox_http):
    from payhub.channels import run_flow_sync
    from payhub.splits_models import ReceiverKind, TransferRequest, TransferStatus

    payhub_sandbox.splits.set_balance("alipay", ALIPAY_APP_ID, Money(10000))
    transfer = payhub_sandbox_hub.channel("alipay").transfer(TransferRequest(
        out_transfer_no="W1", kind=ReceiverKind.USER_ID, account="2088000000000011",
        amount=Money(2500), remark="withdrawal"))
    result = run_flow_sync(transfer, payhub_sandbox_http.send)
    assert result.status is TransferStatus.SUCCEEDED
    assert payhub_sandbox.splits.balance("alipay", ALIPAY_APP_ID) == Money(7500)


def test_faults_on_the_real_clock(payhub_sandbox, payhub_sandbox_hub, payhub_pay_as_buyer,
                                  payhub_wait_for_notification):
    assert payhub_sandbox.time_factor == 6000  # from the ini file
    payhub_sandbox.add_delivery_fault(out_trade_no="S2", drop_first=1, duplicates=2)
    order(payhub_sandbox_hub, "S2")
    payhub_pay_as_buyer("S2")
    # the first attempt is lost; Alipay's resend comes 4 min / 6000 = 40 ms later
    first = payhub_wait_for_notification("S2", acknowledged=True, timeout=5)
    second = payhub_wait_for_notification("S2", timeout=5)
    assert (first.number, first.copy, second.number, second.copy) == (2, 1, 2, 2)
    assert payhub_sandbox_hub.store.payment("S2").status is PaymentState.PAID
    assert [a.sent for a in payhub_sandbox.deliveries] == [False, True, True]


def test_helpers(payhub_sandbox, payhub_pay_as_buyer, payhub_deliver,
                 payhub_wait_for_notification):
    with pytest.raises(TradeNotFoundError):
        payhub_pay_as_buyer("NOPE")
    assert payhub_deliver() == []
    assert payhub_deliver(force=True) == []
    with pytest.raises(TimeoutError, match="no notification matched"):
        payhub_wait_for_notification(timeout=0.05)
"""

LIVE_TESTS = """
import time

import httpx
from payhub import Money, PaymentRequest, PaymentState


def test_live_server_and_background_delivery(payhub_sandbox_live, payhub_sandbox_hub):
    live = payhub_sandbox_live
    assert live.url.startswith("http://127.0.0.1:")
    assert live.gateway_url == live.url + "/gateway.do"
    payhub_sandbox_hub.pay(PaymentRequest(out_trade_no="L1", amount=Money(500),
                                          subject="gift card", method="qr", channel="alipay"))
    with httpx.Client(base_url=live.url, timeout=5) as http:
        assert "L1" in http.get("/").text
        paid = http.post("/_control/alipay/trades/L1/pay", json={"app_id": "2021000000000001"})
        assert paid.status_code == 200, paid.text
    deadline = time.monotonic() + 5
    while payhub_sandbox_hub.store.payment("L1").status is not PaymentState.PAID:
        assert time.monotonic() < deadline, live.sandbox.deliveries
        time.sleep(0.02)
"""

RESPONSES_TESTS = '''
import base64
import json
from datetime import datetime, timedelta, timezone

import httpx
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from payhub_sandbox.pytest_plugin import ALIPAY_APP_ID, ALIPAY_SELLER_ID

CHINA = timezone(timedelta(hours=8))


class TinyAlipay:
    """What a shop on another SDK does: form POST with requests, RSA2, raw-node verify."""

    def __init__(self, gateway, private_key, alipay_public_pem):
        self.gateway = gateway
        self.key = private_key
        self.alipay = serialization.load_pem_public_key(alipay_public_pem.encode())

    def call(self, method, biz, **extra):
        params = {"app_id": ALIPAY_APP_ID, "method": method, "format": "JSON",
                  "charset": "utf-8", "sign_type": "RSA2", "version": "1.0",
                  "timestamp": datetime.now(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                  "biz_content": json.dumps(biz, ensure_ascii=False), **extra}
        content = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        signature = self.key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())
        params["sign"] = base64.b64encode(signature).decode()
        response = requests.post(self.gateway, data=params, timeout=5)
        text = response.text
        name = method.replace(".", "_") + "_response"
        start = text.index(f\'"{name}":\') + len(name) + 3
        end = text.rindex(\',"sign":"\')
        node = text[start:end]
        self.alipay.verify(base64.b64decode(json.loads(text)["sign"]), node.encode(),
                           padding.PKCS1v15(), hashes.SHA256())
        return json.loads(node)


def test_a_requests_based_client(payhub_sandbox_responses, payhub_sandbox, payhub_sandbox_keys,
                                 payhub_sandbox_notify, payhub_pay_as_buyer,
                                 payhub_wait_for_notification):
    payhub_sandbox.add_alipay_merchant(
        ALIPAY_APP_ID, payhub_sandbox_keys.merchant_public_pem, ALIPAY_SELLER_ID)
    received = []

    def shop(request):
        received.append(request.read())
        return httpx.Response(200, text="success")

    payhub_sandbox_notify.mount_handler("http://shop.test/notify", shop)
    alipay = TinyAlipay(payhub_sandbox_responses.gateway_url, payhub_sandbox_keys.merchant,
                        payhub_sandbox.alipay_public_key_pem)
    created = alipay.call("alipay.trade.precreate",
                          {"out_trade_no": "Q1", "total_amount": "9.90", "subject": "礼品卡"},
                          notify_url="http://shop.test/notify")
    assert created["code"] == "10000", created
    # the cashier page, followed by requests too
    page = requests.get(created["qr_code"], timeout=5)
    assert page.status_code == 200 and "9.90" in page.text
    payhub_pay_as_buyer("Q1")
    queried = alipay.call("alipay.trade.query", {"out_trade_no": "Q1"})
    assert (queried["trade_status"], queried["total_amount"]) == ("TRADE_SUCCESS", "9.90")
    attempt = payhub_wait_for_notification("Q1")
    assert attempt.acknowledged
    assert b"trade_status=TRADE_SUCCESS" in received[0]
    refused = alipay.call("alipay.trade.refund", {"out_trade_no": "Q1", "refund_amount": "20"})
    assert refused["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
'''

NAMES_TESTS = """
from pathlib import Path

import pytest

@pytest.fixture
def sandbox():
    return "the project's own"

@pytest.fixture
def hub():
    return "the project's own"

def test_own_fixtures_win(sandbox, hub, payhub_sandbox):
    assert (sandbox, hub) == ("the project's own", "the project's own")
    assert payhub_sandbox.time_factor == 60  # the default

def test_override_options(payhub_sandbox):
    pass
"""


def test_the_plugin_is_registered_by_the_entry_point(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("payhub_sandbox")
    assert plugin is not None
    assert plugin.__name__ == "payhub_sandbox.pytest_plugin"


def test_hub_and_helpers(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_shop=HUB_TESTS)
    result = pytester.runpytest_subprocess(*QUIET)
    result.assert_outcomes(passed=4)


def test_live_server(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_live=LIVE_TESTS)
    result = pytester.runpytest_subprocess(*QUIET)
    result.assert_outcomes(passed=1)


def test_responses_mount_for_requests_clients(pytester: pytest.Pytester) -> None:
    pytest.importorskip("responses")
    pytest.importorskip("requests")
    pytester.makeini(INI)
    pytester.makepyfile(test_requests_shop=RESPONSES_TESTS)
    result = pytester.runpytest_subprocess(*QUIET)
    result.assert_outcomes(passed=1)


def test_names_do_not_clash_and_options_are_overridable(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makeconftest(
        "import pytest\n\n"
        "@pytest.fixture\n"
        "def payhub_sandbox_options(request):\n"
        "    if request.node.name == 'test_override_options':\n"
        "        return {'time_factor': 5.0, 'base_url': 'http://box.test'}\n"
        "    return {'time_factor': 60.0}\n"
    )
    pytester.makepyfile(
        test_names=NAMES_TESTS.replace(
            "def test_override_options(payhub_sandbox):\n    pass",
            "def test_override_options(payhub_sandbox):\n"
            "    assert payhub_sandbox.time_factor == 5.0\n"
            "    assert payhub_sandbox.base_url == 'http://box.test'",
        )
    )
    result = pytester.runpytest_subprocess(*QUIET)
    result.assert_outcomes(passed=2)
    fixtures = pytester.runpytest_subprocess("--fixtures", *QUIET)
    for name in (
        "payhub_sandbox",
        "payhub_sandbox_app",
        "payhub_sandbox_live",
        "payhub_sandbox_hub",
        "payhub_sandbox_responses",
        "payhub_pay_as_buyer",
        "payhub_wait_for_notification",
        "payhub_deliver",
    ):
        fixtures.stdout.fnmatch_lines([f"{name}*"])


def test_the_documented_example_runs(pytester: pytest.Pytester) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"
    section = docs.read_text(encoding="utf-8").split("## pytest plugin", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    pytester.makeini(INI)
    pytester.makepyfile(test_documented=example)
    result = pytester.runpytest_subprocess(*QUIET)
    result.assert_outcomes(passed=1)


EVERY_CHANNEL_TESTS = """
from payhub import Money, PaymentRequest, PaymentState


def test_every_channel(payhub_sandbox_hub, payhub_pay_as_buyer, payhub_wait_for_notification):
    hub = payhub_sandbox_hub
    assert hub.store.dialect == "DIALECT"
    for channel, order, method in (
        ("alipay", "E-ALI-1", "qr"),
        ("wechat", "E-WX-1", "qr"),
        ("unionpay", "EUNION000001", "app"),
    ):
        hub.pay(PaymentRequest(out_trade_no=order, amount=Money(1000), subject="gift card",
                               method=method, channel=channel))
        payhub_pay_as_buyer(order, channel=channel)
        attempt = payhub_wait_for_notification(order, event_type="payment")
        assert attempt.acknowledged, attempt.response_body
        assert attempt.channel == channel
        assert hub.store.payment(order).status is PaymentState.PAID


def test_fewer_channels(payhub_sandbox, payhub_sandbox_hub):
    assert [m.app_id for m in payhub_sandbox.alipay_merchants] == ["2021000000000001"]
    assert payhub_sandbox.unionpay_merchants == []
"""

FEWER = """
import pytest

@pytest.fixture
def payhub_sandbox_hub_channels(request):
    if request.node.name == "test_fewer_channels":
        return ("alipay",)
    return ("alipay", "wechat", "unionpay")
"""


@contextmanager
def _server_database(backend: str) -> Iterator[str]:
    """A database of its own on the PostgreSQL or MySQL server the suite names."""
    variable = {"postgresql": "PAYHUB_TEST_POSTGRES_URL", "mysql": "PAYHUB_TEST_MYSQL_URL"}[backend]
    server_url = os.environ.get(variable)
    if not server_url:
        pytest.skip(f"{variable} is not set: no {backend} server to test against")
    name = f"payhub_plugin_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    server = make_url(server_url)
    admin = sa.create_engine(server)
    create, drop = (
        (f'CREATE SCHEMA "{name}"', f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        if backend == "postgresql"
        else (
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
            f"DROP DATABASE IF EXISTS `{name}`",
        )
    )
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(create)
        if backend == "postgresql":
            url = server.update_query_dict({"options": f"-csearch_path={name}"})
        else:
            url = server.set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(drop)
        admin.dispose()


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_hub_covers_every_channel_on_any_store(
    pytester: pytest.Pytester, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{pytester.path / 'shop.db'}"
        else:
            url = stack.enter_context(_server_database(backend))
        monkeypatch.setenv("PAYHUB_SANDBOX_STORE_URL", url)
        pytester.makeini(INI)
        pytester.makeconftest(FEWER)
        pytester.makepyfile(test_every=EVERY_CHANNEL_TESTS.replace("DIALECT", backend))
        result = pytester.runpytest_subprocess(*QUIET)
        result.assert_outcomes(passed=2)
