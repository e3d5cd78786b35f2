"""Alipay's account log (账务明细查询) read back from its spooled pages.

The channel keeps each checked page of ``alipay.data.bill.accountlog.query``
as JSON lines in a temporary file; reconciliation then reads them through
:func:`iter_account_log`, which pairs each payment with its fee movement.

1. Time: payhub's reader ÷ a raw baseline that reads the same file and only
   ``json.loads`` each line, same run (information; ceiling 3.0, the pairing's
   bookkeeping is the difference).
2. Memory: the peak ``tracemalloc`` size while payhub's reader walks a day of
   ``MOVEMENTS`` movements (half payments, half their fees), printed beside the
   file's size: it must not grow with the day (the pairing window holds at
   most ``PAIR_WINDOW`` payments).

Run: ``.venv/bin/python benchmarks/bench_accountlog.py [movements]``
"""

from __future__ import annotations

import json
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import IO

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, main_exit

from payhub.channels.alipay._accountlog import iter_account_log, spool_line


def _day(movements: int) -> IO[bytes]:
    file = tempfile.TemporaryFile(prefix="bench-accountlog-")  # noqa: SIM115 - returned
    for number in range(movements // 2):
        seconds = number % 86_400
        stamp = f"2026-12-01 {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        common = {"dt": stamp, "trade": f"2026120122{number:012d}", "order": f"ORDER-{number}"}
        file.write(spool_line({"id": f"L{2 * number}", "amount": 1000, "type": "交易", **common}))
        file.write(
            spool_line({"id": f"L{2 * number + 1}", "amount": -6, "type": "收费", **common})
        )
    file.flush()
    return file


def _payhub(file: IO[bytes]) -> int:
    file.seek(0)
    return sum(line.fee_minor or 0 for line in iter_account_log(file))


def _raw(file: IO[bytes]) -> int:
    file.seek(0)
    return sum(-row["amount"] for row in map(json.loads, file) if row["amount"] < 0)


def main() -> None:
    movements = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with _day(20_000) as small:
        assert _payhub(small) == _raw(small) == 60_000
        result = compare(
            "account log, 20,000 movements: payhub ÷ json.loads per line",
            lambda: _payhub(small),
            lambda: _raw(small),
            target=3.0,
            batch=1,
            rounds=10,
        )
    with _day(movements) as big:
        size = big.tell()
        tracemalloc.start()
        fees = _payhub(big)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(
        f"account log, {movements:,} movements ({size / 1e6:.0f} MB spooled): "
        f"reader peak {peak / 1e6:.1f} MB (fees {fees:,} fen)"
    )
    main_exit([result])


if __name__ == "__main__":
    main()
