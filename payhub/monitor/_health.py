"""``payhub health``: what is waiting too long, each check one small function.

A check takes the :class:`HealthContext` and returns a :class:`CheckResult`.
The built-in ones are in :data:`CHECKS`; :func:`register_check` adds one
(settlements due, reconciliation differences: other packages add theirs), and
so does a plugin's ``register_health_checks`` hook.

Exit codes of ``payhub health`` (:func:`exit_code`): 0 every check ok; 1 a
check is over its threshold; 2 usage or configuration; 3 a component (the
database, Redis) could not be reached.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from payhub.config import resolve_secret, validated
from payhub.errors import PayhubError
from payhub.store import Backlog, Store

__all__ = [
    "CHECKS",
    "CheckResult",
    "CheckStatus",
    "HealthConfig",
    "HealthContext",
    "HealthReport",
    "exit_code",
    "register_check",
    "run_checks",
]


class CheckStatus(enum.StrEnum):
    OK = "ok"
    FAIL = "fail"  #: over its threshold
    UNREACHABLE = "unreachable"  #: a component could not be asked


class HealthConfig(BaseModel):
    """Thresholds, as the ``"health"`` section of the hub configuration (seconds
    and counts; a count is tolerated up to its ``*_max``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pending_after: int = Field(default=900, ge=1, description="a payment pending this long counts")
    pending_max: int = Field(default=0, ge=0)
    undelivered_after: int = Field(default=300, ge=1)
    undelivered_max: int = Field(default=0, ge=0)
    refused_window: int = Field(default=3600, ge=1)
    refused_max: int = Field(default=0, ge=0)
    anomalies_max: int = Field(default=0, ge=0)
    reviews_max: int = Field(default=0, ge=0)
    #: pending money due for settlement this long without a batch: `payhub settle run` missed
    settle_after: int = Field(default=7200, ge=1)
    settlements_due_max: int = Field(default=0, ge=0)
    recon_open_max: int = Field(default=0, ge=0)
    #: checked with PING when given (``{"$env": ...}`` allowed)
    redis_url: Any = None

    @classmethod
    def from_config(cls, config: object) -> HealthConfig:
        return validated(cls, config or {}, "health")


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: CheckStatus
    value: float | None
    detail: str
    threshold: float | None = None
    oldest_seconds: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "value": self.value,
            "threshold": self.threshold,
            "oldest_seconds": self.oldest_seconds,
            "detail": self.detail,
        }


@dataclass
class HealthContext:
    store: Store
    config: HealthConfig
    _backlog: Backlog | None = field(default=None, repr=False)

    def backlog(self) -> Backlog:
        """The store's backlog, read once for every check that needs it."""
        if self._backlog is None:
            c = self.config
            self._backlog = self.store.backlog(
                pending_after=timedelta(seconds=c.pending_after),
                undelivered_after=timedelta(seconds=c.undelivered_after),
                refused_window=timedelta(seconds=c.refused_window),
                settle_after=timedelta(seconds=c.settle_after),
            )
        return self._backlog


Check = Callable[[HealthContext], CheckResult]
CHECKS: list[Check] = []


def register_check(check: Check) -> Check:
    """Add ``check`` to :data:`CHECKS` (usable as a decorator)."""
    if check not in CHECKS:
        CHECKS.append(check)
    return check


def _count(
    name: str, value: int, limit: int, what: str, oldest: float | None = None
) -> CheckResult:
    status = CheckStatus.OK if value <= limit else CheckStatus.FAIL
    age = "" if oldest is None else f", oldest {int(oldest)}s"
    return CheckResult(name, status, value, f"{value} {what}{age}", limit, oldest)


@register_check
def database(ctx: HealthContext) -> CheckResult:
    try:
        ctx.store.ping()
    except PayhubError as exc:
        return CheckResult("database", CheckStatus.UNREACHABLE, None, exc.message)
    return CheckResult("database", CheckStatus.OK, None, f"{ctx.store.dialect} answers")


