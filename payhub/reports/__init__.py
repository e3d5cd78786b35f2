"""Reports and exports: payments, refunds (and the ledger's reports) as CSV or Excel.

Filtered by a ``[start, end)`` range in a time zone (Asia/Shanghai by
default) and more, with column templates (Chinese headers by default),
streamed from a server-side cursor, split into parts, optionally encrypted,
recorded as runs, and scheduled.

>>> from payhub.reports import Reports, ReportFilters  # doctest: +SKIP
>>> reports = Reports(store, output_dir="exports")  # doctest: +SKIP
>>> reports.run("payments", ReportFilters(start, end), format="xlsx")  # doctest: +SKIP

Other packages add report types with :func:`register_report_type` (the seam
reconciliation differences use). See ``docs/reports.md``.
"""

from payhub.reports._periods import FREQUENCIES, next_run, period_of
from payhub.reports._records import ReportRun, RunStatus, Schedule, Template
from payhub.reports._service import (
    DEFAULT_LEASE,
    DEFAULT_MAX_RANGE,
    FORMATS,
    Progress,
    Reports,
    open_file,
    writable_dir,
)
from payhub.reports._types import (
    FILTER_NAMES,
    Field,
    FieldKind,
    ReportFilters,
    ReportType,
    register_report_type,
    report_type,
    report_types,
    zone,
)
from payhub.reports._writers import XLSX_MAX_ROWS, amount_text, escape_cell

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_MAX_RANGE",
    "FILTER_NAMES",
    "FORMATS",
    "FREQUENCIES",
    "XLSX_MAX_ROWS",
    "Field",
    "FieldKind",
    "Progress",
    "ReportFilters",
    "ReportRun",
    "ReportType",
    "Reports",
    "RunStatus",
    "Schedule",
    "Template",
    "amount_text",
    "escape_cell",
    "next_run",
    "open_file",
    "period_of",
    "register_report_type",
    "report_type",
    "report_types",
    "writable_dir",
    "zone",
]
