"""Settlement cycles (payhub.settlement)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payhub.errors import ConfigurationError, InvalidRequestError
from payhub.hookspecs import hookimpl
from payhub.plugins import get_plugin_manager
from payhub.settlement import (
    HolidaySchedule,
    MonthlyCycle,
    NaturalDayCycle,
    SettlementCycle,
    WeeklyCycle,
    WorkdayCalendar,
    WorkingDayCycle,
    WorkingDays,
    calendar_from_config,
    calendar_providers,
    is_working_day,
    parse_cycle,
    supported_range,
)
from payhub.settlement.cycles import SHANGHAI

PROPERTY = settings(max_examples=150, deadline=None, database=None)
NEW_YORK = ZoneInfo("America/New_York")
ONE_MICROSECOND = timedelta(microseconds=1)


def sh(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=SHANGHAI)


# -- T+N around the 2025 Spring Festival (28 Jan - 4 Feb off; Sun 26 Jan, Sat 8 Feb worked) ---


@pytest.mark.parametrize(
    ("code", "paid_at", "settles"),
    [
        ("T+1", sh(2025, 1, 24, 15), date(2025, 1, 26)),  # Friday -> the make-up Sunday
        ("T+1", sh(2025, 1, 25, 15), date(2025, 1, 26)),  # Saturday -> the make-up Sunday
        ("T+1", sh(2025, 1, 27, 23, 59), date(2025, 2, 5)),  # over the whole holiday
        ("T+1", sh(2025, 1, 30, 10), date(2025, 2, 5)),  # paid during the holiday
        ("T+1", sh(2025, 2, 7, 10), date(2025, 2, 8)),  # Friday -> the make-up Saturday
        ("T+1", sh(2025, 2, 8, 10), date(2025, 2, 10)),  # the make-up Saturday -> Monday
        ("T+2", sh(2025, 1, 24, 15), date(2025, 1, 27)),
        ("T+2", sh(2025, 1, 26, 15), date(2025, 2, 5)),
        ("T+0", sh(2025, 1, 27, 10), date(2025, 1, 27)),  # a working day settles itself
        ("T+0", sh(2025, 1, 29, 10), date(2025, 2, 5)),  # a holiday rolls to the next one
        ("D+0", sh(2025, 1, 29, 10), date(2025, 1, 29)),
        ("D+1", sh(2025, 1, 29, 10), date(2025, 1, 30)),  # natural days ignore holidays
        ("D+7", sh(2024, 2, 25, 10), date(2024, 3, 3)),  # across 29 February
    ],
)
def test_settle_dates(code: str, paid_at: datetime, settles: date) -> None:
    assert parse_cycle(code).settle_date(paid_at) == settles


def test_working_days_follow_the_official_calendar() -> None:
    assert is_working_day(date(2025, 1, 26))  # a Sunday, worked in lieu
    assert not is_working_day(date(2025, 1, 29))  # Spring Festival, a Wednesday
    assert not is_working_day(date(2025, 3, 1))  # an ordinary Saturday
    assert is_working_day(date(2025, 3, 3))


def test_windows_under_t_plus_n() -> None:
    t1 = parse_cycle("T+1")
    assert t1.window(date(2025, 2, 5)) == (sh(2025, 1, 27), sh(2025, 2, 5))
    assert t1.window(date(2025, 1, 26)) == (sh(2025, 1, 24), sh(2025, 1, 26))
    assert t1.window(date(2025, 1, 29)) is None  # a holiday: nothing settles
    assert not t1.is_settle_date(date(2025, 1, 29))
    assert t1.is_settle_date(date(2025, 1, 26))
    t0 = parse_cycle("T+0")
    assert t0.window(date(2025, 2, 5)) == (sh(2025, 1, 28), sh(2025, 2, 6))
    t2 = parse_cycle("T+2")
    assert t2.window(date(2025, 2, 5)) == (sh(2025, 1, 26), sh(2025, 1, 27))


def test_window_bounds_are_aware_and_in_the_cycle_zone() -> None:
    window = parse_cycle("D+1").window(date(2025, 3, 3))
    assert window is not None
    start, end = window
    assert start.tzinfo is SHANGHAI
    assert end.tzinfo is SHANGHAI
    assert start.astimezone(UTC) == datetime(2025, 3, 1, 16, tzinfo=UTC)


def test_cutoff_moves_late_payments_to_the_next_day() -> None:
    cycle = parse_cycle("D+1", cutoff="22:00")
    assert cycle.settle_date(sh(2024, 5, 6, 21, 59, 59, 999999)) == date(2024, 5, 7)
    assert cycle.settle_date(sh(2024, 5, 6, 22)) == date(2024, 5, 8)
    assert cycle.trade_date(sh(2024, 5, 6, 22)) == date(2024, 5, 7)
    assert cycle.window(date(2024, 5, 8)) == (sh(2024, 5, 6, 22), sh(2024, 5, 7, 22))


def test_cutoff_with_working_days() -> None:
    cycle = WorkingDayCycle(1, cutoff=time(23, 0))
    assert cycle.settle_date(sh(2025, 1, 24, 22, 59)) == date(2025, 1, 26)
    # Friday after the cutoff counts as Saturday, still settled on the make-up Sunday
    assert cycle.settle_date(sh(2025, 1, 24, 23, 0)) == date(2025, 1, 26)
    # the make-up Sunday after the cutoff counts as Monday 27 January
    assert cycle.settle_date(sh(2025, 1, 26, 23, 30)) == date(2025, 2, 5)


def test_paid_at_in_another_zone_is_converted() -> None:
    cycle = parse_cycle("D+0")
    # 16:30 UTC is already half past midnight the next day in Shanghai
    assert cycle.settle_date(datetime(2025, 3, 2, 16, 30, tzinfo=UTC)) == date(2025, 3, 3)
    assert cycle.settle_date(datetime(2025, 3, 2, 15, 59, tzinfo=UTC)) == date(2025, 3, 2)


def test_dates_at_the_ends_of_time_raise_a_typed_error() -> None:
    with pytest.raises(InvalidRequestError, match="out of range"):
        parse_cycle("D+1").settle_date(datetime.max.replace(tzinfo=UTC))
    with pytest.raises(InvalidRequestError, match="out of range"):
        parse_cycle("D+1").window(date.min)
    with pytest.raises(InvalidRequestError, match="out of range"):
        parse_cycle("D+1").is_settle_date(date.min)


def test_naive_paid_at_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="timezone-aware"):
        parse_cycle("D+1").settle_date(datetime(2025, 3, 3, 12))
    with pytest.raises(InvalidRequestError, match="datetime"):
        parse_cycle("D+1").settle_date(date(2025, 3, 3))  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="expected a date"):
        parse_cycle("D+1").window(sh(2025, 3, 3))


# -- weekly and monthly ----------------------------------------------------------------------


def test_weekly_settles_last_weeks_trades() -> None:
    cycle = parse_cycle("weekly:wed")
    assert isinstance(cycle, WeeklyCycle)
    assert cycle.settle_date(sh(2024, 5, 6)) == date(2024, 5, 15)  # Monday
    assert cycle.settle_date(sh(2024, 5, 12, 23, 59)) == date(2024, 5, 15)  # Sunday
    assert cycle.settle_date(sh(2024, 5, 13)) == date(2024, 5, 22)  # next Monday
    assert cycle.window(date(2024, 5, 15)) == (sh(2024, 5, 6), sh(2024, 5, 13))
    assert cycle.window(date(2024, 5, 14)) is None  # a Tuesday


def test_monthly_clamps_to_the_month_end() -> None:
    cycle = parse_cycle("monthly:31")
    assert cycle.settle_date(sh(2024, 1, 15)) == date(2024, 2, 29)
    assert cycle.settle_date(sh(2023, 1, 15)) == date(2023, 2, 28)
    assert cycle.settle_date(sh(2024, 2, 29, 23)) == date(2024, 3, 31)
    assert cycle.settle_date(sh(2024, 12, 31, 23)) == date(2025, 1, 31)
    assert cycle.window(date(2024, 2, 29)) == (sh(2024, 1, 1), sh(2024, 2, 1))
    assert cycle.window(date(2024, 2, 28)) is None
    assert cycle.window(date(2024, 4, 30)) == (sh(2024, 3, 1), sh(2024, 4, 1))
    fifth = parse_cycle("monthly:5")
    assert fifth.settle_date(sh(2024, 3, 5)) == date(2024, 4, 5)
    assert fifth.window(date(2025, 1, 5)) == (sh(2024, 12, 1), sh(2025, 1, 1))
    assert fifth.window(date(2025, 1, 6)) is None


# -- the calendar's range, and the calendar missing -----------------------------------------


def test_supported_range_is_the_packages_whole_years() -> None:
    years = [day.year for day in chinese_calendar.holidays]
    first, last = supported_range()
    assert (first, last) == (date(min(years), 1, 1), date(max(years), 12, 31))
    assert first <= date(2004, 1, 1)
    assert last >= date(2026, 12, 31)
    is_working_day(first)
    is_working_day(last)
    with pytest.raises(ConfigurationError, match="no working-day calendar knows"):
        is_working_day(last + timedelta(days=1))
    with pytest.raises(ConfigurationError, match="no working-day calendar knows"):
        is_working_day(first - timedelta(days=1))


def test_dates_outside_the_calendar_raise_a_clear_error() -> None:
    first, last = supported_range()
    cycle = parse_cycle("T+1")
    with pytest.raises(ConfigurationError, match=r"knows .* upgrade chinesecalendar"):
        cycle.settle_date(datetime.combine(last, time(12), tzinfo=SHANGHAI))
    # a payment before the calendar's first day is refused, even where the first working
    # day after it is known
    with pytest.raises(ConfigurationError, match="no working-day calendar knows"):
        cycle.settle_date(datetime.combine(first - timedelta(days=1), time(12), tzinfo=SHANGHAI))
    # T+0 on the last day is known when that day is a working day, but not after a cutoff
    if is_working_day(last):
        last_noon = datetime.combine(last, time(12), tzinfo=SHANGHAI)
        assert parse_cycle("T+0").settle_date(last_noon) == last
    with pytest.raises(ConfigurationError, match="no working-day calendar knows"):
        WorkingDayCycle(0, cutoff=time(22)).settle_date(
            datetime.combine(last, time(22), tzinfo=SHANGHAI)
        )
    first_working_day = first
    while not is_working_day(first_working_day):
        first_working_day += timedelta(days=1)
    with pytest.raises(ConfigurationError, match="no working-day calendar knows"):
        cycle.window(first_working_day)  # its window starts before the calendar does
    # natural-day cycles do not need the calendar at all
    assert parse_cycle("D+1").settle_date(sh(2040, 1, 1)) == date(2040, 1, 2)


def test_missing_calendar_package_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "chinese_calendar", None)  # makes the import fail
    with pytest.raises(ConfigurationError, match=r"pip install 'payhub-cn\[calendar\]'"):
        parse_cycle("T+1").settle_date(sh(2025, 3, 3))
    with pytest.raises(ConfigurationError, match="payhub"):
        supported_range()
    assert parse_cycle("D+1").settle_date(sh(2025, 3, 3)) == date(2025, 3, 4)


def test_the_calendar_is_imported_lazily() -> None:
    code = (
        "import sys, payhub.settlement; "
        "c = payhub.settlement.parse_cycle('T+1'); "
        "print('chinese_calendar' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# -- parsing and construction ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("T+1", WorkingDayCycle(1)),
        ("T+0", WorkingDayCycle(0)),
        ("T+15", WorkingDayCycle(15)),
        ("D+0", NaturalDayCycle(0)),
        ("D+30", NaturalDayCycle(30)),
        ("weekly:mon", WeeklyCycle(0)),
        ("weekly:sun", WeeklyCycle(6)),
        ("monthly:1", MonthlyCycle(1)),
        ("monthly:31", MonthlyCycle(31)),
    ],
)
def test_parse_cycle(text: str, expected: SettlementCycle) -> None:
    cycle = parse_cycle(text)
    assert cycle == expected
    assert str(cycle) == text
    assert cycle.code == text


def test_parse_cycle_options() -> None:
    cycle = parse_cycle("D+1", tz="UTC", cutoff=time(18, 30))
    assert cycle == NaturalDayCycle(1, tz=ZoneInfo("UTC"), cutoff=time(18, 30))
    assert parse_cycle("D+1", cutoff="18:30") == NaturalDayCycle(1, cutoff=time(18, 30))


@pytest.mark.parametrize(
    "text",
    [
        *["", "T+", "T+-1", "T+01", "T+1000", "X+1", "t +1", " T+1", "T+1 ", "T+１"],
        *["weekly:monday", "weekly:", "monthly:0", "monthly:32", "monthly:05", "D1", "D-1"],
    ],
)
def test_parse_cycle_refuses_anything_else(text: str) -> None:
    with pytest.raises(ConfigurationError, match="settlement cycle"):
        parse_cycle(text)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tz": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"tz": "../etc/passwd"}, "unknown time zone"),
        ({"tz": 8}, "tzinfo or an IANA"),
        ({"cutoff": "24:00"}, "HH:MM"),
        ({"cutoff": "7:00"}, "HH:MM"),
        ({"cutoff": 22}, "HH:MM"),
        ({"cutoff": time(22, tzinfo=UTC)}, "naive time"),
    ],
)
def test_bad_cycle_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_cycle("D+1", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: WorkingDayCycle(-1), "days"),
        (lambda: NaturalDayCycle(367), "days"),
        (lambda: NaturalDayCycle(True), "days"),
        (lambda: WeeklyCycle(7), "weekday"),
        (lambda: MonthlyCycle(0), "day must be 1 to 31"),
        (lambda: MonthlyCycle(32), "day must be 1 to 31"),
        (lambda: NaturalDayCycle(1, tz="Asia/Shanghai"), "tzinfo"),  # type: ignore[arg-type]
    ],
)
def test_bad_cycles(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make()


# -- daylight saving (never in Shanghai, but a cycle may use any zone) -----------------------


@pytest.mark.parametrize(
    ("day", "cutoff"),
    [
        (date(2024, 3, 10), time(2, 30)),  # the cutoff does not exist that day
        (date(2024, 11, 3), time(1, 30)),  # the cutoff happens twice that day
        (date(2024, 3, 10), time(0, 0)),
        (date(2024, 11, 3), time(0, 0)),
    ],
)
def test_trade_days_stay_consistent_across_daylight_saving(day: date, cutoff: time) -> None:
    cycle = NaturalDayCycle(0, tz=NEW_YORK, cutoff=cutoff)
    start = datetime.combine(day, time(0), tzinfo=NEW_YORK).astimezone(UTC) - timedelta(hours=3)
    previous: date | None = None
    for step in range(12 * 30):  # every 5 minutes for 30 hours
        instant = start + timedelta(minutes=5 * step)
        settles = cycle.settle_date(instant)
        assert previous is None or previous <= settles <= previous + timedelta(days=1)
        previous = settles
        window = cycle.window(settles)
        assert window is not None
        assert window[0].astimezone(UTC) <= instant < window[1].astimezone(UTC)


# -- properties ----------------------------------------------------------------------------

ZONES = [SHANGHAI, ZoneInfo("UTC"), NEW_YORK, ZoneInfo("Europe/London"), ZoneInfo("Asia/Kolkata")]
cutoffs = st.sampled_from([time(0), time(15, 0), time(22, 30), time(23, 59, 59)]) | st.times()


def instants(first: datetime, last: datetime) -> st.SearchStrategy[datetime]:
    return st.datetimes(first, last).map(lambda naive: naive.replace(tzinfo=UTC))


calendar_instants = instants(datetime(2004, 2, 1), datetime(2026, 11, 30))
any_instants = instants(datetime(1971, 1, 1), datetime(2099, 12, 1))


@st.composite
def working_day_cycles(draw: st.DrawFn) -> WorkingDayCycle:
    return WorkingDayCycle(
        draw(st.integers(0, 5)), tz=draw(st.sampled_from(ZONES)), cutoff=draw(cutoffs)
    )


@st.composite
def calendar_free_cycles(draw: st.DrawFn) -> SettlementCycle:
    tz, cutoff = draw(st.sampled_from(ZONES)), draw(cutoffs)
    kind = draw(st.sampled_from(["D", "weekly", "monthly"]))
    if kind == "D":
        return NaturalDayCycle(draw(st.integers(0, 30)), tz=tz, cutoff=cutoff)
    if kind == "weekly":
        return WeeklyCycle(draw(st.integers(0, 6)), tz=tz, cutoff=cutoff)
    return MonthlyCycle(draw(st.integers(1, 31)), tz=tz, cutoff=cutoff)


def check_window_holds(cycle: SettlementCycle, paid_at: datetime) -> date:
    settles = cycle.settle_date(paid_at)
    assert settles >= paid_at.astimezone(cycle.tz).date()
    window = cycle.window(settles)
    assert window is not None
    start, end = (bound.astimezone(UTC) for bound in window)
    assert start <= paid_at < end
    # the window is exactly the set of instants settled that day
    assert cycle.settle_date(start) == settles
    assert cycle.settle_date(end - ONE_MICROSECOND) == settles
    assert cycle.settle_date(end) > settles
    assert cycle.settle_date(start - ONE_MICROSECOND) < settles
    return settles


@PROPERTY
@given(cycle=working_day_cycles(), paid_at=calendar_instants)
def test_t_plus_n_lands_on_the_nth_working_day(cycle: WorkingDayCycle, paid_at: datetime) -> None:
    settles = check_window_holds(cycle, paid_at)
    assert chinese_calendar.is_workday(settles)
    trade = cycle.trade_date(paid_at)
    if cycle.days == 0:
        assert settles >= trade
        assert chinese_calendar.get_workdays(trade, settles) == [settles]
    else:
        assert settles > trade
        assert len(chinese_calendar.get_workdays(trade + timedelta(days=1), settles)) == cycle.days


@PROPERTY
@given(cycle=calendar_free_cycles(), paid_at=any_instants)
def test_every_payment_lies_in_the_window_of_its_settle_date(
    cycle: SettlementCycle, paid_at: datetime
) -> None:
    settles = check_window_holds(cycle, paid_at)
    if isinstance(cycle, WeeklyCycle):
        assert settles.weekday() == cycle.weekday
    if isinstance(cycle, NaturalDayCycle):
        assert settles - cycle.trade_date(paid_at) == timedelta(days=cycle.days)


@PROPERTY
@given(
    days=st.integers(0, 5),
    cutoff=cutoffs,
    day=st.dates(date(2004, 2, 1), date(2026, 11, 30)),
)
def test_t_plus_n_windows_tile_the_timeline(days: int, cutoff: time, day: date) -> None:
    cycle = WorkingDayCycle(days, cutoff=cutoff)
    window = cycle.window(day)
    assert (window is None) == (not chinese_calendar.is_workday(day))
    if window is not None:
        following = day + timedelta(days=1)
        while not chinese_calendar.is_workday(following):
            following += timedelta(days=1)
        next_window = cycle.window(following)
        assert next_window is not None
        assert window[1] == next_window[0]
        assert window[0] < window[1]


@PROPERTY
@given(cycle=calendar_free_cycles(), day=st.dates(date(1971, 2, 1), date(2099, 11, 30)))
def test_windows_exist_exactly_on_settle_dates(cycle: SettlementCycle, day: date) -> None:
    window = cycle.window(day)
    assert (window is not None) == cycle.is_settle_date(day)
    if isinstance(cycle, NaturalDayCycle):
        assert window is not None
    if window is not None:
        assert cycle.settle_date(window[0]) == day
        assert cycle.settle_date(window[1] - ONE_MICROSECOND) == day


# -- a pluggable calendar: the year after chinesecalendar's data (issue 11 point 24) -----

#: An ILLUSTRATIVE 2027 schedule in the State Council's format (New Year's Day on
#: Friday 1 January; a Spring Festival week with a make-up Saturday) — not the
#: official notice, which these tests do not depend on.
SCHEDULE_2027 = {
    "2027": {
        "holidays": ["2027-01-01", *[f"2027-02-{d:02d}" for d in range(8, 13)]],
        "workdays": ["2027-02-20"],
    }
}


def test_late_december_t_plus_1_needs_next_years_schedule() -> None:
    dec31 = sh(2026, 12, 31, 15)  # a Thursday, the last day chinesecalendar 1.11 knows
    if supported_range()[1] >= date(2027, 12, 31):
        pytest.skip("the installed chinesecalendar already knows 2027")
    with pytest.raises(ConfigurationError, match="add 2027's official schedule"):
        parse_cycle("T+1").settle_date(dec31)
    calendar = calendar_from_config({"schedules": SCHEDULE_2027})
    t1 = parse_cycle("T+1", calendar=calendar)
    assert t1.settle_date(dec31) == date(2027, 1, 4)  # over New Year's Day and the weekend
    assert t1.settle_date(sh(2026, 12, 30, 10)) == date(2026, 12, 31)  # chinesecalendar's part
    assert t1.window(date(2027, 1, 4)) == (sh(2026, 12, 31), sh(2027, 1, 4))
    assert t1.window(date(2027, 1, 1)) is None


def test_a_configured_schedule_has_holidays_and_make_up_working_days() -> None:
    t1 = parse_cycle("T+1", calendar=calendar_from_config({"schedules": SCHEDULE_2027}))
    assert t1.settle_date(sh(2027, 2, 5, 10)) == date(2027, 2, 15)  # Friday, over the festival
    assert t1.settle_date(sh(2027, 2, 19, 10)) == date(2027, 2, 20)  # Friday -> make-up Saturday
    assert t1.settle_date(sh(2027, 2, 20, 10)) == date(2027, 2, 22)  # make-up Saturday -> Monday
    assert t1.is_settle_date(date(2027, 2, 20))
    assert not t1.is_settle_date(date(2027, 2, 21))
    t0 = parse_cycle("T+0", calendar=calendar_from_config({"schedules": SCHEDULE_2027}))
    assert t0.settle_date(sh(2027, 2, 10, 10)) == date(2027, 2, 15)


def test_the_shops_schedule_wins_over_the_package() -> None:
    # A correction to a year the package knows (e.g. a late change by the State Council).
    calendar = calendar_from_config({"schedules": {"2025": {"holidays": ["2025-03-03"]}}})
    assert calendar.is_working_day(date(2025, 3, 3)) is False
    assert calendar.is_working_day(date(2025, 1, 26)) is False  # its year: weekends off
    assert is_working_day(date(2025, 3, 3)) is True  # the default calendar is unchanged


def test_beyond_weekends_guesses_and_warns_once_per_year(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[date] = []
    calendar = calendar_from_config({"providers": [], "beyond": "weekends"}, on_beyond=seen.append)
    t1 = parse_cycle("T+1", calendar=calendar)
    with caplog.at_level("WARNING", logger="payhub.settlement"):
        assert t1.settle_date(sh(2027, 12, 31, 10)) == date(2028, 1, 3)  # Fri -> Mon
        assert t1.settle_date(sh(2027, 12, 30, 10)) == date(2027, 12, 31)
    assert seen == [date(2027, 12, 31), date(2028, 1, 1)]  # once per year
    warnings = [r for r in caplog.records if r.name == "payhub.settlement"]
    assert len(warnings) == 2
    assert "2027" in warnings[0].getMessage()


def test_beyond_error_is_the_default() -> None:
    calendar = calendar_from_config({"providers": []})
    with pytest.raises(ConfigurationError, match="no working-day calendar knows 2027-03-01"):
        calendar.is_working_day(date(2027, 3, 1))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"beyond": "guess"}, "'error' or 'weekends'"),
        ({"providers": ["nope"]}, "unknown calendar provider 'nope'"),
        ({"providers": "chinesecalendar"}, "list of names"),
        ({"holidays": []}, "unknown keys"),
        ({"schedules": {"2027": {"holidays": ["2027-02-30"]}}}, "not a YYYY-MM-DD"),
        ({"schedules": {"2027": {"holidays": ["2028-01-01"]}}}, "not in its year"),
        ({"schedules": {"2027": {"workdays": ["2027-02-22"]}}}, "already a working day"),
        ({"schedules": {"27": {"holidays": []}}}, "not a year"),
        ({"schedules": {"2027": {"holiday": []}}}, "expected"),
        (
            {"schedules": {"2027": {"holidays": ["2027-02-20"], "workdays": ["2027-02-20"]}}},
            "both a holiday and a make-up",
        ),
    ],
)
def test_bad_calendar_configuration(config: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        calendar_from_config(config)


class _FixedCalendar:
    """A third-party calendar: knows 2027, every weekday but 1 March off."""

    def is_workday(self, day: date, /) -> bool | None:
        if day.year != 2027:
            return None
        return day.weekday() < 5 and day != date(2027, 3, 1)


class _CalendarPlugin:
    def __init__(self) -> None:
        self.options: list[dict] = []

    @hookimpl
    def register_calendars(self, register) -> None:
        def factory(options):
            self.options.append(dict(options))
            return _FixedCalendar()

        register("shop-hr", factory)


def test_a_calendar_provider_registers_through_the_hook() -> None:
    assert isinstance(_FixedCalendar(), WorkdayCalendar)
    pm = get_plugin_manager(load_entrypoints=False)
    assert set(calendar_providers(pm)) == {"chinesecalendar"}  # built in, through the hook
    plugin = _CalendarPlugin()
    pm.register(plugin, name="shop-hr")
    assert set(calendar_providers(pm)) == {"chinesecalendar", "shop-hr"}
    calendar = calendar_from_config(
        {"providers": ["shop-hr", "chinesecalendar"], "options": {"shop-hr": {"region": "sh"}}},
        plugin_manager=pm,
    )
    assert plugin.options == [{"region": "sh"}]
    t1 = parse_cycle("T+1", calendar=calendar)
    assert t1.settle_date(sh(2027, 2, 26, 10)) == date(2027, 3, 2)  # Fri -> over 1 March
    assert t1.settle_date(sh(2025, 1, 24, 15)) == date(2025, 1, 26)  # chinesecalendar after it


def test_two_providers_of_one_name_are_refused() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(_CalendarPlugin(), name="one")
    pm.register(_CalendarPlugin(), name="two")
    with pytest.raises(ConfigurationError, match="two plugins register calendar provider"):
        calendar_providers(pm)


def test_a_cycle_refuses_a_calendar_that_is_not_one() -> None:
    with pytest.raises(ConfigurationError, match="WorkingDays"):
        WorkingDayCycle(1, calendar=_FixedCalendar())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not a WorkdayCalendar"):
        WorkingDays([object()])  # type: ignore[list-item]
    assert HolidaySchedule(frozenset({2027})).is_workday(date(2026, 1, 5)) is None


def test_the_documented_calendar_configuration_loads() -> None:
    text = (Path(__file__).parent.parent / "docs" / "policy.md").read_text(encoding="utf-8")
    section = text.split("### The working-day calendar", 1)[1]
    config = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    calendar = calendar_from_config(config)
    # The documented 2026 schedule agrees with chinesecalendar on every day of 2026.
    schedule = HolidaySchedule.from_config(config["schedules"])
    day = date(2026, 1, 1)
    while day.year == 2026:
        assert schedule.is_workday(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)
    t1 = parse_cycle("T+1", calendar=calendar)
    # The documented example is the 2026 notice: Spring Festival 15-23 Feb, 14 and 28 Feb worked.
    assert t1.settle_date(sh(2026, 2, 13, 10)) == date(2026, 2, 14)
    assert t1.settle_date(sh(2026, 2, 14, 10)) == date(2026, 2, 24)
    assert not calendar.is_working_day(date(2026, 10, 7))
    assert calendar.is_working_day(date(2026, 10, 10))
