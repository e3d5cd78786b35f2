"""UnionPay's merchant reconciliation file (ZM) as ``fileTransfer`` serves it.

Built from PROTOCOLS.md and the real ZM file kept under
``tests/fixtures/unionpay/`` (never through ``payhub.channels``): 42 fields of
fixed width in GBK bytes, one space between them, ``\\n`` after each line;
amounts in fen, zero-padded; 商户手续费 and 结算金额 as ``D``/``C`` and 12
digits (``D``: debited from the merchant). A consume is ``S22`` / txnType
``01``, a refund ``S30`` / ``04``, an undo ``S31`` / ``31``. The day is the
clearing day (Beijing time, turning at 23:00). The zip holds
``INN<yyMMdd>88ZM_<merId>``; ``fileContent`` is the zip DEFLATE-compressed
(zlib) and base64-encoded, ``fileName`` ``<merId>_<yyyyMMdd>.zip``.
"""

from __future__ import annotations

import base64
import io
import zipfile
import zlib
from collections.abc import Sequence
from datetime import date, datetime
from typing import Final

from payhub.money import Money
from payhub_sandbox._clock import CHINA_TZ
from payhub_sandbox._state import Refund, Trade
from payhub_sandbox.unionpay._wire import settle_date

__all__ = ["ZM_WIDTHS", "zm_file", "zm_file_content", "zm_file_name", "zm_zip"]

ZM_WIDTHS: Final = (
    3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15, 2, 2,
    6, 2, 4, 32, 1, 21, 15, 1, 15, 32, 13, 13, 8, 32, 13, 13, 12, 2, 1, 32, 98,
)  # fmt: skip
#: what the real file carries in the fields the sandbox has no value for
_ACQUIRER, _SENDER, _MCC, _TERMINAL_TYPE = "48022901", "00040000", "4900", "07"
_CARD: Final = "622280*********0000"


def _fit(value: str, width: int, *, digits: bool) -> bytes:
    raw = value.encode("gbk", errors="replace")
    if len(raw) > width:
        raw = raw[-width:] if digits else raw[:width]
    return raw.rjust(width, b"0") if digits else raw.ljust(width, b" ")


def _signed(value: Money, debit: bool) -> str:
    return ("D" if debit else "C") + f"{value.minor:012d}"


def _line(
    *,
    code: str,
    txn_type: str,
    at: datetime,
    amount: Money,
    fee: Money,
    fee_debited: bool,
    query_id: str,
    order_id: str,
    orig_query_id: str,
    orig_order_id: str,
    mer_id: str,
    trace: int,
) -> bytes:
    local = at.astimezone(CHINA_TZ)
    settled = amount - fee if fee_debited else amount + fee
    text: dict[int, tuple[str, bool]] = {
        0: (code, False),
        1: (_ACQUIRER, False),
        2: (_SENDER, False),
        3: (f"{trace % 1_000_000:06d}", True),
        4: (f"{local:%m%d%H%M%S}", True),
        5: (_CARD, False),
        6: (str(amount.minor), True),
        7: (_MCC, False),
        8: (_TERMINAL_TYPE, False),
        9: (query_id, False),
        10: ("05", False),
        11: (order_id, False),
        12: ("01", False),
        15: (_signed(fee, fee_debited), False),
        16: (_signed(settled, not fee_debited), False),
        17: ("0201", False),
        19: (txn_type, False),
        21: ("000201", False),
        26: (orig_query_id, False),
        27: (mer_id, False),
        29: ("000000000000000", False),
        31: ("000000000000", False),
        32: (_signed(settled, not fee_debited), False),
        33: ("01080209", False),
        35: ("000000000000", False),
        36: ("000000000000", False),
        37: ("00000000000", False),
        39: ("7", False),
        40: (orig_order_id, False),
    }
    fields = [
        _fit(text[i][0], width, digits=text[i][1]) if i in text else b" " * width
        for i, width in enumerate(ZM_WIDTHS)
    ]
    return b" ".join(fields)


def zm_file(mer_id: str, day: date, trades: Sequence[Trade], refunds: Sequence[Refund]) -> bytes:
    """The ZM file of ``mer_id`` for the clearing day ``day``."""
    trades = [t for t in trades if t.merchant_id == mer_id]
    by_no = {t.trade_no: t for t in trades}
    lines: list[bytes] = []
    paid = sorted(
        (t for t in trades if t.paid_at is not None and settle_date(t.paid_at) == day),
        key=lambda t: (t.paid_at, t.trade_no),
    )
    for trace, trade in enumerate(paid, start=1):
        assert trade.paid_at is not None
        lines.append(
            _line(
                code="S22",
                txn_type="01",
                at=trade.paid_at,
                amount=trade.amount,
                fee=trade.fee,
                fee_debited=True,
                query_id=trade.trade_no,
                order_id=trade.out_trade_no,
                orig_query_id="",
                orig_order_id="",
                mer_id=mer_id,
                trace=trace,
            )
        )
    done = sorted(
        (
            r
            for r in refunds
            if r.merchant_id == mer_id
            and r.status == "SUCCESS"
            # a UnionPay refund succeeds when accepted: its time is its creation's
            and settle_date(r.settled_at or r.created_at) == day
            and r.trade_no in by_no
        ),
        key=lambda r: (r.settled_at or r.created_at, r.refund_no),
    )
    for trace, refund in enumerate(done, start=len(lines) + 1):
        undo = refund.reason == "undo"
        lines.append(
            _line(
                code="S31" if undo else "S30",
                txn_type="31" if undo else "04",
                at=refund.settled_at or refund.created_at,
                amount=refund.amount,
                fee=refund.fee_returned,
                fee_debited=False,
                query_id=refund.refund_no,
                order_id=refund.out_refund_no,
                orig_query_id=refund.trade_no,
                orig_order_id=refund.out_trade_no,
                mer_id=mer_id,
                trace=trace,
            )
        )
    return b"".join(line + b"\n" for line in lines)


def zm_file_name(mer_id: str, day: date) -> str:
    return f"INN{day:%y%m%d}88ZM_{mer_id}"


def zm_zip(mer_id: str, day: date, content: bytes) -> bytes:
    """The zip ``fileTransfer`` sends: the ZM file and an empty ZME file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zm_file_name(mer_id, day), content)
        archive.writestr(f"INN{day:%y%m%d}88ZME_{mer_id}", b"")
    return buffer.getvalue()


def zm_file_content(archive: bytes) -> str:
    """``fileContent``: the zip, DEFLATE-compressed (zlib) and base64-encoded."""
    return base64.b64encode(zlib.compress(archive)).decode("ascii")
