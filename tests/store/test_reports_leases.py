"""Stuck runs: a run whose process died is reclaimed once, its temp files removed,
and a scheduled period is run again (SQLite, PostgreSQL and MariaDB)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from reportkit import DAY, add_payments, day_filters
from typer.testing import CliRunner

from payhub.cli import app
from payhub.errors import ConfigurationError, ReportError
from payhub.reports import Reports, RunStatus
from payhub.reports._writers import CsvPart
from payhub.store import Store
from payhub.tz import SHANGHAI

SPAWN = multiprocessing.get_context("spawn")
LEASE = timedelta(seconds=60)
#: the period a daily 01:00 schedule runs on 6 January (5 January in Shanghai)
SCHEDULED_AT = datetime(2026, 1, 6, 2, tzinfo=SHANGHAI)


def _stall_after_first_chunk(marker: str) -> None:
    """Write the first chunk for real, then say so and hang (until killed)."""
    original = CsvPart.write

    def write(self, rows, limit):  # type: ignore[no-untyped-def]
        written = original(self, rows, limit)
        self._file.flush()
        Path(marker).write_text(str(os.getpid()))
        time.sleep(600)
        return written

    CsvPart.write = write  # type: ignore[method-assign]


def _doomed_worker(url: str, out: str, marker: str, mode: str) -> None:
    _stall_after_first_chunk(marker)
    with Store(url) as store:
        reports = Reports(store, output_dir=out, lease=LEASE)
        if mode == "run":
            reports.run("payments", day_filters())
        else:
            reports.run_due(SCHEDULED_AT)


def _kill_mid_run(url: str, out: Path, mode: str) -> None:
    """Start a run in another process and SIGKILL it while its file is half written."""
    marker = out.parent / f"{out.name}.stalled"
    child = SPAWN.Process(target=_doomed_worker, args=(url, str(out), str(marker), mode))
    child.start()
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.is_alive(), "the run ended before it stalled"
        assert time.monotonic() < deadline, "the run never started writing"
        time.sleep(0.05)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL


def _later(url: str, seconds: float) -> Store:
    """The store as another process sees it ``seconds`` from now."""
    return Store(url, clock=lambda: datetime.now(SHANGHAI) + timedelta(seconds=seconds))


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".payhub-run"))


def _payments(store: Store) -> None:
    add_payments(store, [{"created_at": DAY + timedelta(minutes=n)} for n in range(30)])


def test_a_killed_run_is_failed_by_the_next_run_and_its_temp_files_removed(
    store_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with Store(store_url) as store:
        _payments(store)
    _kill_mid_run(store_url, out, "run")
    with Store(store_url) as store:
        reports = Reports(store, output_dir=out, lease=LEASE)
        (stuck,) = reports.runs()
        assert stuck.status is RunStatus.RUNNING
        assert stuck.owner is not None
        assert stuck.heartbeat_at is not None
        assert len(_leftovers(out)) == 1  # the half-written part is still there
        # within the lease the owner may still be alive: nobody touches its run
        assert reports.reclaim() == []
        assert reports.get_run(stuck.id).status is RunStatus.RUNNING
    with _later(store_url, LEASE.total_seconds() + 1) as store:
        reports = Reports(store, output_dir=out, lease=LEASE)
        fresh = reports.run("payments", day_filters())  # reclaims first
        assert fresh.status is RunStatus.SUCCEEDED
        assert fresh.rows == 30
        failed = reports.get_run(stuck.id)
        assert failed.status is RunStatus.FAILED
        assert failed.error is not None
        assert failed.error.startswith("abandoned:")
        assert stuck.owner in failed.error
        assert "lease 60 s" in failed.error
        assert failed.finished_at is not None
        assert failed.path is None
        assert _leftovers(out) == []
        assert [p.name for p in out.iterdir()] == [Path(fresh.path or "").name]
        assert reports.reclaim() == []  # once


def test_a_killed_scheduled_run_is_run_again_by_run_due_as_attempt_two(
    store_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "daily"
    with Store(store_url, clock=lambda: datetime(2026, 1, 5, 12, tzinfo=SHANGHAI)) as store:
        _payments(store)
        Reports(store).add_schedule("daily", "payments", frequency="daily", output_dir=out)
    _kill_mid_run(store_url, out, "run-due")
    with Store(store_url) as store:
        assert Reports(store, lease=LEASE).run_due(SCHEDULED_AT) == []  # claimed, not stale
    with _later(store_url, LEASE.total_seconds() + 1) as store:
        reports = Reports(store, lease=LEASE)
        (again,) = reports.run_due(SCHEDULED_AT)
        assert again.status is RunStatus.SUCCEEDED
        assert again.rows == 30
        assert again.attempt == 2
        assert again.period_start == datetime(2026, 1, 5, tzinfo=SHANGHAI)
        assert again.parameters["schedule"] == "daily"
        first, second = sorted(reports.runs(schedule="daily"), key=lambda r: r.attempt)
        assert (first.attempt, first.status) == (1, RunStatus.FAILED)
        assert (first.error or "").startswith("abandoned:")
        assert second.id == again.id
        assert _leftovers(out) == []
        assert [p.name for p in out.iterdir()] == [Path(again.path or "").name]
        assert reports.run_due(SCHEDULED_AT) == []  # the period is done


def _reclaim_worker(url: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    with _later(url, LEASE.total_seconds() + 1) as store:
        reports = Reports(store, lease=LEASE)
        barrier.wait(timeout=60)
        done = reports.run_due(SCHEDULED_AT)
        results.put([(r.id, r.attempt, r.status.value) for r in done])


def test_several_processes_reclaim_and_rerun_a_dead_run_exactly_once(
    store_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "daily"
    with Store(store_url, clock=lambda: datetime(2026, 1, 5, 12, tzinfo=SHANGHAI)) as store:
        _payments(store)
        Reports(store).add_schedule("daily", "payments", frequency="daily", output_dir=out)
    _kill_mid_run(store_url, out, "run-due")
    workers = 4
    barrier = SPAWN.Barrier(workers)
    results = SPAWN.Queue()
    procs = [
        SPAWN.Process(target=_reclaim_worker, args=(store_url, barrier, results))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    done = [item for _ in procs for item in results.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert [(attempt, status) for _, attempt, status in done] == [(2, "succeeded")]
    with Store(store_url) as store:
        runs = Reports(store).runs(schedule="daily")
        assert sorted((r.attempt, r.status.value) for r in runs) == [
            (1, "failed"),
            (2, "succeeded"),
        ]
    assert _leftovers(out) == []
    assert len(list(out.iterdir())) == 1


def test_an_owner_that_comes_back_after_its_run_was_reclaimed_records_nothing(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    original = CsvPart.write

    def write(self, rows, limit):  # type: ignore[no-untyped-def]
        # while this process is "paused", another one decides its lease ran out
        with _later(store_url, LEASE.total_seconds() + 1) as later:
            (taken,) = Reports(later, lease=LEASE).reclaim()
            assert taken.status is RunStatus.FAILED
        return original(self, rows, limit)

    with Store(store_url) as store:
        _payments(store)
        monkeypatch.setattr(CsvPart, "write", write)
        reports = Reports(store, output_dir=out, lease=LEASE)
        with pytest.raises(ReportError, match="reclaimed by another process"):
            reports.run("payments", day_filters())
        (run,) = reports.runs()
        assert run.status is RunStatus.FAILED
        assert (run.error or "").startswith("abandoned:")  # the reclaimer's word stands
        assert run.path is None
        assert run.sha256 is None
        assert list(out.iterdir()) == []


def test_a_lease_must_be_positive(store: Store) -> None:
    with pytest.raises(ConfigurationError, match="lease"):
        Reports(store, lease=timedelta(0))


def test_the_cli_takes_the_lease_from_the_option_or_the_config(
    store_url: str, tmp_path: Path
) -> None:
    cli = CliRunner()
    env = {"PAYHUB_DATABASE_URL": store_url}
    refused = cli.invoke(app, ["reports", "run-due", "--lease", "0"], env=env)
    assert refused.exit_code == 2
    config = tmp_path / "hub.json"
    config.write_text(json.dumps({"store": {"url": store_url}, "reports": {"lease_seconds": 0}}))
    bad = cli.invoke(app, ["reports", "run-due", "--config", str(config)])
    assert bad.exit_code == 2
    assert "lease_seconds" in bad.output
    config.write_text(json.dumps({"store": {"url": store_url}, "reports": {"lease_seconds": 30}}))
    fine = cli.invoke(app, ["reports", "run-due", "--config", str(config)])
    assert fine.exit_code == 0, fine.output
    assert "nothing due" in fine.output
