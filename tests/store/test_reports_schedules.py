"""Scheduled exports: periods, run-due exactly once per period under concurrency, retention."""

from __future__ import annotations

import multiprocessing
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from reportkit import DAY, add_payments

from payhub.errors import InvalidRequestError
from payhub.reports import Reports, RunStatus, next_run, period_of
from payhub.store import Store
from payhub.tz import SHANGHAI

SPAWN = multiprocessing.get_context("spawn")


def shanghai(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def test_periods_are_the_previous_day_week_and_month_in_the_zone() -> None:
    moment = shanghai(2026, 3, 1, 1, 30)
    assert period_of("daily", moment, SHANGHAI) == (shanghai(2026, 2, 28), shanghai(2026, 3, 1))
    assert period_of("weekly", moment, SHANGHAI) == (shanghai(2026, 2, 22), shanghai(2026, 3, 1))
    assert period_of("monthly", moment, SHANGHAI) == (shanghai(2026, 2, 1), shanghai(2026, 3, 1))
    assert period_of("monthly", shanghai(2026, 1, 3, 2), SHANGHAI)[0] == shanghai(2025, 12, 1)
    # 16:30 UTC on 1 March is 00:30 on 2 March in Shanghai: the run covers 1 March there
    utc_moment = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
    assert period_of("daily", utc_moment, SHANGHAI) == (shanghai(2026, 3, 1), shanghai(2026, 3, 2))


def test_next_run_is_strictly_after() -> None:
    at = shanghai(2026, 3, 2, 1, 0)
    assert next_run("daily", "01:00", None, SHANGHAI, at - timedelta(seconds=1)) == at
    assert next_run("daily", "01:00", None, SHANGHAI, at) == at + timedelta(days=1)
    assert next_run("weekly", "01:00", 1, SHANGHAI, at) == shanghai(2026, 3, 9, 1)  # Monday
    assert next_run("monthly", "06:15", 1, SHANGHAI, at) == shanghai(2026, 4, 1, 6, 15)
    assert date(2026, 3, 9).isoweekday() == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frequency": "hourly"}, "frequency 'hourly'"),
        ({"frequency": "daily", "at_time": "24:00"}, "HH:MM"),
        ({"frequency": "weekly"}, "weekly schedule needs"),
        ({"frequency": "monthly", "day": 31}, "1 to 28"),
        ({"frequency": "daily", "filters": {"seller": "alice"}}, "cannot filter by seller"),
        ({"frequency": "daily", "template": "refunds"}, "is for 'refunds'"),
        ({"frequency": "daily", "retention_days": 0}, "retention_days"),
        ({"frequency": "daily", "password_env": "not a name"}, "password_env"),
    ],
)
def test_bad_schedules_are_refused(store: Store, tmp_path: Path, kwargs, message) -> None:
    reports = Reports(store)
    with pytest.raises(InvalidRequestError, match=message):
        reports.add_schedule("daily-payments", "payments", output_dir=tmp_path, **kwargs)
    assert reports.schedules() == []


def _clocked(url: str, now: datetime) -> Store:
    return Store(url, clock=lambda: now)


def test_run_due_runs_each_period_once_and_catches_up(store_url: str, tmp_path: Path) -> None:
    created = shanghai(2026, 1, 5, 12)
    with _clocked(store_url, created) as store:
        add_payments(store, [{"created_at": DAY + timedelta(days=d, hours=1)} for d in range(4)])
        reports = Reports(store)
        made = reports.add_schedule(
            "daily-payments",
            "payments",
            frequency="daily",
            at_time="01:00",
            output_dir=tmp_path / "daily",
            format="xlsx",
        )
        assert made.next_run_at == shanghai(2026, 1, 6, 1)
        assert reports.run_due(shanghai(2026, 1, 6, 0, 59)) == []
        first = reports.run_due(shanghai(2026, 1, 6, 1))
        assert [(r.status, r.rows, r.period_start) for r in first] == [
            (RunStatus.SUCCEEDED, 1, shanghai(2026, 1, 5))
        ]
        assert first[0].parameters["schedule"] == "daily-payments"
        assert reports.run_due(shanghai(2026, 1, 6, 23)) == []  # same period: nothing again
        # nothing called run-due for two days: both periods run, in order, on the next call
        later = reports.run_due(shanghai(2026, 1, 8, 9))
        assert [(r.period_start, r.rows) for r in later] == [
            (shanghai(2026, 1, 6), 1),
            (shanghai(2026, 1, 7), 1),
        ]
        assert len(list((tmp_path / "daily").iterdir())) == 3
        assert reports.schedule("daily-payments").next_run_at == shanghai(2026, 1, 9, 1)


