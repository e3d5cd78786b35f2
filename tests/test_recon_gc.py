"""Reconciliation leaves the process's garbage collector alone: a library must
not change the host's settings (it allocates less instead: docs/reconciliation.md)."""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime

from payhub.channels import BillStream
from payhub.models import BillRecord, BillRecordKind
from payhub.money import Money
from payhub.recon import Reconciler, ReconConfig
from payhub.store import Store


def test_a_run_does_not_touch_the_collectors_thresholds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    seen: list[tuple[int, ...]] = []
    try:
        with Store(f"sqlite:///{tmp_path / 'shop.db'}") as store:
            store.upgrade()
            rows = [
                BillRecord(
                    channel="wechat",
                    kind=BillRecordKind.PAYMENT,
                    channel_trade_id=f"T{n}",
                    out_trade_no=f"GC-{n}",
                    amount=Money(100 + n),
                    raw={},
                )
                for n in range(30)
            ]
            config = ReconConfig(batch_size=10, auto_repair=False)
            reconciler = Reconciler(
                None, config, store=store, clock=lambda: datetime(2024, 3, 9, tzinfo=UTC)
            )
            bill = BillStream.of(rows, channel="wechat", bill_date=date(2024, 3, 1))
            result = reconciler.run_bill(bill, progress=lambda _: seen.append(gc.get_threshold()))
        assert result.counts == {"matched": 0, "missing_in_store": 30}
        assert seen
        assert set(seen) == {(700, 10, 10)}
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*saved)
