"""WeChat Pay's fund-flow bill read row by row, held to its summary.

Built from the real bill in ``tests/fixtures/wechat`` (gunsluo/wechatpay-go's
test data; see README.md there): its two refund rows, with the summary row
made to count what the file holds, then broken one way at a time.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from payhub.channels import FundFlowLine
from payhub.channels.wechat._fundflow import iter_fundflow_bill
from payhub.errors import ProtocolError

FIXTURES = Path(__file__).parent / "fixtures" / "wechat"
REAL = FIXTURES / "fundflowbill_basic_2021-02-01_gunsluo.csv.gz"


def real_lines() -> list[str]:
    return gzip.decompress(REAL.read_bytes()).decode("utf-8").splitlines()


def consistent() -> list[str]:
    """The real bill with a summary that counts its two rows (two refunds out)."""
    lines = real_lines()
    lines[-1] = "`2,`0,`0.00,`2,`0.02"
    return lines


def read(lines: list[str], *, compress: bool = False) -> list[FundFlowLine]:
    data = ("\r\n".join(lines) + "\r\n").encode("utf-8")
    if compress:
        data = gzip.compress(data)
    return list(iter_fundflow_bill(io.BytesIO(data)))


@pytest.mark.parametrize("compress", [False, True])
def test_a_bill_that_adds_up_is_read(compress: bool) -> None:
    rows = read(consistent(), compress=compress)
    assert len(rows) == 2
    assert [r.amount_minor for r in rows] == [-1, -1]


def test_a_bom_before_the_header_is_accepted() -> None:
    lines = consistent()
    lines[0] = "\ufeff" + lines[0]
    assert len(read(lines)) == 2


def test_a_refund_whose_note_disagrees_with_what_left_is_refused() -> None:
    lines = consistent()
    note, wrong = "退款总金额0.01元;含手续费0.00元", "退款总金额0.02元;含手续费0.00元"
    lines[1] = lines[1].replace(note, wrong)
    with pytest.raises(ProtocolError, match="total less its fee"):
        read(lines)


def test_totals_that_do_not_add_up_are_refused() -> None:
    lines = consistent()
    lines[-1] = "`2,`0,`0.00,`2,`0.03"
    with pytest.raises(ProtocolError, match="支出金额"):
        read(lines)


def test_another_header_is_refused() -> None:
    lines = consistent()
    lines[0] = lines[0].replace("业务凭证号", "凭证号")
    with pytest.raises(ProtocolError, match="header"):
        read(lines)


def test_a_row_of_the_wrong_width_or_side_is_refused() -> None:
    lines = consistent()
    short = lines.copy()
    short[1] = short[1].rsplit(",`", 1)[0]
    with pytest.raises(ProtocolError, match="10 fields"):
        read(short)
    side = lines.copy()
    side[1] = side[1].replace("`支出", "`其他")
    with pytest.raises(ProtocolError, match="unknown side"):
        read(side)


def test_a_missing_summary_or_a_bad_amount_is_refused() -> None:
    with pytest.raises(ProtocolError, match="summary"):
        read(consistent()[:-2])
    lines = consistent()
    lines[1] = lines[1].replace("`0.01,`0.22", "`0.0x,`0.22")
    with pytest.raises(ProtocolError, match="line 2"):
        read(lines)


def test_a_corrupt_gzip_is_refused() -> None:
    data = gzip.compress(("\r\n".join(consistent()) + "\r\n").encode())[:40]
    with pytest.raises(ProtocolError):
        list(iter_fundflow_bill(io.BytesIO(data)))
