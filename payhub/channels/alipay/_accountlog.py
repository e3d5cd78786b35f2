"""Alipay's fund flow through the account-log API (账务明细查询,
``alipay.data.bill.accountlog.query``), paged and streamed.

The API answers the movements of the merchant's Alipay account booked in a
time range (``start_time`` to ``end_time``, ``yyyy-MM-dd HH:mm:ss``
Asia/Shanghai, left-closed right-open, at most 31 days apart), one page at a
time (``page_no`` from 1, ``page_size`` 1000-2000, 2000 by default), with the
number of movements in the range (``total_size``) and the page's
``detail_list`` (absent when there is none). Each movement
(``AccountLogItemResult``) is strings only: ``account_log_id`` (the
account's flow number), ``trans_dt`` (when booked), ``trans_amount`` (yuan,
signed), ``direction`` (``收入`` when the amount is positive, ``支出`` when
it is negative), ``type`` (``交易``, ``收费``, ``退款``…: "for reference,
may change"), ``alipay_order_no``, ``merchant_order_no`` (the
``out_trade_no``), ``merchant_out_refund_no`` (the refund's
``out_request_no``), ``balance``, ``biz_desc``, ``biz_orig_no``... (facts
from the official SDKs' models: alipay-sdk-java-all ``v3`` ``AccountLogItemResult``
and ``AlipayDataBillAccountlogQueryResponseModel``, alipay-sdk-php-all
``v3/docs/Api/AlipayDataBillAccountlogApi.md``; see
``tests/fixtures/alipay/SOURCES.md``).

Unlike WeChat Pay's fund-flow bill, a payment is two movements here: its
money coming in (``交易``, ``收入``) and the fee Alipay kept going out apart
(``收费`` or ``服务费``, ``支出``, the same order). :func:`iter_account_log`
pairs them back into one :class:`~payhub.channels.FundFlowLine` per
payment, what came in less the fee (as WeChat's line is), the fee stated
in ``fee_minor`` and the payment's amount in ``total_minor``. Pairing looks
at a window of :data:`PAIR_WINDOW` movements around each payment (Alipay
books a fee with its payment), so memory stays bounded however long the day.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta
from typing import IO, Any, Final

from payhub.channels._bills import decimal_minor
from payhub.channels._fundflow import FundFlowLine
from payhub.errors import ProtocolError
from payhub.models import BillRecordKind

__all__ = [
    "ACCOUNT_LOG_METHOD",
    "PAGE_SIZE",
    "PAIR_WINDOW",
    "day_window",
    "iter_account_log",
    "read_page",
    "spool_line",
]

ACCOUNT_LOG_METHOD: Final = "alipay.data.bill.accountlog.query"
#: The largest page the API serves (``page_size`` 1000-2000).
PAGE_SIZE: Final = 2000
#: How many movements apart a payment and its fee may be listed and still be paired.
PAIR_WINDOW: Final = PAGE_SIZE

_INCOME, _EXPENSE = "收入", "支出"
_PAYMENT_TYPE: Final = "交易"
_FEE_TYPES: Final = frozenset({"收费", "服务费"})
_REFUND_TYPE: Final = "退款"
_AMOUNT_RE: Final = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,2})?", re.ASCII)
_TIME_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}", re.ASCII)
_COUNT_RE: Final = re.compile(r"[0-9]{1,12}", re.ASCII)
_REQUIRED: Final = ("account_log_id", "trans_dt", "trans_amount", "direction", "type")
_OPTIONAL: Final = ("alipay_order_no", "merchant_order_no", "merchant_out_refund_no")
_WHAT: Final = f"alipay {ACCOUNT_LOG_METHOD}"


def day_window(bill_date: date) -> tuple[str, str]:
    """``start_time`` and ``end_time`` of one day, Asia/Shanghai: 00:00:00 to the
    next day's 00:00:00 (the API's range is left-closed, right-open)."""
    start = datetime.combine(bill_date, time(0))
    return f"{start:%Y-%m-%d %H:%M:%S}", f"{start + timedelta(days=1):%Y-%m-%d %H:%M:%S}"


def read_page(
    node: Mapping[str, Any],
    *,
    page_no: int,
    window: tuple[str, str],
    max_minor: int,
) -> tuple[int, list[dict[str, Any]]]:
    """``total_size`` and the movements of one answered page, each checked and
    kept as the fields payhub reads (``trans_amount`` in fen); a
    :class:`ProtocolError` for anything malformed."""
    echoed = node.get("page_no")
    if echoed is not None and str(echoed) != str(page_no):
        raise ProtocolError(f"{_WHAT}: asked for page {page_no}, answered page {_short(echoed)}")
    total = node.get("total_size")
    if not isinstance(total, str | int) or not _COUNT_RE.fullmatch(str(total)):
        raise ProtocolError(f"{_WHAT}: page {page_no} holds no valid total_size")
    details = node.get("detail_list", [])
    if not isinstance(details, list):
        raise ProtocolError(f"{_WHAT}: page {page_no}'s detail_list is not a list")
    items = [
        _item(detail, f"page {page_no} item {number}", window, max_minor)
        for number, detail in enumerate(details, start=1)
    ]
    return int(total), items


def _item(detail: object, where: str, window: tuple[str, str], max_minor: int) -> dict[str, Any]:
    if not isinstance(detail, dict):
        raise ProtocolError(f"{_WHAT}: {where} is not an object")
    for name in _REQUIRED:
        value = detail.get(name)
        if not isinstance(value, str) or not value:
            raise ProtocolError(f"{_WHAT}: {where} has no {name}")
    for name in _OPTIONAL:
        value = detail.get(name)
        if value is not None and not isinstance(value, str):
            raise ProtocolError(f"{_WHAT}: {where}'s {name} is not a string")
    text, direction, booked = detail["trans_amount"], detail["direction"], detail["trans_dt"]
    if not _AMOUNT_RE.fullmatch(text):
        raise ProtocolError(f"{_WHAT}: {where}'s trans_amount {_short(text)} is not an amount")
    amount = decimal_minor(text, 2)
    if abs(amount) > max_minor:
        raise ProtocolError(f"{_WHAT}: {where}'s trans_amount exceeds the channel limit")
    if direction not in (_INCOME, _EXPENSE):
        raise ProtocolError(f"{_WHAT}: {where}'s direction {_short(direction)} is unknown")
    if (direction == _INCOME and amount < 0) or (direction == _EXPENSE and amount > 0):
        raise ProtocolError(f"{_WHAT}: {where}'s direction {direction} disagrees with its amount")
    if not _TIME_RE.fullmatch(booked) or not window[0] <= booked < window[1]:
        raise ProtocolError(f"{_WHAT}: {where} was booked outside the day asked for")
    return {
        "id": detail["account_log_id"],
        "dt": booked,
        "amount": amount,
        "type": detail["type"],
        "trade": detail.get("alipay_order_no") or "",
        "order": detail.get("merchant_order_no") or "",
        "refund": detail.get("merchant_out_refund_no") or "",
    }


def _short(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 24 else text[:24] + "…")


class _Payment:
    """A payment's movements seen so far: its income and the fees charged on it."""

    __slots__ = ("fees", "income", "seen")

    def __init__(self, seen: int) -> None:
        self.seen = seen
        self.income: dict[str, Any] | None = None
        self.fees: list[dict[str, Any]] = []


