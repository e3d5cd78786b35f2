"""What the reports keep: runs, templates and schedules, as read back from the store."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["ReportRun", "RunStatus", "Schedule", "Template"]


class RunStatus(enum.StrEnum):
    """pending -> running -> succeeded (with a file) or failed (with an error)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class ReportRun:
    """One run of a report (like Stripe's report run): what was asked and what came of it.

    ``parameters`` holds the filters (range, time zone), template and columns,
    format, part size and whether the file is encrypted: never the password.
    """

    id: int
    report_type: str
    parameters: dict[str, Any]
    status: RunStatus
    schedule_id: int | None
    period_start: datetime | None
    path: str | None
    rows: int | None
    parts: int | None
    size_bytes: int | None
    sha256: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expired_at: datetime | None
    #: who runs it (host:pid:token) and when it last renewed its lease
    owner: str | None = None
    heartbeat_at: datetime | None = None
    #: the how-many-th run of its schedule period (a reclaimed run is run again)
    attempt: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "report_type": self.report_type,
            "status": self.status.value,
            "parameters": self.parameters,
            "schedule_id": self.schedule_id,
            "period_start": _iso(self.period_start),
            "path": self.path,
            "rows": self.rows,
            "parts": self.parts,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "error": self.error,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "expired_at": _iso(self.expired_at),
            "owner": self.owner,
            "heartbeat_at": _iso(self.heartbeat_at),
            "attempt": self.attempt,
        }


@dataclass(frozen=True)
class Template:
    """A named column set: ``columns`` are (field, header) pairs in order."""

    name: str
    report_type: str
    columns: tuple[tuple[str, str], ...]
    builtin: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "report_type": self.report_type,
            "columns": [list(c) for c in self.columns],
            "builtin": self.builtin,
        }


@dataclass(frozen=True)
class Schedule:
    """A stored export: what to run, when, and where the file goes."""

    id: int
    name: str
    report_type: str
    filters: dict[str, Any]
    template: str | None
    format: str
    frequency: str
    at_time: str
    day: int | None
    timezone: str
    output_dir: str
    retention_days: int | None
    #: the NAME of the environment variable holding the password, never the password
    password_env: str | None
    part_rows: int | None
    enabled: bool
    next_run_at: datetime
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "report_type": self.report_type,
            "filters": self.filters,
            "template": self.template,
            "format": self.format,
            "frequency": self.frequency,
            "at_time": self.at_time,
            "day": self.day,
            "timezone": self.timezone,
            "output_dir": self.output_dir,
            "retention_days": self.retention_days,
            "password_env": self.password_env,
            "part_rows": self.part_rows,
            "enabled": self.enabled,
            "next_run_at": _iso(self.next_run_at),
            "created_at": _iso(self.created_at),
        }
