"""Bills read as streams (reconciliation's input) and the pure classes of a difference.

The WeChat bill is a real one (``tests/fixtures/wechat/SOURCES.md``): its 72
refund rows add up to its own summary row, so a stream accepts it; the same
bill with one summary figure changed is refused.
"""

from __future__ import annotations

import gzip
import io
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from payhub.bill_match import (
    DiffKind,
    Repair,
    StoredPayment,
    StoredRefund,
    classify_payment,
    classify_refund,
    day_window,
    missing_at_channel,
)
from payhub.channels import BillStream
from payhub.channels._bills import decimal_minor
from payhub.channels.alipay._bill import iter_bill_archive, parse_bill_archive
from payhub.channels.wechat._bill import (
    gunzip_bill,
    iter_trade_bill,
    parse_trade_bill,
    verify_bill_file_hash,
)
from payhub.errors import AmountError, ProtocolError, SignatureError
from payhub.signing import sha1_hex
from payhub.tz import SHANGHAI

sys.path.insert(0, str(Path(__file__).parent))
from test_alipay_bill import PAYMENT_ROW, REFUND_ROW, bill_zip, detail_csv

REAL = Path(__file__).parent / "fixtures" / "wechat" / "tradebill_refund_2020-04-01.csv.gz"
DAY = date(2020, 4, 1)


def wechat_stream(data: bytes) -> BillStream:
    return BillStream(
        io.BytesIO(data), iter_trade_bill, channel="wechat", bill_date=DAY
    )


def test_a_real_bill_streams_the_same_records_as_the_list_parser() -> None:
    data = REAL.read_bytes()
    streamed = list(wechat_stream(data))
    assert len(streamed) == 72
    assert streamed == parse_trade_bill(gunzip_bill(data), channel="wechat", bill_date=DAY)
    # a stream can be read again
    assert [line.out_refund_no for line in wechat_stream(data).lines()][:1] == [
        streamed[0].out_refund_no
    ]


def _edited(old: str, new: str) -> bytes:
    text = gzip.decompress(REAL.read_bytes()).decode("utf-8")
    assert old in text
    return gzip.compress(text.replace(old, new).encode("utf-8"))


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("`-112.22000", "`-112.23000", "手续费"),  # the fee total
        ("`72,`0.00,`18705.73", "`72,`0.00,`18705.74", "退款金额"),  # the refund total
        ("`72,`0.00,`18705.73", "`71,`0.00,`18705.73", "72 rows"),  # the row count
    ],
)
def test_a_bill_whose_rows_do_not_add_up_to_its_summary_is_refused(
    old: str, new: str, match: str
) -> None:
    with pytest.raises(ProtocolError, match=match):
        list(wechat_stream(_edited(old, new)))


def test_the_hash_is_checked_over_the_decompressed_file_in_chunks() -> None:
    data = REAL.read_bytes()
    plain = gzip.decompress(data)
    verify_bill_file_hash(io.BytesIO(data), "SHA1", sha1_hex(plain).upper())
    verify_bill_file_hash(io.BytesIO(plain), "SHA1", sha1_hex(plain))  # already decoded
    with pytest.raises(SignatureError):
        verify_bill_file_hash(io.BytesIO(data), "SHA1", sha1_hex(plain + b"x"))
    with pytest.raises(ProtocolError, match="corrupt"):
        verify_bill_file_hash(io.BytesIO(data[:-40]), "SHA1", sha1_hex(plain))


def alipay(data: bytes) -> list[object]:
    return list(
        BillStream(
            io.BytesIO(data),
            lambda f: iter_bill_archive(f, max_minor=10**10),
            channel="alipay",
            bill_date=date(2024, 1, 2),
        )
    )


def test_an_alipay_zip_streams_the_same_records_as_the_list_parser() -> None:
    data = bill_zip()
    assert alipay(data) == parse_bill_archive(
        data, channel="alipay", bill_date=date(2024, 1, 2), max_minor=10**10
    )


def test_an_alipay_bill_whose_rows_do_not_add_up_to_its_totals_is_refused() -> None:
    second = PAYMENT_ROW.replace("ORDER-0001", "ORDER-0002")
    two_trades = detail_csv(PAYMENT_ROW, second, REFUND_ROW)
    with pytest.raises(ProtocolError, match="trade rows"):
        alipay(bill_zip(detail=two_trades))  # the footer says 1 trade
    no_footer = detail_csv(PAYMENT_ROW).replace("#交易合计".encode("gbk"), b"#x")
    with pytest.raises(ProtocolError, match="totals"):
        alipay(bill_zip(detail=no_footer))


def test_fen_are_read_with_integer_arithmetic_and_half_up() -> None:
    assert decimal_minor("12.30", 2) == 1230
    assert decimal_minor("-1.56000", 2) == -156
    assert decimal_minor("0.00500", 2) == 1  # half-up
    assert decimal_minor("-0.00500", 2) == -1  # away from zero on a tie
    assert decimal_minor("0.00499", 2) == 0
    assert decimal_minor("-112.22000", 6) == -112_220_000
    for bad in ("", "1,000.00", "1e3", "+1", "1.2.3", "１２"):
        with pytest.raises(AmountError):
            decimal_minor(bad, 2)
    with pytest.raises(AmountError, match="limit"):
        decimal_minor("100.01", 2, max_minor=10_000)


