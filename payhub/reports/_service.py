"""Reports: runs, templates and schedules over one store (the public API).

>>> reports = Reports(store, output_dir="/srv/exports")  # doctest: +SKIP
>>> run = reports.run("payments", ReportFilters(start, end), format="xlsx")  # doctest: +SKIP
>>> run.status, run.path, run.rows, run.sha256  # doctest: +SKIP

A run is recorded ``pending``, then ``running``, then ``succeeded`` with its
file's path, rows, size and SHA-256, or ``failed`` with the error. Bad input
(a range without an end or inverted, an unknown column, a filter the report
does not take, a template naming a missing field, a range longer than
``max_range`` without parts, an output directory that cannot be written) is
refused before anything is recorded. The file is written under a temporary
name in the output directory and renamed into place only when complete, so a
crash leaves no file that looks finished and no run recorded as succeeded.

A run holds a lease: its process (the ``owner``, host:pid:token) renews the
run's ``heartbeat_at`` while it writes, at least every third of ``lease``. A
run whose owner died (killed, out of memory, the host lost) stops renewing;
the next :meth:`Reports.run` or :meth:`Reports.run_due`, in any process,
marks it failed ("abandoned ...") and removes its temporary files, and a
scheduled period is run again as the next ``attempt``, by ``run_due``. The
reclaim is one conditional UPDATE per run, so exactly one process wins it; an
owner that was only paused and comes back finds its run reclaimed and stops
(its file is not recorded).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from payhub.config import Secret, resolve_secret
from payhub.errors import (
    ConfigurationError,
    InvalidRequestError,
    PayhubError,
    ReportError,
    StoreError,
)
from payhub.reports import _crypto
from payhub.reports._periods import check_schedule, next_run, period_of
from payhub.reports._records import ReportRun, RunStatus, Schedule, Template
from payhub.reports._types import ReportFilters, ReportType, report_type, report_types, zone
from payhub.reports._writers import XLSX_MAX_ROWS, Column, CsvPart, Part, XlsxPart
from payhub.store import Store
from payhub.store._schema import report_runs, report_schedules, report_templates

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_MAX_RANGE",
    "FORMATS",
    "Progress",
    "Reports",
    "open_file",
    "writable_dir",
]

logger = logging.getLogger("payhub.reports")

FORMATS: Final = ("csv", "xlsx")
#: a single-file export may cover at most this long a range unless parts are allowed
DEFAULT_MAX_RANGE: Final = timedelta(days=31)
#: a run whose owner has not renewed its heartbeat for this long is reclaimed
DEFAULT_LEASE: Final = timedelta(minutes=5)
#: how long the export's one streamed SELECT may run (the store's own limit is
#: seconds, meant for payment operations; sorting a million rows takes longer)
DEFAULT_EXPORT_TIMEOUT: Final = timedelta(hours=1)
#: rows fetched from the server-side cursor at a time
DEFAULT_YIELD_PER: Final = 2_000
_CHUNK: Final = 10_000
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)
_MAX_CATCH_UP: Final = 400
#: a file name the caller chose (Chinese welcome): no directory part, not hidden
_FILE_STEM: Final = re.compile(r"[^./\\\x00-\x1f][^/\\\x00-\x1f]{0,127}")

#: progress(rows written so far, rows expected)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class _Plan:
    kind: ReportType
    filters: ReportFilters
    columns: tuple[Column, ...]
    template: str | None
    language: str
    format: str
    output_dir: Path
    parts: bool
    part_rows: int
    password: Secret | None
    expected_rows: int
    #: the file's name without its suffix (default: type, range and run id)
    stem: str | None = None

    def parameters(self) -> dict[str, Any]:
        return {
            "filters": self.filters.to_json(),
            "template": self.template,
            "language": self.language,
            "columns": [[c.field.key, c.header] for c in self.columns],
            "format": self.format,
            "output_dir": str(self.output_dir),
            "parts": self.parts,
            "part_rows": self.part_rows,
            "encrypted": self.password is not None,
        }


def _builtin_templates() -> dict[str, Template]:
    found: dict[str, Template] = {}
    for kind in report_types().values():
        keys = kind.default_columns or tuple(f.key for f in kind.fields)
        for language, name in (("zh", kind.name), ("en", f"{kind.name}.en")):
            columns = tuple((k, kind.field(k).header(language)) for k in keys)
            found[name] = Template(name, kind.name, columns, builtin=True)
    return found


def _run_record(row: Row[Any]) -> ReportRun:
    m = row._mapping
    return ReportRun(
        id=m["id"],
        report_type=m["report_type"],
        parameters=dict(m["parameters"]),
        status=RunStatus(m["status"]),
        schedule_id=m["schedule_id"],
        period_start=m["period_start"],
        path=m["path"],
        rows=m["rows"],
        parts=m["parts"],
        size_bytes=m["size_bytes"],
        sha256=m["sha256"],
        error=m["error"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        finished_at=m["finished_at"],
        expired_at=m["expired_at"],
        owner=m["owner"],
        heartbeat_at=m["heartbeat_at"],
        attempt=m["attempt"],
    )


def _schedule_record(row: Row[Any]) -> Schedule:
    m = row._mapping
    return Schedule(
        id=m["id"],
        name=m["name"],
        report_type=m["report_type"],
        filters=dict(m["filters"]),
        template=m["template"],
        format=m["format"],
        frequency=m["frequency"],
        at_time=m["at_time"],
        day=m["day"],
        timezone=m["timezone"],
        output_dir=m["output_dir"],
        retention_days=m["retention_days"],
        password_env=m["password_env"],
        part_rows=m["part_rows"],
        enabled=bool(m["enabled"]),
        next_run_at=m["next_run_at"],
        created_at=m["created_at"],
    )


def _inserted(conn: Connection, stmt: sa.Insert) -> int:
    key = conn.execute(stmt).inserted_primary_key
    assert key is not None
    return int(key[0])


def _new_owner() -> str:
    """Who runs a report: this host and process, and a token of this call."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(6)}"


