"""Helpers of the report tests: rows put into a real store, files read back."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from payhub.reports import ReportFilters
from payhub.store import Store
from payhub.store._schema import payments, refunds
from payhub.tz import SHANGHAI

#: 2026-01-05 00:00 in Shanghai is 2026-01-04 16:00 UTC
DAY = datetime(2026, 1, 5, tzinfo=SHANGHAI)


def day_filters(**narrowing: Any) -> ReportFilters:
    return ReportFilters(start=DAY, end=DAY + timedelta(days=1), **narrowing)


def add_payments(store: Store, rows: list[dict[str, Any]]) -> None:
    """Insert payments (defaults filled in) with SQLAlchemy Core into the real database."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    full = []
    for n, row in enumerate(rows):
        values = {
            "out_trade_no": f"T{n:06d}",
            "amount_minor": 1000,
            "currency": "CNY",
            "subject": "月卡",
            "method": "qr",
            "status": "paid",
            "channel": "alipay-main",
            "channel_trade_id": f"2026010522001400{n:08d}",
            "paid_at": None,
            "created_at": DAY + timedelta(minutes=n),
            "updated_at": now,
        }
        values.update(row)
        full.append(values)
    with store.engine.begin() as conn:
        conn.execute(payments.insert(), full)


def add_refund(store: Store, out_trade_no: str, **row: Any) -> None:
    with store.engine.begin() as conn:
        payment_id = conn.execute(
            sa.select(payments.c.id).where(payments.c.out_trade_no == out_trade_no)
        ).scalar_one()
        values = {
            "out_refund_no": f"R-{out_trade_no}",
            "payment_id": payment_id,
            "channel": "alipay-main",
            "amount_minor": 500,
            "currency": "CNY",
            "status": "succeeded",
            "origin": "hub",
            "created_at": DAY + timedelta(hours=1),
            "updated_at": DAY + timedelta(hours=1),
        }
        values.update(row)
        conn.execute(refunds.insert().values(**values))


def csv_lines(data: bytes) -> list[str]:
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM first"
    text = data[3:].decode("utf-8")
    assert text.endswith("\r\n")
    return text[:-2].split("\r\n")


def zip_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def sheet_xml(xlsx: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(xlsx)) as archive:
        return archive.read("xl/worksheets/sheet1.xml").decode("utf-8")