def test_closing_a_stream_deletes_its_file() -> None:
    stream = BillStream.spool(
        REAL.read_bytes(), iter_trade_bill, channel="wechat", bill_date=DAY
    )
    with stream:
        assert sum(1 for _ in stream) == 72
    with pytest.raises(ValueError, match="closed"):
        list(stream)


# -- the classes of a difference (pure) -----------------------------------------------


def paid(amount: int = 1000, **kw: object) -> StoredPayment:
    values: dict[str, object] = {
        "id": 1,
        "out_trade_no": "ORDER-1",
        "amount_minor": amount,
        "currency": "CNY",
        "status": "paid",
        "channel": "alipay",
        "channel_trade_id": "T1",
    }
    values.update(kw)
    return StoredPayment(**values)  # type: ignore[arg-type]


def classify(stored: StoredPayment | None, amount: int = 1000, **kw: object) -> list[object]:
    args: dict[str, object] = {
        "channel": "alipay",
        "out_trade_no": "ORDER-1",
        "channel_trade_id": "T1",
        "amount_minor": amount,
        "currency": "CNY",
        "fee_minor": 6,
        "stored": stored,
    }
    args.update(kw)
    return [d.kind for d in classify_payment(**args)]  # type: ignore[arg-type]


def test_payment_rows_are_classified() -> None:
    assert classify(paid()) == []
    assert classify(paid(), expected_fee_minor=6) == []
    assert classify(paid(), 1001) == [DiffKind.AMOUNT_OVER]
    assert classify(paid(), 999, expected_fee_minor=5) == [
        DiffKind.AMOUNT_UNDER,
        DiffKind.FEE_MISMATCH,
    ]
    assert classify(paid(currency="USD")) == [DiffKind.CURRENCY_MISMATCH]
    assert classify(None) == [DiffKind.MISSING_IN_STORE]
    assert classify(paid(status="pending")) == [DiffKind.MISSING_IN_STORE]
    assert classify(paid(status="closed")) == [DiffKind.STATUS_MISMATCH]
    assert classify(paid(channel="wechat")) == [DiffKind.STATUS_MISMATCH]
    # only a payment the store has pending can be proved by a query
    (lost,) = classify_payment(
        channel="alipay", out_trade_no="ORDER-1", channel_trade_id="T1", amount_minor=1000,
        currency="CNY", fee_minor=None, stored=paid(status="pending"),
    )
    (stranger,) = classify_payment(
        channel="alipay", out_trade_no="ORDER-1", channel_trade_id="T1", amount_minor=1000,
        currency="CNY", fee_minor=None, stored=None,
    )
    assert lost.automatic
    assert not stranger.automatic
    assert Repair.CREATE in stranger.repairs


def test_refund_rows_are_classified() -> None:
    def refund(status: str, amount: int = 500) -> list[DiffKind]:
        stored = StoredRefund(1, "R1", "ORDER-1", amount, "CNY", status, "wechat")
        return [
            d.kind
            for d in classify_refund(
                channel="wechat", out_trade_no="ORDER-1", out_refund_no="R1",
                channel_trade_id="T1", amount_minor=-500, currency="CNY", stored=stored,
            )
        ]

    assert refund("succeeded") == []
    assert refund("succeeded", 400) == [DiffKind.AMOUNT_OVER]
    assert refund("pending") == [DiffKind.MISSING_IN_STORE]
    assert refund("failed") == [DiffKind.STATUS_MISMATCH]


def test_missing_at_the_channel_only_after_the_sla() -> None:
    start, end = day_window(date(2024, 3, 1), time(0), SHANGHAI)
    assert start == datetime(2024, 3, 1, tzinfo=SHANGHAI)
    assert end - start == timedelta(days=1)
    late_start, _ = day_window(date(2024, 3, 1), time(23), SHANGHAI)
    assert late_start == datetime(2024, 2, 29, 23, tzinfo=SHANGHAI)

    def judge(now: datetime) -> object:
        return missing_at_channel(
            key="payment:ORDER-1", out_trade_no="ORDER-1", out_refund_no=None,
            amount_minor=1000, currency="CNY", bill_date=date(2024, 3, 1), now=now,
            sla_days=2, window_end=end,
        )

    assert judge(end + timedelta(days=2) - timedelta(seconds=1)) is None
    assert judge(end + timedelta(days=2)).kind is DiffKind.MISSING_AT_CHANNEL  # type: ignore[attr-defined]


def test_a_payment_without_its_ledger_entry_is_a_difference() -> None:
    assert classify(paid(), in_ledger=True) == []
    assert classify(paid(), in_ledger=None) == []  # the ledger not checked
    assert classify(paid(), in_ledger=False) == [DiffKind.MISSING_IN_LEDGER]
