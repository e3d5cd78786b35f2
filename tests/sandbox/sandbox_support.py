"""Constants, a fake shop and helpers shared by the sandbox's tests."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sandbox_alipay_client import AlipayWireClient, parse_form

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
BASE_URL = "http://sandbox.test"
NOTIFY_URL = "http://shop.test/alipay/notify"
#: 2024-03-01 10:00:00 in Asia/Shanghai.
START = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)

Answer = str | int | Exception


class Shop:
    """A shop's notification endpoint on an ``httpx.MockTransport``.

    Records every request; answers from ``answers`` in order (a string is a
    200 body, an int a status with an empty body, an exception is raised),
    then ``success`` forever.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answers: list[Answer] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer: Answer = self.answers.pop(0) if self.answers else "success"
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            return httpx.Response(answer)
        return httpx.Response(200, text=answer)

    def forms(self) -> list[dict[str, str]]:
        return [parse_form(r.content) for r in self.requests]


def new_trade(
    alipay: AlipayWireClient,
    out_trade_no: str = "T1",
    amount: str = "100.00",
    subject: str = "Gift card 礼品卡",
    **extra: str,
) -> str:
    """Create a trade by precreate (with a notify_url); return its trade_no."""
    extra.setdefault("notify_url", NOTIFY_URL)
    reply = alipay.call(
        "alipay.trade.precreate",
        {"out_trade_no": out_trade_no, "total_amount": amount, "subject": subject},
        **extra,
    )
    assert reply.code == "10000", reply.node
    trade_no: str = reply.node["qr_code"].rsplit("/", 1)[1]
    return trade_no
