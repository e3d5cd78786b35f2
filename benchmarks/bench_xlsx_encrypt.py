"""Encrypting one XLSX: payhub's streaming writer against msoffcrypto-tool's, alone.

    python benchmarks/bench_xlsx_encrypt.py [--rows 1000000] [--rounds 3]

Writes one plain workbook of N balance-detail-like rows (XlsxWriter, constant
memory: times, ids as text, amounts as numbers), then, each round, encrypts it
in a fresh interpreter with ``payhub.reports._crypto.encrypt_xlsx`` and with
msoffcrypto-tool's ``OOXMLFile.encrypt`` (what payhub used before), order
swapped every round. Prints each side's CPU time, wall time and peak RSS
(``VmHWM``, the whole process: interpreter and imports included, both sides
import both libraries so the baseline is the same) and the medians. The cost
of encryption inside a whole export is ``bench_reports.py``'s ratio; this one
isolates it (the export's CPU time is the denominator to compare with).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PASSWORD = "bench-password"


def plain_workbook(path: Path, rows: int) -> None:
    import xlsxwriter  # noqa: PLC0415

    start = datetime(2026, 1, 1, tzinfo=UTC)
    with xlsxwriter.Workbook(str(path), {"constant_memory": True}) as book:
        sheet = book.add_worksheet("余额明细")
        money = book.add_format({"num_format": "0.00"})
        sheet.write_row(0, 0, ["时间", "流水号", "摘要", "收入", "支出", "余额"])
        balance = 0
        for n in range(rows):
            amount = 100 + n % 100_000
            balance += amount
            row = n + 1
            when = (start + timedelta(seconds=n)).strftime("%Y-%m-%d %H:%M:%S")
            sheet.write_string(row, 0, when)
            sheet.write_string(row, 1, f"B{n:012d}")
            sheet.write_string(row, 2, "payment")
            sheet.write_number(row, 3, amount / 100, money)
            sheet.write_number(row, 4, 0, money)
            sheet.write_number(row, 5, balance / 100, money)


def child(side: str, source: Path) -> None:
    from msoffcrypto.format.ooxml import OOXMLFile  # noqa: PLC0415

    from payhub.reports._crypto import encrypt_xlsx  # noqa: PLC0415

    target = source.with_suffix(f".{side}.xlsx")
    began, cpu = time.perf_counter(), time.process_time()
    if side == "payhub":
        encrypt_xlsx(source, target, PASSWORD)
    else:
        with source.open("rb") as plain, target.open("wb") as out:
            OOXMLFile(plain).encrypt(PASSWORD, out)
    wall, used = time.perf_counter() - began, time.process_time() - cpu
    target.unlink()
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    print(f"{wall:.6f} {used:.6f} {peak:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["payhub", "msoffcrypto"], help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.source))
        return
    with tempfile.TemporaryDirectory(prefix="bench-xlsx-encrypt-") as folder:
        source = Path(folder) / "plain.xlsx"
        began = time.perf_counter()
        plain_workbook(source, args.rows)
        size = source.stat().st_size
        print(
            f"plain workbook: {args.rows:,} rows, {size / 1e6:.1f} MB, "
            f"written in {time.perf_counter() - began:.1f} s"
        )
        got: dict[str, list[tuple[float, float, float]]] = {"payhub": [], "msoffcrypto": []}
        for n in range(args.rounds):
            order = ["payhub", "msoffcrypto"][:: 1 if n % 2 == 0 else -1]
            for side in order:
                argv = [sys.executable, __file__, "--child", side, "--source", str(source)]
                out = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=True).stdout
                wall, cpu, peak = (float(x) for x in out.split()[-3:])
                got[side].append((wall, cpu, peak))
                print(
                    f"round {n + 1}: {side} {wall:.2f} s (CPU {cpu:.2f} s) {peak:.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
        for side, runs in got.items():
            print(
                f"{side}: CPU {statistics.median(r[1] for r in runs):.2f} s, "
                f"wall {statistics.median(r[0] for r in runs):.2f} s (medians), "
                f"peak RSS {max(r[2] for r in runs):.0f} MB (worst of {args.rounds})"
            )


if __name__ == "__main__":
    main()