def _run_due_worker(url: str, now_iso: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    now = datetime.fromisoformat(now_iso)
    with Store(url) as store:
        reports = Reports(store)
        barrier.wait(timeout=60)
        done = reports.run_due(now)
        results.put([r.id for r in done])


def test_concurrent_run_due_runs_each_period_exactly_once(store_url: str, tmp_path: Path) -> None:
    with _clocked(store_url, shanghai(2026, 1, 5, 12)) as store:
        add_payments(store, [{"created_at": DAY + timedelta(hours=1)}])
        reports = Reports(store)
        for n in range(3):
            reports.add_schedule(
                f"s{n}",
                "payments",
                frequency="daily",
                at_time="01:00",
                output_dir=tmp_path / f"s{n}",
            )
        workers = 6
        barrier = SPAWN.Barrier(workers)
        results = SPAWN.Queue()
        now = shanghai(2026, 1, 7, 2).isoformat()  # two periods due for each schedule
        procs = [
            SPAWN.Process(target=_run_due_worker, args=(store_url, now, barrier, results))
            for _ in range(workers)
        ]
        for p in procs:
            p.start()
        claimed = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        ids = [i for batch in claimed for i in batch]
        assert len(ids) == len(set(ids)) == 6  # 3 schedules x 2 periods, each by one process
        runs = reports.runs()
        assert len(runs) == 6
        assert all(r.status is RunStatus.SUCCEEDED for r in runs)
        assert sorted((r.schedule_id, r.period_start) for r in runs) == sorted(
            {(r.schedule_id, r.period_start) for r in runs}
        )
        for n in range(3):
            assert len(list((tmp_path / f"s{n}").iterdir())) == 2


def test_retention_deletes_only_old_files_the_schedule_wrote(
    store_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "exports"
    with _clocked(store_url, shanghai(2026, 1, 1, 12)) as store:
        reports = Reports(store)
        reports.add_schedule(
            "kept-3-days", "payments", frequency="daily", output_dir=out, retention_days=3
        )
        (out / "shop-notes.txt").parent.mkdir(parents=True, exist_ok=True)
        (out / "shop-notes.txt").write_text("not ours")
    # each run is recorded finished at its own moment
    for day in range(2, 9):
        with _clocked(store_url, shanghai(2026, 1, day, 1, 5)) as store:
            Reports(store).run_due()
    with Store(store_url) as store:
        reports = Reports(store)
        runs = reports.runs(schedule="kept-3-days")
        assert len(runs) == 7
        kept = [r for r in runs if r.expired_at is None]
        assert len(kept) == 4  # finished within the 3 days before the last run, and it
        for run in runs:
            assert Path(run.path).exists() == (run.expired_at is None)
        assert (out / "shop-notes.txt").read_text() == "not ours"
        with pytest.raises(Exception, match="retention"):
            reports.verify(runs[-1].id)


def test_a_scheduled_run_without_its_password_fails_and_says_which_variable(
    store_url: str, tmp_path: Path
) -> None:
    os.environ.pop("PAYHUB_TEST_SCHEDULE_PW", None)
    with _clocked(store_url, shanghai(2026, 1, 5, 12)) as store:
        reports = Reports(store)
        reports.add_schedule(
            "secret",
            "payments",
            frequency="daily",
            output_dir=tmp_path / "x",
            password_env="PAYHUB_TEST_SCHEDULE_PW",
            format="xlsx",
        )
        (run,) = reports.run_due(shanghai(2026, 1, 6, 2))
        assert run.status is RunStatus.FAILED
        assert "'PAYHUB_TEST_SCHEDULE_PW' is not set" in (run.error or "")
        assert reports.run_due(shanghai(2026, 1, 6, 3)) == []  # the period is not run twice
