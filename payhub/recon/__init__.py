"""Reconciliation (对账): every channel bill matched against the store.

:class:`Reconciler` streams a channel's bill of a day (``hub.stream_bill``),
matches it against stored payments and refunds in batches, records each
difference once (classes: :class:`~payhub.bill_match.DiffKind`), repairs what
a channel query proves through the normal transition path, and keeps the
rest in a queue for a person (:meth:`Reconciler.resolve`, audited). The pure
decisions live in :mod:`payhub.bill_match`. ``docs/reconciliation.md``.
Importing it registers the ``recon-differences`` report type (``payhub.reports``).
"""

from payhub.bill_match import Difference, DiffKind, Repair
from payhub.recon._db import ItemRecord, RunRecord
from payhub.recon._export import DIFFERENCE_COLUMNS, difference_rows, write_csv
from payhub.recon._report import REPORT_NAME, register_report
from payhub.recon._runner import Reconciler, ReconConfig, RunResult

__all__ = [
    "DIFFERENCE_COLUMNS",
    "REPORT_NAME",
    "DiffKind",
    "Difference",
    "ItemRecord",
    "ReconConfig",
    "Reconciler",
    "Repair",
    "RunRecord",
    "RunResult",
    "difference_rows",
    "register_report",
    "write_csv",
]

register_report()