def _work_prefix(run_id: int) -> str:
    """The name a run's temporary directory (in the output directory) starts with."""
    return f".payhub-run{run_id}-"


class _Lease:
    """The owner's hold on its runs: renewed at most every ``interval`` seconds.

    :meth:`beat` renews ``heartbeat_at`` of every run the owner holds and
    raises :class:`ReportError` if the run being written is no longer its own
    (another process reclaimed it after the lease ran out).
    """

    def __init__(self, reports: Reports, owner: str) -> None:
        self.reports = reports
        self.owner = owner
        self.interval = reports.lease.total_seconds() / 3
        self._due = time.monotonic() + self.interval

    def beat(self, run_id: int, *, force: bool = False) -> None:
        moment = time.monotonic()
        if not force and moment < self._due:
            return
        r = report_runs.c
        now = self.reports.store.now()
        mine = r.owner == self.owner

        def fn(conn: Connection) -> int:
            conn.execute(
                report_runs.update()
                .where(mine, r.status == RunStatus.PENDING.value)
                .values(heartbeat_at=now)
            )
            return int(
                conn.execute(
                    report_runs.update()
                    .where(r.id == run_id, mine, r.status == RunStatus.RUNNING.value)
                    .values(heartbeat_at=now)
                ).rowcount
            )

        if self.reports.store.run(fn) != 1:
            raise ReportError(
                f"report run {run_id} was reclaimed by another process "
                f"(no heartbeat within the lease of {self.reports.lease.total_seconds():g} s)"
            )
        self._due = moment + self.interval


