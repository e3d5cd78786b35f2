"""UnionPay's ZM reconciliation file, read from a real one (tests/fixtures/unionpay/SOURCES.md)."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from payhub.channels import BillStream
from payhub.channels.unionpay._bill import iter_zm_bill, parse_zm_bill, zm_fields
from payhub.errors import ProtocolError
from payhub.models import BillRecordKind

FIXTURE = Path(__file__).parent / "fixtures" / "unionpay" / "INN17071888ZM_898319849000018"
DAY = date(2017, 7, 18)


def read(content: bytes) -> list:
    return list(iter_zm_bill(io.BytesIO(content), bill_date=DAY))


def test_the_real_file_reads_every_consume_with_its_fee() -> None:
    lines = read(FIXTURE.read_bytes())
    assert len(lines) == 1207
    assert all(line.kind is BillRecordKind.PAYMENT for line in lines)
    assert sum(line.amount_minor for line in lines) == 4_727_546_394
    # every line: fee D000000000024 (0.24 charged), settled = amount - fee
    assert {line.fee_minor for line in lines} == {24}
    assert all(
        int(line.fields[16][1:]) == line.amount_minor - line.fee_minor for line in lines
    )
    first = lines[0]
    assert first.out_trade_no == "20170718215916038602200"
    assert first.channel_trade_id == "201707182159160056078"
    assert first.amount_minor == 2_500_000
    assert first.created_at == "2017-07-18 21:59:16"
    assert first.fields[27] == "898319849000018"


def test_gbk_text_fields_keep_their_byte_widths() -> None:
    lines = read(FIXTURE.read_bytes())
    assert lines[1].fields[34] == "账户充值"  # 商户自定义域, GBK: 8 bytes of 32


def test_records_carry_money_and_shanghai_times() -> None:
    records = parse_zm_bill(FIXTURE.read_bytes(), channel="unionpay", bill_date=DAY)
    assert records[0].amount.minor == 2_500_000
    assert records[0].fee is not None
    assert records[0].fee.minor == 24
    assert records[0].created_at == datetime(2017, 7, 18, 13, 59, 16, tzinfo=UTC)
    assert records[0].raw["商户订单号"] == "20170718215916038602200"


def test_a_zip_as_file_transfer_serves_it_is_read_from_its_zm_member(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("INN17071888ZME_898319849000018", b"")
        archive.writestr("INN17071888ZM_898319849000018", FIXTURE.read_bytes())
    path = tmp_path / "898319849000018_20170718.zip"
    path.write_bytes(buffer.getvalue())
    reader = lambda file: iter_zm_bill(file, bill_date=DAY)  # noqa: E731
    with BillStream.from_path(path, reader, channel="unionpay", bill_date=DAY) as stream:
        assert sum(1 for _ in stream.lines()) == 1207
        assert sum(1 for _ in stream.lines()) == 1207  # read again from the start


def test_a_refund_line_is_negative_and_names_the_refund() -> None:
    line = FIXTURE.read_bytes().split(b"\n")[0]
    fields = zm_fields(line)
    # the same line as a refund (交易代码 S30, txnType 04) of that consume
    refund = bytearray(line)
    refund[0:3] = b"S30"
    start = sum(w + 1 for w in (3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15))
    refund[start : start + 2] = b"04"
    fee_at = sum(w + 1 for w in (3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10))
    refund[fee_at : fee_at + 13] = b"C000000000024"
    (got,) = read(bytes(refund) + b"\r\n")
    assert got.kind is BillRecordKind.REFUND
    assert got.amount_minor == -2_500_000
    assert got.fee_minor == -24
    assert got.out_refund_no == fields[11]


@pytest.mark.parametrize(
    ("mangle", "why"),
    [
        (lambda line: line[:-1], "bytes"),
        (lambda line: line[:36] + b"X" + line[37:], "time"),
        (lambda line: line[:66] + b"00000000000X" + line[78:], "交易金额"),
        (lambda line: line.replace(b"D000000000024", b"X000000000024"), "商户手续费"),
    ],
)
def test_a_malformed_line_refuses_the_bill(mangle, why: str) -> None:
    lines = FIXTURE.read_bytes().split(b"\n")
    content = b"\n".join([lines[0], mangle(lines[1]), lines[2]])
    with pytest.raises(ProtocolError, match=why):
        read(content)


def test_a_zip_without_a_zm_file_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("INN17071888ZME_898319849000018", b"")
    with pytest.raises(ProtocolError, match="0 ZM files"):
        read(buffer.getvalue())
