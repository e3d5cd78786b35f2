"""The sandbox's split and transfer answers against samples the channels published
(``tests/fixtures/sandbox_splits/SOURCES.md``), and its Alipay certificate serials
against serials other SDKs assert for real certificates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from payhub_sandbox import ManualClock, Sandbox, create_app
from payhub_sandbox.alipay._certs import cert_sn
from sandbox_alipay_client import AlipayWireClient
from sandbox_support import APP_ID, SELLER_ID, Shop, new_trade
from sandbox_wechat_client import API_V3_KEY, APPID, MCHID, V3Client, decrypt, spare_key

FIXTURES = Path(__file__).parent.parent / "fixtures"
SAMPLES: dict[str, Any] = json.loads((FIXTURES / "sandbox_splits" / "samples.json").read_text())


def _keys(node: dict[str, Any]) -> set[str]:
    return set(node)


def test_alipay_settle_answers_have_the_published_fields(
    alipay: AlipayWireClient, sandbox: Sandbox
) -> None:
    alipay.call(
        "alipay.trade.royalty.relation.bind",
        {
            "out_request_no": "B1",
            "receiver_list": [{"type": "userId", "account": "2088111111112222"}],
        },
    )
    listed = alipay.call("alipay.trade.royalty.relation.batchquery", {"out_request_no": "Q1"})
    sample = SAMPLES["alipay_royalty_batchquery"]
    assert _keys(listed.node) - {"code", "msg"} == _keys(sample)
    # login names are Alipay's to know: the sandbox leaves them out
    assert _keys(listed.node["receiver_list"][0]) == _keys(sample["receiver_list"][0]) - {
        "login_name",
        "bind_login_name",
    }
    trade_no = new_trade(alipay, "P1", "100.00")
    sandbox.alipay.pay(APP_ID, "P1")
    sandbox.splits.faults.set("alipay", "processing_failure", count=1, seconds=0)
    settled = alipay.call(
        "alipay.trade.order.settle",
        {
            "out_request_no": "S1",
            "trade_no": trade_no,
            "royalty_parameters": [
                {"trans_in_type": "userId", "trans_in": "2088111111112222", "amount": "10.00"}
            ],
        },
    )
    assert _keys(settled.node) - {"code", "msg"} == _keys(SAMPLES["alipay_order_settle"])
    found = alipay.call(
        "alipay.trade.order.settle.query", {"out_request_no": "S1", "trade_no": trade_no}
    )
    want = SAMPLES["alipay_settle_query_fail"]
    assert _keys(found.node) - {"code", "msg"} == _keys(want)
    (detail,) = found.node["royalty_detail_list"]
    (sample,) = want["royalty_detail_list"]
    assert _keys(detail) == _keys(sample)
    assert (detail["state"], detail["error_code"], detail["error_desc"]) == (
        sample["state"],
        sample["error_code"],
        sample["error_desc"],
    )
    assert (detail["trans_out"], detail["amount"]) == (SELLER_ID, "10.00")


@pytest.mark.parametrize(
    ("name", "serial"),
    [
        # asserted in alipay/alipay-sdk-nodejs test/antcertutil.test.js (tests/fixtures/alipay)
        ("node_alipayCertPublicKey_RSA2.crt", "7513daaaa48aa3ba2e4018d84402479c"),
        ("node_appCertPublicKey_2021001161683774.crt", "866efef280dec9137a87d047ac446315"),
        # asserted in yansongda/pay tests/CertManagerTest.php
        ("yansongda_alipayAppPublicCert.crt", "e90dd23a37c5c7b616e003970817ff82"),
    ],
)
def test_certificate_serials_match_other_sdks(name: str, serial: str) -> None:
    cert = x509.load_pem_x509_certificate((FIXTURES / "alipay" / name).read_bytes())
    assert cert_sn(cert) == serial


def test_a_real_app_certificate_registers_certificate_mode(sandbox: Sandbox) -> None:
    pem = (FIXTURES / "alipay" / "node_appCertPublicKey_2021001161683774.crt").read_text()
    merchant = sandbox.add_alipay_merchant("2021001161683774", pem, "2088000000000009")
    assert merchant.app_cert_sn == "866efef280dec9137a87d047ac446315"


@pytest.fixture
def wechat_live(
    merchant_keys, platform_keys
) -> Iterator[tuple[Sandbox, Shop, V3Client, ManualClock]]:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    shop = Shop()
    box = Sandbox(
        time_factor=60,
        clock=clock,
        notify_transport=shop.transport,
        base_url="http://sandbox.test",
        alipay_platform_key=platform_keys.private,
        wechat_public_key=platform_keys.private,
        wechat_platform_key=spare_key(),
    )
    box.add_wechat_merchant(
        MCHID,
        APPID,
        "3775B6A45ACD588826D15E583A95F5DD2C3B1A7F",
        merchant_keys.public_pem,
        API_V3_KEY,
    )
    http = httpx.Client(
        transport=httpx.WSGITransport(app=create_app(box)), base_url="http://sandbox.test"
    )
    client = V3Client(
        http,
        mchid=MCHID,
        serial_no="3775B6A45ACD588826D15E583A95F5DD2C3B1A7F",
        key=merchant_keys.private,
        now=clock.now,
    )
    yield box, shop, client, clock
    http.close()
    box.stop()


def test_wechat_transfer_notification_is_laid_out_as_the_real_one(wechat_live) -> None:
    box, shop, client, _ = wechat_live
    made = client.post(
        "/v3/fund-app/mch-transfer/transfer-bills",
        {
            "appid": APPID,
            "out_bill_no": "T0001",
            "transfer_scene_id": "1005",
            "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "transfer_amount": 100,
            "transfer_remark": "佣金",
            "notify_url": "http://shop.test/wechat/transfer",
            "transfer_scene_report_infos": [
                {"info_type": "岗位类型", "info_content": "外卖员"},
                {"info_type": "报酬说明", "info_content": "7月份配送费"},
            ],
        },
    )
    assert made.status_code == 200, made.text
    assert made.json()["state"] == "WAIT_USER_CONFIRM"
    box.wechat.engine.sharing.confirm_transfer(MCHID, "T0001")
    box.deliver_due()
    (sent,) = shop.requests
    envelope = json.loads(sent.content)
    sample = SAMPLES["wechat_transfer_bill_notification_envelope"]
    assert set(envelope) == {
        "id",
        "create_time",
        "resource_type",
        "event_type",
        "summary",
        "resource",
    }
    for key in ("resource_type", "event_type", "summary"):
        assert envelope[key] == sample[key]
    assert envelope["resource"]["original_type"] == sample["resource_original_type"]
    resource = json.loads(decrypt(API_V3_KEY, envelope["resource"]))
    assert set(resource) <= set(SAMPLES["wechat_transfer_bill_notification_resource_fields"])
    assert set(resource) >= {"mchid", "out_bill_no", "transfer_bill_no", "state", "openid"}
    assert (resource["state"], resource["transfer_amount"]) == ("SUCCESS", 100)