def writable_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a directory this process can write into (created if missing), or a
    :class:`ReportError` saying why not. Tried for real: permission bits lie to root."""
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".payhub-probe-", dir=directory)
        os.close(handle)
        Path(probe).unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ReportError(
            f"output directory {str(directory)!r} is not writable: {reason}"
        ) from None
    return directory


class Reports:
    """Report runs, column templates and scheduled exports over ``store``.

    ``output_dir``: where files go unless a run names another. ``max_range``:
    the longest range a run may cover in a single file (longer ones need
    ``parts=True``). ``part_rows``: rows per part file, at most Excel's
    1,048,575 data rows a sheet (the default). ``lease``: how long a run's
    process may stay silent before another process reclaims the run as
    abandoned (renewed every third of it while writing; give the clocks of
    the hosts sharing the database a margin well below it).
    ``export_timeout``: how long the export's streamed SELECT may run on
    PostgreSQL and MySQL/MariaDB, instead of the store's statement timeout
    (seconds, meant for payments: the first fetch of a million sorted rows
    takes longer). Only the export's own connection gets it.
    """

    def __init__(
        self,
        store: Store,
        *,
        output_dir: str | os.PathLike[str] | None = None,
        max_range: timedelta = DEFAULT_MAX_RANGE,
        part_rows: int = XLSX_MAX_ROWS,
        yield_per: int = DEFAULT_YIELD_PER,
        lease: timedelta = DEFAULT_LEASE,
        export_timeout: timedelta = DEFAULT_EXPORT_TIMEOUT,
    ) -> None:
        if not 1 <= part_rows <= XLSX_MAX_ROWS:
            raise ConfigurationError(f"reports: part_rows must be 1 to {XLSX_MAX_ROWS}")
        if not isinstance(lease, timedelta) or lease <= timedelta(0):
            raise ConfigurationError("reports: lease must be a positive timedelta")
        self.lease = lease
        if not isinstance(export_timeout, timedelta) or export_timeout < timedelta(seconds=1):
            raise ConfigurationError("reports: export_timeout must be 1 second or more")
        self.export_timeout = export_timeout
        self.store = store
        self.output_dir = None if output_dir is None else Path(output_dir)
        self.max_range = max_range
        self.part_rows = part_rows
        self.yield_per = yield_per

    # -- reading ------------------------------------------------------------

    def get_run(self, run_id: int) -> ReportRun:
        stmt = sa.select(report_runs).where(report_runs.c.id == run_id)
        row = self.store.run(lambda conn: conn.execute(stmt).first(), readonly=True)
        if row is None:
            raise InvalidRequestError(f"no report run {run_id}")
        return _run_record(row)

    def runs(
        self,
        *,
        status: str | None = None,
        report_type: str | None = None,
        schedule: str | None = None,
        limit: int = 50,
    ) -> list[ReportRun]:
        """The newest runs first."""
        stmt = sa.select(report_runs).order_by(report_runs.c.id.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(report_runs.c.status == RunStatus(status).value)
        if report_type is not None:
            stmt = stmt.where(report_runs.c.report_type == report_type)
        if schedule is not None:
            stmt = stmt.where(report_runs.c.schedule_id == self.schedule(schedule).id)
        rows = self.store.run(lambda conn: conn.execute(stmt).all(), readonly=True)
        return [_run_record(r) for r in rows]

    # -- templates ----------------------------------------------------------

    def templates(self, report_type: str | None = None) -> list[Template]:
        """The built-in templates (Chinese headers by default, ``TYPE.en`` in English)
        and the user-defined ones, by name."""
        stored = self.store.run(
            lambda conn: conn.execute(
                sa.select(report_templates).order_by(report_templates.c.name)
            ).all(),
            readonly=True,
        )
        found = list(_builtin_templates().values()) + [
            Template(r.name, r.report_type, tuple((k, h) for k, h in r.columns), builtin=False)
            for r in stored
        ]
        return sorted(
            (t for t in found if report_type is None or t.report_type == report_type),
            key=lambda t: t.name,
        )

    def template(self, name: str) -> Template:
        builtin = _builtin_templates().get(name)
        if builtin is not None:
            return builtin
        stmt = sa.select(report_templates).where(report_templates.c.name == name)
        row = self.store.run(lambda conn: conn.execute(stmt).first(), readonly=True)
        if row is None:
            raise InvalidRequestError(f"no report template {name!r}")
        return Template(
            row.name, row.report_type, tuple((k, h) for k, h in row.columns), builtin=False
        )

    def save_template(
        self,
        name: str,
        report_type_name: str,
        columns: Sequence[str | tuple[str, str]],
        *,
        language: str = "zh",
    ) -> Template:
        """A user-defined template: ``columns`` are field keys (header in ``language``)
        or (field, header) pairs. Every field must exist in the report type."""
        if _NAME.fullmatch(name) is None:
            raise InvalidRequestError(
                f"template name {name!r}: 1-64 of A-Z a-z 0-9 _ . - (starting alphanumeric)"
            )
        if name in _builtin_templates():
            raise InvalidRequestError(f"{name!r} is a built-in template; choose another name")
        kind = report_type(report_type_name)
        pairs = self._columns(kind, columns, language)
        values = {
            "name": name,
            "report_type": kind.name,
            "columns": [[c.field.key, c.header] for c in pairs],
            "created_at": self.store.now(),
        }

        def fn(conn: Connection) -> None:
            try:
                with conn.begin_nested():
                    conn.execute(report_templates.insert().values(**values))
            except IntegrityError:
                raise InvalidRequestError(f"a template named {name!r} exists") from None

        self.store.run(fn)
        return self.template(name)

    def delete_template(self, name: str) -> None:
        if name in _builtin_templates():
            raise InvalidRequestError(f"{name!r} is built in and cannot be deleted")
        stmt = report_templates.delete().where(report_templates.c.name == name)
        if self.store.run(lambda conn: conn.execute(stmt).rowcount) != 1:
            raise InvalidRequestError(f"no report template {name!r}")

    def write_template_file(self, name: str, path: str | os.PathLike[str], fmt: str) -> Path:
        """The template as a file finance staff can download: its header row, CSV or XLSX."""
        template = self.template(name)
        kind = report_type(template.report_type)
        columns = self._columns(kind, template.columns, "zh")
        target = Path(path)
        part = self._open_part(fmt, target, kind, columns, zone("Asia/Shanghai"))
        part.close()
        return target

    # -- running ------------------------------------------------------------

    def run(
        self,
        report_type_name: str,
        filters: ReportFilters,
        *,
        format: str = "csv",
        template: str | None = None,
        columns: Sequence[str] | None = None,
        language: str = "zh",
        output_dir: str | os.PathLike[str] | None = None,
        password: object = None,
        parts: bool = False,
        part_rows: int | None = None,
        progress: Progress | None = None,
        file_stem: str | None = None,
    ) -> ReportRun:
        """Run a report now and return its record (succeeded or failed).

        ``password`` (a string, a :class:`~payhub.config.Secret` or a
        ``{"$env": NAME}`` / ``{"$file": PATH}`` reference) encrypts the
        output: an XLSX with Excel's own encryption, a CSV inside an AES-256
        zip. It is never stored or logged. Bad input raises before anything
        is recorded; a failure while writing is recorded as ``failed`` and
        raised as :class:`~payhub.errors.ReportError` (or the store's error).
        ``file_stem`` names the file (``diffs`` -> ``diffs.xlsx``, or ``.zip``
        with parts or an encrypted CSV) instead of type, range and run id.
        """
        if file_stem is not None and _FILE_STEM.fullmatch(file_stem) is None:
            raise InvalidRequestError(
                f"file name {file_stem!r}: 1-128 characters, no path separator, "
                "not starting with a dot"
            )
        plan = self._plan(
            report_type_name,
            filters,
            format=format,
            template=template,
            columns=columns,
            language=language,
            output_dir=output_dir,
            password=password,
            parts=parts,
            part_rows=part_rows,
            # the row count serves the one-file limit and the progress bar only:
            # a parted run nobody watches skips that extra pass over the range
            count=not parts or progress is not None,
        )
        if file_stem is not None:
            plan = replace(plan, stem=file_stem)
        self.reclaim()
        lease = _Lease(self, _new_owner())
        run_id = self._insert_run(plan, owner=lease.owner)
        return self._execute(run_id, plan, progress, lease)

    def _plan(
        self,
        report_type_name: str,
        filters: ReportFilters,
        *,
        format: str,
        template: str | None,
        columns: Sequence[str] | None,
        language: str,
        output_dir: str | os.PathLike[str] | None,
        password: object,
        parts: bool,
        part_rows: int | None,
        count: bool = True,
    ) -> _Plan:
        kind = report_type(report_type_name)
        if not isinstance(filters, ReportFilters):
            raise InvalidRequestError("filters must be a ReportFilters")
        kind.check_filters(filters)
        if format not in FORMATS:
            raise InvalidRequestError(f"format {format!r} is not one of {', '.join(FORMATS)}")
        if language not in ("zh", "en"):
            raise InvalidRequestError("language is zh or en")
        if template is not None and columns is not None:
            raise InvalidRequestError("give a template or columns, not both")
        if columns is not None:
            chosen = self._columns(kind, list(columns), language)
        else:
            name = template or (kind.name if language == "zh" else f"{kind.name}.en")
            found = self.template(name)
            if found.report_type != kind.name:
                raise InvalidRequestError(
                    f"template {name!r} is for {found.report_type!r}, not {kind.name!r}"
                )
            chosen = self._columns(kind, found.columns, language, template=name)
        size = self.part_rows if part_rows is None else part_rows
        if type(size) is not int or not 1 <= size <= XLSX_MAX_ROWS:
            raise InvalidRequestError(f"part_rows must be 1 to {XLSX_MAX_ROWS}")
        if not parts and filters.end - filters.start > self.max_range:
            raise InvalidRequestError(
                f"the range is longer than {self.max_range.days} days: allow parts "
                "(--parts) to export it in several files, or narrow it"
            )
        directory = output_dir if output_dir is not None else self.output_dir
        if directory is None:
            raise ConfigurationError("reports: no output directory (give output_dir)")
        secret = None if password is None else resolve_secret(password, "reports.password")
        if secret is not None and not secret.get():
            raise InvalidRequestError("the password is empty")
        expected = 0
        if count:
            try:
                expected = self.store.run(lambda conn: kind.count(conn, filters), readonly=True)
            except SQLAlchemyError as exc:  # pragma: no cover - store.run translates
                raise StoreError(f"reports: {exc}") from exc
            if not parts and expected > size:
                raise InvalidRequestError(
                    f"{expected} rows is more than one file of {size} rows holds: "
                    "allow parts (--parts) or narrow the range"
                )
        return _Plan(
            kind=kind,
            filters=filters,
            columns=tuple(chosen),
            template=template,
            language=language,
            format=format,
            output_dir=writable_dir(directory),
            parts=parts,
            part_rows=size,
            password=secret,
            expected_rows=expected,
        )

    @staticmethod
    def _columns(
        kind: ReportType,
        columns: Sequence[str | tuple[str, str]],
        language: str,
        template: str | None = None,
    ) -> list[Column]:
        if not columns:
            raise InvalidRequestError("a report needs at least one column")
        index = {f.key: n for n, f in enumerate(kind.fields)}
        chosen: list[Column] = []
        for item in columns:
            key, header = (item, None) if isinstance(item, str) else item
            if key not in index:
                where = f"template {template!r} names" if template else "unknown column"
                known = ", ".join(index)
                raise InvalidRequestError(
                    f"{where} a field {kind.name!r} does not have: {key!r} (fields: {known})"
                    if template
                    else f"{where} {key!r} for {kind.name!r} (fields: {known})"
                )
            field = kind.fields[index[key]]
            chosen.append(Column(index[key], field, header or field.header(language)))
        return chosen

    def _insert_run(self, plan: _Plan, *, owner: str) -> int:
        now = self.store.now()
        values = {
            "report_type": plan.kind.name,
            "parameters": plan.parameters(),
            "status": RunStatus.PENDING.value,
            "created_at": now,
            "owner": owner,
            "heartbeat_at": now,
        }
        return self.store.run(lambda conn: _inserted(conn, report_runs.insert().values(**values)))

    def _set(
        self, run_id: int, expect: RunStatus | None, *, owner: str | None = None, **values: Any
    ) -> bool:
        stmt = report_runs.update().where(report_runs.c.id == run_id).values(**values)
        if expect is not None:
            stmt = stmt.where(report_runs.c.status == expect.value)
        if owner is not None:
            stmt = stmt.where(report_runs.c.owner == owner)
        return bool(self.store.run(lambda conn: conn.execute(stmt).rowcount) == 1)

    def _execute(
        self, run_id: int, plan: _Plan, progress: Progress | None, lease: _Lease
    ) -> ReportRun:
        now = self.store.now()
        if not self._set(
            run_id,
            RunStatus.PENDING,
            owner=lease.owner,
            status=RunStatus.RUNNING.value,
            started_at=now,
            heartbeat_at=now,
        ):
            return self.get_run(run_id)  # another process took it
        logger.info("report run %s: %s started", run_id, plan.kind.name)
        try:
            path, rows, parts = self._write(run_id, plan, progress, lease)
        except Exception as exc:
            message = self._failure(exc)
            # only while still its own: a reclaimed run keeps the reclaimer's error
            self._set(
                run_id,
                RunStatus.RUNNING,
                owner=lease.owner,
                status=RunStatus.FAILED.value,
                error=message[:1024],
                finished_at=self.store.now(),
            )
            logger.warning("report run %s failed: %s", run_id, message)
            if isinstance(exc, PayhubError):
                raise
            raise ReportError(f"report run {run_id} failed: {message}") from exc
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if not self._set(
            run_id,
            RunStatus.RUNNING,
            owner=lease.owner,
            status=RunStatus.SUCCEEDED.value,
            path=str(path),
            rows=rows,
            parts=parts,
            size_bytes=path.stat().st_size,
            sha256=digest,
            finished_at=self.store.now(),
        ):
            # reclaimed while the file was being finished: it is nobody's now
            path.unlink(missing_ok=True)
            logger.warning("report run %s was reclaimed before it finished", run_id)
            raise ReportError(f"report run {run_id} was reclaimed by another process")
        logger.info("report run %s succeeded: %s rows in %s part(s)", run_id, rows, parts)
        return self.get_run(run_id)

    @staticmethod
    def _failure(exc: BaseException) -> str:
        if isinstance(exc, PayhubError):
            return exc.message
        if isinstance(exc, OSError):
            where = f" ({Path(exc.filename).name})" if exc.filename else ""
            return f"cannot write the file{where}: {exc.strerror or type(exc).__name__}"
        return f"unexpected {type(exc).__name__}"

    def _stem(self, run_id: int, plan: _Plan) -> str:
        if plan.stem is not None:
            return plan.stem
        tz = plan.filters.tz
        start, end = (plan.filters.start.astimezone(tz), plan.filters.end.astimezone(tz))
        midnight = all(
            (t.hour, t.minute, t.second, t.microsecond) == (0, 0, 0, 0) for t in (start, end)
        )
        shape = "%Y%m%d" if midnight else "%Y%m%dT%H%M%S"
        return f"{plan.kind.name}_{start:{shape}}-{end:{shape}}_run{run_id}"

    def _open_part(
        self,
        fmt: str,
        path: Path,
        kind: ReportType,
        columns: Sequence[Column],
        tz: Any,
        *,
        span: tuple[datetime, datetime] | None = None,
    ) -> Part:
        if fmt == "xlsx":
            return XlsxPart(path, columns, kind.fields, tz, kind.title_zh)
        return CsvPart(path, columns, kind.fields, tz, span)

    def _write(
        self, run_id: int, plan: _Plan, progress: Progress | None, lease: _Lease
    ) -> tuple[Path, int, int]:
        stem = self._stem(run_id, plan)
        work = Path(tempfile.mkdtemp(prefix=_work_prefix(run_id), dir=plan.output_dir))
        try:
            files, rows = self._write_parts(work, stem, plan, progress, lambda: lease.beat(run_id))
            lease.beat(run_id, force=True)  # packaging (zip, encryption) may take a while
            staged = self._package(work, stem, plan, files)
            lease.beat(run_id, force=True)
            with staged.open("rb+") as handle:
                os.fsync(handle.fileno())
            final = plan.output_dir / f"{stem}{staged.suffix}"
            os.replace(staged, final)
            return final, rows, len(files)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _write_parts(
        self,
        work: Path,
        stem: str,
        plan: _Plan,
        progress: Progress | None,
        beat: Callable[[], None],
    ) -> tuple[list[Path], int]:
        files: list[Path] = []
        total = 0
        try:
            with self.store.engine.connect() as conn:
                conn = conn.execution_options(payhub_readonly=True)  # noqa: PLW2901
                try:
                    with conn.begin():
                        self._lift_statement_limit(conn)
                        stream: Iterator[Any] = iter(
                            plan.kind.stream(conn, plan.filters, self.yield_per)
                        )
                        while True:
                            path = work / f"{stem}_part{len(files) + 1:03d}.{plan.format}"
                            part = self._open_part(
                                plan.format,
                                path,
                                plan.kind,
                                plan.columns,
                                plan.filters.tz,
                                span=(plan.filters.start, plan.filters.end),
                            )
                            files.append(path)
                            in_part = 0
                            try:
                                while in_part < plan.part_rows:
                                    step = min(_CHUNK, plan.part_rows - in_part)
                                    written = part.write(stream, step)
                                    in_part += written
                                    total += written
                                    if progress is not None and written:
                                        progress(total, plan.expected_rows)
                                    beat()
                                    if written < step:
                                        break
                            finally:
                                part.close()
                            if in_part < plan.part_rows:
                                break
                            following = next(stream, None)
                            if following is None:
                                break
                            stream = chain([following], stream)
                finally:
                    if conn.info.pop("payhub_discard", False):
                        conn.invalidate()  # its session limit stays with it
        except SQLAlchemyError as exc:
            raise StoreError(
                f"reports: reading {plan.kind.name} failed: {type(exc).__name__}"
            ) from exc
        return files, total

    def _lift_statement_limit(self, conn: Connection) -> None:
        """Give the export's connection ``export_timeout`` instead of the store's limit.

        PostgreSQL: ``SET LOCAL`` (ends with the transaction). MySQL/MariaDB
        have no transaction-scoped form: the session's limit is raised and the
        connection is dropped from the pool afterwards (``invalidate`` when
        returned), so that no payment operation inherits it.
        """
        limit = self.export_timeout.total_seconds()
        name = conn.dialect.name
        if name == "postgresql":
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(limit * 1000)}")
        elif name in ("mysql", "mariadb"):
            if getattr(conn.dialect, "is_mariadb", False):
                conn.exec_driver_sql(f"SET SESSION max_statement_time = {limit:g}")
            else:
                conn.exec_driver_sql(f"SET SESSION max_execution_time = {int(limit * 1000)}")
            conn.info["payhub_discard"] = True

    @staticmethod
    def _package(work: Path, stem: str, plan: _Plan, files: list[Path]) -> Path:
        password = None if plan.password is None else plan.password.get_text()
        if len(files) == 1:
            only = files[0].rename(work / f"{stem}.{plan.format}")
            if password is None:
                return only
            if plan.format == "xlsx":
                target = work / f"{stem}.encrypted.xlsx"
                _crypto.encrypt_xlsx(only, target, password)
                return target.rename(work / f"{stem}.staged.xlsx")
            target = work / f"{stem}.zip"
            _crypto.aes_zip(target, [(only.name, only)], password)
            return target
        target = work / f"{stem}.zip"
        members = [(f.name, f) for f in files]
        if password is None:
            _crypto.plain_zip(target, members, compress=True)
        elif plan.format == "csv":
            _crypto.aes_zip(target, members, password)
        else:
            sealed = []
            for name, path in members:
                out = work / f"sealed-{name}"
                _crypto.encrypt_xlsx(path, out, password)
                sealed.append((name, out))
            _crypto.plain_zip(target, sealed, compress=False)
        return target

    # -- checking a file again ----------------------------------------------

    def verify(self, run_id: int, password: object = None) -> ReportRun:
        """Check a succeeded run's file: still there, same SHA-256, and (if encrypted)
        opened by ``password``. A wrong password or a changed file is a :class:`ReportError`."""
        run = self.get_run(run_id)
        if run.status is not RunStatus.SUCCEEDED or run.path is None:
            raise ReportError(f"report run {run_id} has no file ({run.status.value})")
        if run.expired_at is not None:
            raise ReportError(f"report run {run_id}'s file was removed by the retention policy")
        path = Path(run.path)
        try:
            with path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as exc:
            raise ReportError(f"cannot read {path.name}: {exc.strerror}") from None
        if digest != run.sha256:
            raise ReportError(f"{path.name} changed since run {run_id} wrote it (SHA-256 differs)")
        if run.parameters.get("encrypted"):
            if password is None:
                raise ReportError(f"{path.name} is encrypted: give its password")
            text = resolve_secret(password, "reports.password").get_text()
            open_file(path, text)
        return run

    # -- schedules ----------------------------------------------------------

    def add_schedule(
        self,
        name: str,
        report_type_name: str,
        *,
        frequency: str,
        output_dir: str | os.PathLike[str],
        at_time: str = "01:00",
        day: int | None = None,
        timezone: str = "Asia/Shanghai",
        filters: Mapping[str, Any] | None = None,
        template: str | None = None,
        format: str = "csv",
        retention_days: int | None = None,
        password_env: str | None = None,
        part_rows: int | None = None,
    ) -> Schedule:
        """Store a scheduled export; the first run is the next ``at_time`` to come.

        ``filters`` narrow the rows (seller, channel, status…); the period gives
        the range. ``password_env`` names the environment variable the password
        is read from at run time (the password itself is never stored).
        """
        if _NAME.fullmatch(name) is None:
            raise InvalidRequestError(
                f"schedule name {name!r}: 1-64 of A-Z a-z 0-9 _ . - (starting alphanumeric)"
            )
        check_schedule(frequency, at_time, day)
        tz = zone(timezone)
        if retention_days is not None and (type(retention_days) is not int or retention_days < 1):
            raise InvalidRequestError("retention_days must be a whole number of days, 1 or more")
        if password_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", password_env):
            raise InvalidRequestError("password_env must be an environment variable's name")
        now = self.store.now()
        start, end = period_of(frequency, next_run(frequency, at_time, day, tz, now), tz)
        narrowing = dict(filters or {})
        sample = ReportFilters.from_json(
            {**narrowing, "start": start, "end": end, "timezone": timezone}
        )
        # the same checks a run makes, without counting rows or a password
        self._plan(
            report_type_name,
            sample,
            format=format,
            template=template,
            columns=None,
            language="zh",
            output_dir=output_dir,
            password=None,
            parts=True,
            part_rows=part_rows,
            count=False,
        )
        values = {
            "name": name,
            "report_type": report_type_name,
            "filters": narrowing,
            "template": template,
            "format": format,
            "frequency": frequency,
            "at_time": at_time,
            "day": day,
            "timezone": timezone,
            "output_dir": str(Path(output_dir).resolve()),
            "retention_days": retention_days,
            "password_env": password_env,
            "part_rows": part_rows,
            "enabled": True,
            "next_run_at": next_run(frequency, at_time, day, tz, now),
            "created_at": now,
        }

        def fn(conn: Connection) -> None:
            try:
                with conn.begin_nested():
                    conn.execute(report_schedules.insert().values(**values))
            except IntegrityError:
                raise InvalidRequestError(f"a schedule named {name!r} exists") from None

        self.store.run(fn)
        return self.schedule(name)

    def schedule(self, name: str) -> Schedule:
        stmt = sa.select(report_schedules).where(report_schedules.c.name == name)
        row = self.store.run(lambda conn: conn.execute(stmt).first(), readonly=True)
        if row is None:
            raise InvalidRequestError(f"no report schedule {name!r}")
        return _schedule_record(row)

    def schedules(self) -> list[Schedule]:
        stmt = sa.select(report_schedules).order_by(report_schedules.c.name)
        rows = self.store.run(lambda conn: conn.execute(stmt).all(), readonly=True)
        return [_schedule_record(r) for r in rows]

    def set_schedule_enabled(self, name: str, enabled: bool) -> Schedule:
        stmt = (
            report_schedules.update().where(report_schedules.c.name == name).values(enabled=enabled)
        )
        if self.store.run(lambda conn: conn.execute(stmt).rowcount) != 1:
            raise InvalidRequestError(f"no report schedule {name!r}")
        return self.schedule(name)

    def run_due(self, now: datetime | None = None) -> list[ReportRun]:
        """Run every due schedule once for each period that came due, and return the runs.

        Safe to call from several processes at the same moment (cron on two
        hosts, a Celery beat and a timer): each schedule is claimed in one
        transaction that locks its row (``FOR UPDATE``, ``SKIP LOCKED`` on
        PostgreSQL; SQLite's single writer) and advances ``next_run_at`` only
        if nobody did first; the run rows are unique per (schedule, period,
        attempt). A period missed while nothing called ``run-due`` is run on
        the next call. A failed run stays failed (see ``payhub reports list``);
        the others go on. First, runs whose owner is gone are reclaimed
        (:meth:`reclaim`) and their periods run again here.
        """
        moment = self.store.now() if now is None else now
        self.reclaim()  # on the store's clock, the one heartbeats are written with
        lease = _Lease(self, _new_owner())
        claimed = self.store.run(lambda conn: self._claim(conn, moment, lease.owner))
        results: list[ReportRun] = []
        for run_id, schedule, start, end in claimed:
            results.append(self._run_scheduled(run_id, schedule, start, end, lease))
            if results[-1].status is RunStatus.SUCCEEDED and schedule.retention_days:
                self.apply_retention(schedule.name, now=moment)
        return results

    def reclaim(self, *, now: datetime | None = None) -> list[ReportRun]:
        """Mark failed every run whose owner is gone, and return them.

        Gone: a ``running`` run whose ``heartbeat_at`` is older than the lease,
        or a ``pending`` one its owner has not renewed within it. Each is taken
        by one conditional UPDATE (the same staleness re-checked on the row),
        so of several processes reclaiming at once exactly one wins each run.
        Its temporary directory in the output directory is removed. A
        scheduled run's period gets a new run (the next ``attempt``, pending
        and ownerless) in the same transaction, which the next
        :meth:`run_due` runs.
        """
        moment = self.store.now() if now is None else now
        cutoff = moment - self.lease
        r = report_runs.c
        seen = sa.func.coalesce(r.heartbeat_at, r.started_at, r.created_at)
        running = sa.and_(r.status == RunStatus.RUNNING.value, seen < cutoff)
        pending = sa.and_(
            r.status == RunStatus.PENDING.value,
            seen < cutoff,
            # an ownerless scheduled run waits for run_due, whoever made it
            sa.or_(r.owner.is_not(None), r.schedule_id.is_(None)),
        )
        stale = sa.or_(running, pending)
        candidates = self.store.run(
            lambda conn: conn.execute(sa.select(report_runs).where(stale).order_by(r.id)).all(),
            readonly=True,
        )
        reclaimed: list[ReportRun] = []
        for row in candidates:
            run = _run_record(row)
            last = run.heartbeat_at or run.started_at or run.created_at
            error = (
                f"abandoned: its process ({run.owner or 'unknown'}) stopped renewing the "
                f"lease at {last.isoformat(timespec='seconds')} ({run.status.value}, "
                f"lease {self.lease.total_seconds():g} s); reclaimed at "
                f"{moment.isoformat(timespec='seconds')}"
            )

            def fn(conn: Connection, run: ReportRun = run, error: str = error) -> bool:
                won = conn.execute(
                    report_runs.update()
                    .where(r.id == run.id, stale)
                    .values(status=RunStatus.FAILED.value, error=error[:1024], finished_at=moment)
                ).rowcount
                if won != 1:
                    return False  # renewed meanwhile, or another process reclaimed it
                if run.schedule_id is not None:
                    conn.execute(
                        report_runs.insert().values(
                            report_type=run.report_type,
                            parameters={
                                "schedule": run.parameters.get("schedule"),
                                "filters": {
                                    k: run.parameters.get("filters", {}).get(k)
                                    for k in ("start", "end")
                                },
                                "retry_of": run.id,
                            },
                            status=RunStatus.PENDING.value,
                            schedule_id=run.schedule_id,
                            period_start=run.period_start,
                            attempt=run.attempt + 1,
                            created_at=moment,
                        )
                    )
                return True

            if not self.store.run(fn):
                continue
            logger.warning("report run %s reclaimed: %s", run.id, error)
            self._remove_work(run)
            reclaimed.append(self.get_run(run.id))
        return reclaimed

    @staticmethod
    def _remove_work(run: ReportRun) -> None:
        directory = run.parameters.get("output_dir")
        if not isinstance(directory, str):
            return  # a scheduled run not started: nothing written yet
        try:
            leftovers = list(Path(directory).glob(f"{_work_prefix(run.id)}*"))
        except OSError:
            return
        for leftover in leftovers:
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)

    def _claim(
        self, conn: Connection, now: datetime, owner: str
    ) -> list[tuple[int, Schedule, datetime, datetime]]:
        s = report_schedules.c
        r = report_runs.c
        claimed: list[tuple[int, Schedule, datetime, datetime]] = []
        # periods whose run was reclaimed: the retry waits pending with no owner
        waiting = conn.execute(
            sa.select(r.id.label("run_id"), r.parameters.label("run_parameters"), report_schedules)
            .join(report_schedules, s.id == r.schedule_id)
            .where(r.status == RunStatus.PENDING.value, r.owner.is_(None))
            .order_by(r.id)
        ).all()
        for row in waiting:
            adopted = conn.execute(
                report_runs.update()
                .where(r.id == row.run_id, r.status == RunStatus.PENDING.value, r.owner.is_(None))
                .values(owner=owner, heartbeat_at=self.store.now())
            ).rowcount
            if adopted != 1:
                continue  # another process adopted it first
            period = dict(row.run_parameters).get("filters") or {}
            try:
                start = datetime.fromisoformat(period["start"])
                end = datetime.fromisoformat(period["end"])
            except (KeyError, TypeError, ValueError):
                conn.execute(
                    report_runs.update()
                    .where(r.id == row.run_id)
                    .values(
                        status=RunStatus.FAILED.value,
                        error="its period is not recorded: cannot run it again",
                        finished_at=now,
                    )
                )
                continue
            claimed.append((row.run_id, _schedule_record(row), start, end))
        due = sa.select(report_schedules).where(s.enabled == sa.true(), s.next_run_at <= now)
        due = due.order_by(s.id).with_for_update(skip_locked=self.store.dialect == "postgresql")
        for row in conn.execute(due).all():
            schedule = _schedule_record(row)
            tz = zone(schedule.timezone)
            moments: list[datetime] = []
            moment = schedule.next_run_at
            while moment <= now and len(moments) < _MAX_CATCH_UP:
                moments.append(moment)
                moment = next_run(schedule.frequency, schedule.at_time, schedule.day, tz, moment)
            advanced = conn.execute(
                report_schedules.update()
                .where(s.id == schedule.id, s.next_run_at == schedule.next_run_at)
                .values(next_run_at=moment)
            ).rowcount
            if advanced != 1:
                continue  # another process claimed it first
            for due_at in moments:
                start, end = period_of(schedule.frequency, due_at, tz)
                parameters = {
                    "schedule": schedule.name,
                    "filters": {"start": start.isoformat(), "end": end.isoformat()},
                }
                run_id = _inserted(
                    conn,
                    report_runs.insert().values(
                        report_type=schedule.report_type,
                        parameters=parameters,
                        status=RunStatus.PENDING.value,
                        schedule_id=schedule.id,
                        period_start=start,
                        created_at=now,
                        owner=owner,
                        heartbeat_at=self.store.now(),
                    ),
                )
                claimed.append((run_id, schedule, start, end))
        return claimed

    def _run_scheduled(
        self, run_id: int, schedule: Schedule, start: datetime, end: datetime, lease: _Lease
    ) -> ReportRun:
        try:
            password: object = None
            if schedule.password_env is not None:
                password = {"$env": schedule.password_env}
            filters = ReportFilters.from_json(
                {**schedule.filters, "start": start, "end": end, "timezone": schedule.timezone}
            )
            plan = self._plan(
                schedule.report_type,
                filters,
                format=schedule.format,
                template=schedule.template,
                columns=None,
                language="zh",
                output_dir=schedule.output_dir,
                password=password,
                parts=True,
                part_rows=schedule.part_rows,
                count=False,  # parts allowed, no progress bar: the count would be unused
            )
        except PayhubError as exc:
            self._set(
                run_id,
                RunStatus.PENDING,
                owner=lease.owner,
                status=RunStatus.FAILED.value,
                error=exc.message[:1024],
                finished_at=self.store.now(),
            )
            logger.warning("scheduled report %s failed: %s", schedule.name, exc.message)
            return self.get_run(run_id)
        parameters = {"schedule": schedule.name, **plan.parameters()}
        self._set(run_id, RunStatus.PENDING, owner=lease.owner, parameters=parameters)
        try:
            return self._execute(run_id, plan, None, lease)
        except PayhubError:
            return self.get_run(run_id)

    def apply_retention(self, name: str, *, now: datetime | None = None) -> list[ReportRun]:
        """Delete the files of ``name``'s runs older than its ``retention_days``; their
        records stay, marked expired. Only files payhub recorded are touched."""
        schedule = self.schedule(name)
        if not schedule.retention_days:
            return []
        moment = self.store.now() if now is None else now
        cutoff = moment - timedelta(days=schedule.retention_days)
        r = report_runs.c
        stmt = sa.select(report_runs).where(
            r.schedule_id == schedule.id,
            r.status == RunStatus.SUCCEEDED.value,
            r.expired_at.is_(None),
            r.finished_at < cutoff,
        )
        old = [_run_record(row) for row in self.store.run(lambda c: c.execute(stmt).all())]
        root = Path(schedule.output_dir).resolve()
        expired = []
        for run in old:
            if run.path is not None:
                path = Path(run.path)
                if path.resolve().parent == root:
                    path.unlink(missing_ok=True)
            self._set(run.id, RunStatus.SUCCEEDED, expired_at=moment)
            expired.append(run.id)
            logger.info("report run %s expired (schedule %s)", run.id, name)
        return [self.get_run(i) for i in expired]


def open_file(path: Path, password: str) -> dict[str, bytes]:
    """Decrypt a report file payhub wrote: an encrypted XLSX or an AES zip, by its suffix.
    Returns the plain file(s) by name; a wrong password is a :class:`ReportError`."""
    if path.suffix == ".xlsx":
        return {path.name: _crypto.decrypt_xlsx(path, password)}
    if path.suffix == ".zip":
        members = _crypto.read_aes_zip(path, password)
        opened: dict[str, bytes] = {}
        for name, data in members.items():
            if name.endswith(".xlsx") and data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
                with tempfile.TemporaryDirectory() as scratch:
                    sealed = Path(scratch) / name
                    sealed.write_bytes(data)
                    opened[name] = _crypto.decrypt_xlsx(sealed, password)
            else:
                opened[name] = data
        return opened
    raise ReportError(f"{path.name}: not a report file payhub encrypts (.xlsx or .zip)")