@register_check
def pending_payments(ctx: HealthContext) -> CheckResult:
    b = ctx.backlog()
    return _count(
        "pending_payments", b.pending, ctx.config.pending_max,
        f"payments pending over {ctx.config.pending_after}s", b.pending_oldest,
    )


@register_check
def undelivered_events(ctx: HealthContext) -> CheckResult:
    b = ctx.backlog()
    return _count(
        "undelivered_events", b.undelivered, ctx.config.undelivered_max,
        f"events undelivered over {ctx.config.undelivered_after}s", b.undelivered_oldest,
    )


@register_check
def refused_notifications(ctx: HealthContext) -> CheckResult:
    b = ctx.backlog()
    return _count(
        "refused_notifications", b.refused, ctx.config.refused_max,
        f"notifications held, not credited, in {ctx.config.refused_window}s",
    )


@register_check
def open_anomalies(ctx: HealthContext) -> CheckResult:
    b = ctx.backlog()
    return _count("open_anomalies", b.open_anomalies, ctx.config.anomalies_max, "open anomalies")


@register_check
def reviews_waiting(ctx: HealthContext) -> CheckResult:
    b = ctx.backlog()
    return _count(
        "reviews_waiting", b.reviews_waiting, ctx.config.reviews_max,
        "paid payments waiting for risk review",
    )


@register_check
def settlements_due(ctx: HealthContext) -> CheckResult:
    b = ctx.backlog()
    return _count(
        "settlements_due", b.settlements_due, ctx.config.settlements_due_max,
        f"ledger entries due for settlement over {ctx.config.settle_after}s, in no batch",
        b.settlements_due_oldest,
    )


@register_check
def recon_differences(ctx: HealthContext) -> CheckResult:
    b = ctx.backlog()
    return _count(
        "recon_differences", b.recon_open, ctx.config.recon_open_max,
        "unresolved reconciliation differences", b.recon_open_oldest,
    )


@register_check
def redis(ctx: HealthContext) -> CheckResult:
    if ctx.config.redis_url is None:
        return CheckResult("redis", CheckStatus.OK, None, "not configured")
    url = resolve_secret(ctx.config.redis_url, "health.redis_url").get_text()
    try:
        import redis as redis_py  # noqa: PLC0415 - an optional dependency

        client = redis_py.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except ImportError:
        return CheckResult("redis", CheckStatus.UNREACHABLE, None, "redis-py is not installed")
    except Exception as exc:
        return CheckResult("redis", CheckStatus.UNREACHABLE, None, type(exc).__name__)
    return CheckResult("redis", CheckStatus.OK, None, "answers")


@dataclass(frozen=True)
class HealthReport:
    results: tuple[CheckResult, ...]

    @property
    def failing(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.status is not CheckStatus.OK)

    def as_json(self) -> dict[str, Any]:
        return {"exit_code": exit_code(self), "checks": [r.as_json() for r in self.results]}


_DEPENDS_ON_DATABASE = frozenset(
    {pending_payments, undelivered_events, refused_notifications, open_anomalies, reviews_waiting}
)


def run_checks(ctx: HealthContext, checks: list[Check] | None = None) -> HealthReport:
    """Run every check; a check that needs an unreachable database says so."""
    results: list[CheckResult] = []
    db_down = False
    for check in CHECKS if checks is None else checks:
        if db_down and check in _DEPENDS_ON_DATABASE:
            name = getattr(check, "__name__", "check")
            results.append(CheckResult(name, CheckStatus.UNREACHABLE, None, "database unreachable"))
            continue
        try:
            result = check(ctx)
        except PayhubError as exc:
            name = getattr(check, "__name__", "check")
            result = CheckResult(name, CheckStatus.UNREACHABLE, None, exc.message)
        if result.name == "database" and result.status is CheckStatus.UNREACHABLE:
            db_down = True
        results.append(result)
    return HealthReport(tuple(results))


def exit_code(report: HealthReport) -> int:
    """0 all ok, 1 a check over its threshold, 3 a component unreachable."""
    if any(r.status is CheckStatus.UNREACHABLE for r in report.results):
        return 3
    return 1 if report.failing else 0
