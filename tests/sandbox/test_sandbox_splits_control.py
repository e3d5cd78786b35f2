"""The control API and trigger scenarios of splits (分账) and transfers.

Faults, balances and known payee names are set over HTTP, as a test or a QA
engineer on a running sandbox sets them; bad input is a 400 with the
sandbox's error JSON and changes nothing.
"""

from __future__ import annotations

import httpx
import pytest
from payhub_sandbox import Sandbox
from sandbox_alipay_client import AlipayWireClient
from sandbox_support import APP_ID

from payhub.money import Money
from payhub.signing import alipay_cert_sn, load_certificates


def test_split_faults_set_list_clear(http: httpx.Client, sandbox: Sandbox) -> None:
    made = http.post(
        "/_control/splits/faults",
        json={"channel": "alipay", "mode": "processing_failure", "count": 2, "seconds": 30},
    )
    assert made.status_code == 201, made.text
    assert made.json()["mode"] == "processing_failure"
    http.post("/_control/splits/faults", json={"channel": "wechat", "mode": "unverified_name"})
    listed = http.get("/_control/splits/faults").json()
    assert {(f["channel"], f["mode"], f["count"]) for f in listed} == {
        ("alipay", "processing_failure", 2),
        ("wechat", "unverified_name", None),
    }
    assert http.delete("/_control/splits/faults?channel=alipay").json() == {"cleared": 1}
    assert [f.channel for f in sandbox.splits.faults.list()] == ["wechat"]


@pytest.mark.parametrize(
    "body",
    [
        {"channel": "unionpay", "mode": "processing_success"},
        {"channel": "alipay", "mode": "explode"},
        {"channel": "alipay", "mode": "unverified_name", "seconds": 5},
        {"channel": "alipay", "mode": "processing_success", "seconds": -1},
        {"channel": "alipay", "mode": "processing_success", "count": 0},
        {"channel": "alipay", "mode": "processing_success", "count": True},
    ],
)
def test_bad_split_faults_are_refused(http: httpx.Client, sandbox: Sandbox, body) -> None:
    answer = http.post("/_control/splits/faults", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"] == "INVALID_INPUT"
    assert sandbox.splits.faults.list() == []


def test_balance_and_payees(http: httpx.Client, sandbox: Sandbox) -> None:
    got = http.get("/_control/splits/balance?channel=alipay&merchant_id=" + APP_ID).json()
    assert got["amount"] == 100_000_000  # the default: 1,000,000.00 CNY
    put = http.put(
        "/_control/splits/balance",
        json={"channel": "alipay", "merchant_id": APP_ID, "amount": 12345},
    )
    assert put.json()["amount_text"] == "123.45"
    assert sandbox.splits.balance("alipay", APP_ID) == Money(12345)
    for bad in (-1, 1.5, "100", True):
        refused = http.put(
            "/_control/splits/balance",
            json={"channel": "alipay", "merchant_id": APP_ID, "amount": bad},
        )
        assert refused.status_code == 400
    assert sandbox.splits.balance("alipay", APP_ID) == Money(12345)
    added = http.post(
        "/_control/splits/payees",
        json={"channel": "alipay", "account": "2088000000000011", "name": "李四"},
    )
    assert added.status_code == 201
    assert "李四" not in added.text  # names are never echoed
    assert not sandbox.splits.name_matches("alipay", "2088000000000011", "王五")
    assert sandbox.splits.name_matches("alipay", "2088000000000011", "李四")


def test_state_listings_show_no_names(http: httpx.Client, alipay: AlipayWireClient) -> None:
    bound = alipay.call(
        "alipay.trade.royalty.relation.bind",
        {
            "out_request_no": "B1",
            "receiver_list": [{"type": "loginName", "account": "a@example.com", "name": "张三"}],
        },
    )
    assert bound.code == "10000", bound.node
    listing = http.get(f"/_control/splits/alipay?app_id={APP_ID}")
    assert listing.json()["receivers"] == [
        {"type": "loginName", "account": "a@example.com", "memo": None}
    ]
    assert "张三" not in listing.text
    assert http.get("/_control/splits/wechat").json() == {
        "receivers": [],
        "orders": [],
        "transfers": [],
    }


def test_certificates_over_the_control_api(
    http: httpx.Client, sandbox: Sandbox, merchant_keys
) -> None:
    certs = http.get("/_control/alipay/certificates").json()
    assert certs["alipay_cert"] == sandbox.alipay_cert_pem
    issued = http.post(
        "/_control/alipay/app-cert",
        json={"app_id": APP_ID, "public_key": merchant_keys.public_pem},
    )
    assert issued.status_code == 201
    added = http.post(
        "/_control/alipay/merchants",
        json={
            "app_id": APP_ID,
            "public_key": issued.json()["app_cert"],
            "seller_id": "2088000000000001",
        },
    )
    assert added.status_code == 201, added.text
    assert added.json()["app_cert_sn"] == alipay_cert_sn(
        load_certificates(issued.json()["app_cert"])[0]
    )
    bad = http.post("/_control/alipay/app-cert", json={"app_id": APP_ID, "public_key": "x"})
    assert bad.status_code == 400


# -- trigger scenarios ------------------------------------------------------------


def test_trigger_split_and_transfer_faults(http: httpx.Client, sandbox: Sandbox) -> None:
    names = {s["scenario"] for s in http.get("/_control/trigger").json()}
    assert {"split-delayed", "transfer-failed", "transfer-confirmed"} <= names
    done = http.post(
        "/_control/trigger",
        json={"scenario": "transfer-insufficient-balance", "channel": "alipay", "count": 3},
    )
    assert done.status_code == 200, done.text
    assert done.json()["split_fault"]["count"] == 3
    delayed = http.post(
        "/_control/trigger",
        json={"scenario": "split-delayed", "channel": "wechat", "seconds": 90},
    )
    assert delayed.json()["split_fault"]["seconds"] == 90
    assert {(f.channel, f.mode.value) for f in sandbox.splits.faults.list()} == {
        ("alipay", "insufficient_balance"),
        ("wechat", "processing_success"),
    }
    refused = http.post(
        "/_control/trigger", json={"scenario": "split-failed", "channel": "unionpay"}
    )
    assert refused.status_code == 400
    nothing = http.post(
        "/_control/trigger", json={"scenario": "transfer-confirmed", "channel": "wechat"}
    )
    assert nothing.status_code == 404