def iter_account_log(file: IO[bytes]) -> Iterator[FundFlowLine]:
    """The lines of a spooled account log (one checked movement per JSON line,
    as :func:`read_page` keeps them): payments with their fees paired, refunds,
    and every other movement as a line of no kind."""
    pending: OrderedDict[int, _Payment] = OrderedDict()
    by_order: dict[str, int] = {}
    by_trade: dict[str, int] = {}

    def close(key: int) -> Iterator[FundFlowLine]:
        group = pending.pop(key)
        for index, value in ((by_order, "order"), (by_trade, "trade")):
            for row in (group.income, *group.fees):
                if row is not None and index.get(row[value]) == key:
                    del index[row[value]]
        yield from _payment_lines(group)

    for number, raw in enumerate(file, start=1):
        row = json.loads(raw)
        while pending and number - next(iter(pending.values())).seen > PAIR_WINDOW:
            yield from close(next(iter(pending)))
        amount, kind = row["amount"], row["type"]
        if kind == _PAYMENT_TYPE and amount > 0 and row["order"]:
            key = by_order.get(row["order"])
            if key is None and row["trade"]:
                key = by_trade.get(row["trade"])  # its fee came first, naming the trade
            if key is not None and pending[key].income is not None:
                yield from close(key)  # the same order paid in again: a payment of its own
                key = None
            if key is None:
                key = number
                pending[key] = _Payment(number)
            pending[key].income = row
            by_order[row["order"]] = key
            if row["trade"]:
                by_trade[row["trade"]] = key
        elif kind in _FEE_TYPES and amount < 0 and (row["order"] or row["trade"]):
            key = by_order.get(row["order"]) if row["order"] else None
            if key is None and row["trade"]:
                key = by_trade.get(row["trade"])
            if key is None:
                key = number
                pending[key] = _Payment(number)
            pending[key].fees.append(row)
            if row["order"]:
                by_order.setdefault(row["order"], key)
            if row["trade"]:
                by_trade.setdefault(row["trade"], key)
        else:
            yield _line(row)
    while pending:
        yield from close(next(iter(pending)))


def _payment_lines(group: _Payment) -> Iterator[FundFlowLine]:
    income = group.income
    if income is None:  # fees of no payment in the window: each one a movement of its own
        yield from (_line(fee) for fee in group.fees)
        return
    fee = -sum(row["amount"] for row in group.fees)
    yield FundFlowLine(
        BillRecordKind.PAYMENT,
        income["dt"],
        income["trade"],
        income["id"],
        income["type"],
        income["amount"] - fee,
        "CNY",
        income["order"],
        fee,
        income["amount"],
    )


def _line(row: Mapping[str, Any]) -> FundFlowLine:
    """A movement on its own: a refund (its money out) or anything else (no kind)."""
    refund = row["type"] == _REFUND_TYPE and row["amount"] < 0
    return FundFlowLine(
        BillRecordKind.REFUND if refund else None,
        row["dt"],
        row["trade"],
        row["id"],
        row["type"],
        row["amount"],
        "CNY",
        row["refund"] if refund else (row["order"] or row["refund"]),
        None,
        -row["amount"] if refund else None,
    )


def spool_line(item: Mapping[str, Any]) -> bytes:
    """One checked movement as the JSON line :func:`iter_account_log` reads."""
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
