"""What UnionPay's ACP endpoints serve and answer: the transactions each endpoint
takes, ``respCode`` texts, the request fields an answer repeats, merchants and
the transactions a query finds."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from cryptography import x509

from payhub_sandbox._errors import (
    InvalidInputError,
)
from payhub_sandbox._state import Trade, TradeState
from payhub_sandbox.unionpay._pki import (
    certificate_pem,
)
from payhub_sandbox.unionpay._wire import (
    VERSION,
)

__all__ = [
    "CHANNEL",
    "ECHOED",
    "ECHO_SAFE_RE",
    "ENDPOINTS",
    "FRONT_MSG",
    "MASKED_CARD",
    "MER_ID_RE",
    "NOTIFY_MSG",
    "ORDER_ID_RE",
    "PRODUCTS",
    "QUERY_ID_RE",
    "RESP_MESSAGES",
    "SERVED",
    "SUCCESS",
    "URL_RE",
    "AcpFailure",
    "Endpoint",
    "Txn",
    "TxnKind",
    "UnionPayMerchant",
    "UnionPayReply",
    "check_mer_id",
    "echo_fields",
    "unionpay_orig_resp_code",
]

CHANNEL: Final = "unionpay"


#: ``/gateway/api/<name>`` → the endpoint's role.
ENDPOINTS: Final[Mapping[str, str]] = {
    "frontTransReq.do": "front",
    "appTransReq.do": "app",
    "backTransReq.do": "back",
    "queryTrans.do": "query",
    "fileTransfer.do": "file",
}


SUCCESS: Final = "00"


#: ``respMsg`` of each ``respCode`` the sandbox answers (ACP's wording).
RESP_MESSAGES: Final[Mapping[str, str]] = {
    "00": "成功[0000000]",
    "01": "交易失败。详情请咨询95516",
    "02": "系统未开放或暂时关闭，请稍后再试",
    "03": "交易通讯超时，请发起查询交易",
    "04": "交易状态未明，请查询对账结果",
    "05": "交易已受理，请稍后查询交易结果",
    "06": "系统繁忙，请稍后再试",
    "10": "报文格式错误",
    "11": "验证签名失败",
    "12": "重复交易",
    "13": "报文交易要素缺失",
    "31": "商户状态不正确",
    "32": "无此交易权限",
    "34": "查无此交易",
    "35": "原交易不存在或状态不正确",
    "36": "与原交易信息不符",
    "39": "交易不在受理时间范围内",
    "98": "文件不存在",
}


#: ``respMsg`` of a successful back notification, as UnionPay writes it.
NOTIFY_MSG: Final = "Success!"


#: ``respMsg`` of the front (browser) notification of UnionPay's test environment.
FRONT_MSG: Final = "success"
MER_ID_RE: Final = re.compile(r"[0-9A-Za-z]{1,32}", re.ASCII)
ORDER_ID_RE: Final = re.compile(r"[0-9A-Za-z]{8,40}", re.ASCII)
URL_RE: Final = re.compile(r"https?://[^\s]+", re.ASCII)
QUERY_ID_RE: Final = re.compile(r"[0-9A-Za-z]{1,64}", re.ASCII)
ECHO_SAFE_RE: Final = re.compile(r"[0-9A-Za-z._:\-]{1,64}", re.ASCII)


#: Request fields every answer repeats (when the request had a sane value).
ECHOED: Final = (
    "bizType",
    "txnTime",
    "txnType",
    "txnSubType",
    "accessType",
    "merId",
    "orderId",
)


MASKED_CARD: Final = "6216***********0018"


Endpoint = Literal["front", "app", "back", "query"]


TxnKind = Literal["consume", "refund", "undo"]


#: (txnType, txnSubType, bizType) each endpoint serves.
SERVED: Final[Mapping[str, frozenset[tuple[str, str, str]]]] = {
    "front": frozenset({("01", "01", "000201")}),
    "app": frozenset({("01", "01", "000201")}),
    # bizType 000000 too: what widely used clients send for refunds and undos, and
    # what UnionPay's test gateway accepted.
    "back": frozenset(
        {
            ("04", "00", "000201"),
            ("31", "00", "000201"),
            ("04", "00", "000000"),
            ("31", "00", "000000"),
        }
    ),
    "query": frozenset({("00", "00", "000000")}),
    "file": frozenset({("76", "01", "000000")}),
}


PRODUCTS: Final[Mapping[str, str]] = {"front": "frontTransReq", "app": "appTransReq"}


def unionpay_orig_resp_code(trade: Trade) -> str:
    """What a query answers as ``origRespCode`` for a consume.

    ``05`` (accepted, result not yet known) while the buyer has not paid,
    ``01`` (failed) once its ``payTimeout`` closed it unpaid, ``00`` once paid
    (refunds and undos are transactions of their own and leave it ``00``).
    """
    if trade.paid_at is not None:
        return SUCCESS
    if trade.state is TradeState.CLOSED:
        return "01"
    return "05"


@dataclass(frozen=True)
class UnionPayMerchant:
    """A registered ``merId`` and its signing certificates, by ``certId``.

    A merchant may hold several certificates (a rotation in progress); a
    request verifies with the one its ``certId`` names.
    """

    mer_id: str
    certificates: Mapping[str, x509.Certificate] = field(repr=False, compare=False)

    @property
    def cert_ids(self) -> list[str]:
        return list(self.certificates)

    def to_json(self) -> dict[str, Any]:
        return {
            "mer_id": self.mer_id,
            "cert_ids": self.cert_ids,
            "certificates": [certificate_pem(c) for c in self.certificates.values()],
        }


@dataclass(frozen=True)
class UnionPayReply:
    """What an ACP endpoint answers: a signed ``k=v&…`` body, the cashier page for a
    browser consume, or an error page for a browser consume."""

    kind: Literal["body", "cashier", "page_error"]
    body: bytes = b""
    fields: Mapping[str, str] = field(default_factory=dict)
    trade: Trade | None = None


class AcpFailure(Exception):
    """An error answer of the gateway (never escapes :class:`UnionPaySimulator`)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.message = RESP_MESSAGES[code] + (f": {detail}" if detail else "")


@dataclass(frozen=True)
class Txn:
    """One transaction as a query finds it: by ``merId`` + ``orderId``."""

    kind: TxnKind
    txn_time: str
    trade_no: str
    """The consume's ``queryId`` (for a refund or an undo: the one it refunds)."""
    query_id: str
    wire: Mapping[str, str] = field(default_factory=dict)
    """A refund's or an undo's fields, as its query and its notification show them."""


def check_mer_id(mer_id: object) -> None:
    if not isinstance(mer_id, str) or MER_ID_RE.fullmatch(mer_id) is None:
        raise InvalidInputError("mer_id must be 1-32 ASCII letters or digits")


def echo_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """The request's identification fields an answer repeats (insane values are left out,
    so an answer's ``k=v&…`` body stays parseable)."""
    echo = {
        name: fields[name]
        for name in ECHOED
        if ECHO_SAFE_RE.fullmatch(fields.get(name, "")) is not None
    }
    encoding = fields.get("encoding", "")
    echo["version"] = VERSION
    echo["encoding"] = encoding if encoding.upper() == "UTF-8" else "UTF-8"
    return echo
