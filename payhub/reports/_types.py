"""What a report is: its fields, the filters it understands, and how it streams its rows.

A :class:`ReportType` is registered once (:func:`register_report_type`); the
built-in types (payments, refunds, and the ledger's when it is there) come
through the same function other packages use (reconciliation differences,
for one). A type streams plain tuples in the order of its :attr:`fields`;
formatting (amounts in yuan, times in the report's zone, escaping) is the
writers' job, done once for every type.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from payhub.errors import InvalidRequestError
from payhub.money import CURRENCY_EXPONENTS
from payhub.tz import SHANGHAI

__all__ = [
    "FILTER_NAMES",
    "Field",
    "FieldKind",
    "ReportFilters",
    "ReportType",
    "register_report_type",
    "report_type",
    "report_types",
    "zone",
]


class FieldKind(enum.Enum):
    """How a field is written: the same rules for every report."""

    #: free text (subject, reason): escaped against formula injection
    TEXT = "text"
    #: an identifier (order number, trade id): always text, never a number in Excel
    ID = "id"
    #: integer minor units; written as a number in major units (yuan) with the
    #: currency's decimals. The row must have a ``currency`` field.
    AMOUNT = "amount"
    #: an aware datetime, written in the report's time zone
    TIME = "time"
    #: a plain integer (a count)
    INTEGER = "integer"


@dataclass(frozen=True)
class Field:
    """One column a report can show: its key, its kind and its Chinese and English headers."""

    key: str
    kind: FieldKind
    zh: str
    en: str

    def header(self, language: str) -> str:
        return self.zh if language == "zh" else self.en


#: every filter a report may understand besides the time range
FILTER_NAMES: Final = (
    "seller",
    "account_type",
    "channel",
    "status",
    "currency",
    "min_amount",
    "max_amount",
)


def zone(name: str | tzinfo) -> tzinfo:
    """``Asia/Shanghai`` (payhub's fixed zone, no tz database needed) or any IANA name."""
    if isinstance(name, tzinfo):
        return name
    if name == "Asia/Shanghai":
        return SHANGHAI
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequestError(f"unknown time zone {name!r}") from None


@dataclass(frozen=True)
class ReportFilters:
    """What rows a report holds: ``[start, end)`` and optional narrowing.

    ``start`` is inclusive and ``end`` exclusive (Stripe's ``interval_start`` /
    ``interval_end``), both aware; ``timezone`` is the zone the file's times
    are written in and a bare date is read in. Amounts are integer minor units.
    """

    start: datetime
    end: datetime
    timezone: str = "Asia/Shanghai"
    seller: str | None = None
    account_type: str | None = None
    channel: str | None = None
    status: str | None = None
    currency: str | None = None
    min_amount: int | None = None
    max_amount: int | None = None

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, datetime):
                raise InvalidRequestError(f"the range needs both ends: {name} is missing")
            if value.utcoffset() is None:
                raise InvalidRequestError(f"{name} must carry a time zone")
        if self.start >= self.end:
            raise InvalidRequestError(
                f"empty or inverted range: start {self.start.isoformat()} is not before "
                f"end {self.end.isoformat()} (the end is exclusive)"
            )
        zone(self.timezone)
        if self.currency is not None and self.currency not in CURRENCY_EXPONENTS:
            raise InvalidRequestError(f"unknown currency {self.currency!r}")
        for name in ("min_amount", "max_amount"):
            value = getattr(self, name)
            if value is not None and type(value) is not int:
                raise InvalidRequestError(f"{name} must be integer minor units")
        if (
            self.min_amount is not None
            and self.max_amount is not None
            and self.min_amount > self.max_amount
        ):
            raise InvalidRequestError("min_amount is above max_amount")

    @property
    def tz(self) -> tzinfo:
        return zone(self.timezone)

    def given(self) -> dict[str, Any]:
        """The narrowing filters that were given (not None)."""
        return {n: getattr(self, n) for n in FILTER_NAMES if getattr(self, n) is not None}

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "timezone": self.timezone,
            **self.given(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReportFilters:
        values = dict(data)
        for name in ("start", "end"):
            if isinstance(values.get(name), str):
                values[name] = datetime.fromisoformat(values[name])
        unknown = set(values) - {"start", "end", "timezone", *FILTER_NAMES}
        if unknown:
            raise InvalidRequestError(f"unknown filter(s): {', '.join(sorted(unknown))}")
        return cls(**values)


#: stream(connection, filters, yield_per) -> rows (sequences) in ``fields`` order
Streamer = Callable[[Any, ReportFilters, int], Iterator[Sequence[Any]]]
#: count(connection, filters) -> how many rows (for the progress bar)
Counter = Callable[[Any, ReportFilters], int]


@dataclass(frozen=True)
class ReportType:
    """A kind of report: its fields, the filters it takes, and its row stream."""

    name: str
    title_zh: str
    title_en: str
    fields: tuple[Field, ...]
    #: which of :data:`FILTER_NAMES` it understands; any other given filter is refused
    filters: frozenset[str]
    stream: Streamer
    count: Counter
    #: the default column set (all fields when empty)
    default_columns: tuple[str, ...] = field(default=())

    def field(self, key: str) -> Field:
        for item in self.fields:
            if item.key == key:
                return item
        known = ", ".join(f.key for f in self.fields)
        raise InvalidRequestError(
            f"report {self.name!r} has no field {key!r} (its fields: {known})"
        )

    def check_filters(self, filters: ReportFilters) -> None:
        extra = sorted(set(filters.given()) - self.filters)
        if extra:
            takes = ", ".join(sorted(self.filters)) or "none"
            raise InvalidRequestError(
                f"report {self.name!r} cannot filter by {', '.join(extra)} "
                f"(it takes: {takes})"
            )


_REGISTRY: dict[str, ReportType] = {}
_BUILTINS_LOADED = False


def register_report_type(kind: ReportType, *, replace: bool = False) -> None:
    """Add a report type (reconciliation differences register theirs here)."""
    if not replace and kind.name in _REGISTRY:
        raise InvalidRequestError(f"report type {kind.name!r} is already registered")
    if not any(f.key == "currency" for f in kind.fields) and any(
        f.kind is FieldKind.AMOUNT for f in kind.fields
    ):
        raise InvalidRequestError(f"report type {kind.name!r} has amounts but no currency field")
    _REGISTRY[kind.name] = kind


def _load_builtins() -> None:
    global _BUILTINS_LOADED  # noqa: PLW0603 - the registry fills itself once, on first use
    if not _BUILTINS_LOADED:
        _BUILTINS_LOADED = True
        from payhub.reports import _builtin  # noqa: PLC0415 - registers on import

        _builtin.register_builtins()


def report_types() -> dict[str, ReportType]:
    """Every registered report type, by name."""
    _load_builtins()
    return dict(_REGISTRY)


def report_type(name: str) -> ReportType:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise InvalidRequestError(f"unknown report type {name!r} (known: {known})") from None
