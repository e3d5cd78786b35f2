"""Paying with failover: which channel accounts a payment tries, in what order,
with what time budget, and how each attempt's outcome is recorded.

The decisions are plain functions and :class:`PaymentPlan`; :func:`pay` and
:func:`pay_async` are the one I/O loop, written twice (sync and async) and
kept in step by ``tests/test_hub_twins.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import httpx

from payhub.channels._base import Channel
from payhub.errors import (
    AmountError,
    ChannelTimeout,
    NetworkError,
    NoEligibleChannel,
    PayhubError,
    RiskBlocked,
    UnknownChannelError,
)
from payhub.models import AttemptOutcome, PaymentAttempt, PaymentRequest, PaymentResult
from payhub.risk import RiskAction, RiskVerdict
from payhub.routing import Outcome, Router, RoutingDecision
from payhub.routing._router import refused_request

if TYPE_CHECKING:
    from payhub.hub._async import AsyncPayHub
    from payhub.hub._base import BaseHub
    from payhub.hub._sync import PayHub

logger = logging.getLogger("payhub.hub")


def request_problem(channel: Channel, request: PaymentRequest) -> str | None:
    """Why ``channel`` cannot take ``request`` (its support check first, then its
    request constraints), or None."""
    if not channel.supports(request.method, request.amount.currency):
        return f"does not support {request.method.value} in {request.amount.currency}"
    return channel.request_problem(request)


def first_eligible(channels: Mapping[str, Channel], request: PaymentRequest) -> Channel:
    """Without a router: the pinned account, else the first that can take ``request``.

    A pinned account that refuses raises :class:`InvalidRequestError`
    (:class:`AmountError` for its limit); so does an amount above the limit of
    every account that could otherwise take it; else :class:`NoEligibleChannel`.
    """
    if request.channel is not None:
        pinned = channels.get(request.channel)
        if pinned is None:
            raise UnknownChannelError(f"no channel account named {request.channel!r}")
        problem = request_problem(pinned, request)
        if problem is not None:
            raise refused_request(pinned, request, problem)
        return pinned
    reasons: dict[str, str] = {}
    over_limit = supporting = 0
    for channel in channels.values():
        problem = request_problem(channel, request)
        if problem is None:
            return channel
        reasons[channel.name] = problem
        if channel.supports(request.method, request.amount.currency):
            supporting += 1
            over_limit += int(request.amount.minor > channel.max_amount_minor())
    detail = "; ".join(f"{name}: {why}" for name, why in reasons.items())
    if over_limit and over_limit == supporting:
        raise AmountError(
            f"amount {request.amount} is above the limit of every channel account "
            f"that could take this payment ({detail})"
        )
    raise NoEligibleChannel(
        f"no configured channel can take this payment ({detail or 'none configured'})",
        reasons=reasons,
    )


def screen(hub: BaseHub, request: PaymentRequest) -> RiskVerdict | None:
    """The risk verdict for ``request`` before anything is stored or sent
    (blocking: the risk state may be Redis). A block is audited (with a store)
    and raised as :class:`RiskBlocked` naming the rule; nothing else is stored."""
    if hub.risk is None:
        return None
    verdict = hub.risk.check(request)
    if verdict.action is RiskAction.BLOCK:
        assert verdict.rule is not None
        if hub._store is not None:
            hub._store.record_risk(request.out_trade_no, verdict.as_json(), hold=False)
        logger.info("pay %s: blocked by risk rule %s", request.out_trade_no, verdict.rule)
        raise RiskBlocked(
            f"payment {request.out_trade_no!r} blocked by risk rule {verdict.rule!r}: "
            f"{verdict.reason}",
            rule=verdict.rule,
        )
    return verdict


def recorded(verdict: RiskVerdict | None) -> bool:
    """Whether a verdict leaves a trace in the store: a review, or observe hits."""
    return verdict is not None and (verdict.action is RiskAction.REVIEW or bool(verdict.observed))


def hold(hub: BaseHub, request: PaymentRequest, verdict: RiskVerdict | None) -> None:
    """After the payment is stored, before any channel: queue it for review and
    audit the decision and observe hits (blocking)."""
    store = hub._require_store()
    assert verdict is not None
    review = verdict.action is RiskAction.REVIEW
    store.record_risk(request.out_trade_no, verdict.as_json(), hold=review)


def attempt_outcome(exc: PayhubError) -> tuple[AttemptOutcome, bool]:
    """How a failed pay attempt is recorded: (outcome, may the trade exist there?)."""
    if isinstance(exc, ChannelTimeout):
        return AttemptOutcome.TIMEOUT, True
    if not exc.retryable:
        return AttemptOutcome.BUSINESS_ERROR, False
    never_sent = isinstance(exc, NetworkError) and isinstance(
        exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
    )
    return AttemptOutcome.RETRYABLE_FAILURE, not never_sent


def _excluded_note(decision: RoutingDecision) -> str:
    return "; ".join(f"{name} ({why})" for name, why in decision.excluded.items())


def _attempt_note(attempts: Sequence[PaymentAttempt]) -> str:
    tried = ", ".join(
        f"{a.channel} {a.outcome.value}{' (the trade may exist there)' if a.may_exist else ''}"
        for a in attempts
    )
    return f"payhub tried {len(attempts)} channel accounts: {tried}"


class PaymentPlan:
    """The channel accounts one payment may try, in order, each with its time budget.

    Without a router: :meth:`BaseHub.candidates` (the pinned or first eligible
    account), each given the hub's ``attempt_timeout`` (None: the HTTP client's own timeouts
    only). With one: the router's decision, admitted candidates only, at most
    the failover policy's ``max_attempts`` and none after its deadline; each
    attempt gets ``min(attempt_timeout, time left before the deadline)``.

    Building it routes the payment (and may raise :class:`NoEligibleChannel`);
    :meth:`next` may take a half-open account's probe lease. Both may block on
    a remote health store.
    """

    def __init__(self, hub: BaseHub, request: PaymentRequest) -> None:
        self._hub = hub
        router = hub.router
        self.decision: RoutingDecision | None = None
        if router is None:
            channels = hub.candidates(request)
            self._steps: Iterator[tuple[Channel, float | None]] = (
                (channel, hub.attempt_timeout) for channel in channels
            )
        else:
            self.decision = router.route(request, hub._channels.values())
            self._steps = self._ranked(router, self.decision)
            if self.decision.excluded:
                logger.info(
                    "pay %s: not eligible: %s", request.out_trade_no, _excluded_note(self.decision)
                )

    def _ranked(
        self, router: Router, decision: RoutingDecision
    ) -> Iterator[tuple[Channel, float | None]]:
        failover, cap = self._hub.failover, self._hub.attempt_timeout
        for candidate in router.attempts(decision, failover):
            left = router.time_left(decision, failover)
            yield candidate.channel, left if cap is None else min(cap, left)

    def next(self) -> tuple[Channel, float | None] | None:
        """The next channel account to try and its budget in seconds; None when done."""
        return next(self._steps, None)

    def exhausted(
        self, last_error: PayhubError | None, attempts: Sequence[PaymentAttempt]
    ) -> PayhubError:
        """What to raise when no attempt succeeded: the last failure, or why none was made."""
        if last_error is not None:
            if len(attempts) > 1:
                last_error.add_note(_attempt_note(attempts))
            if self.decision is not None and self.decision.excluded:
                last_error.add_note(f"not tried: {_excluded_note(self.decision)}")
            return last_error
        decision, router = self.decision, self._hub.router
        if decision is None or router is None:
            return NoEligibleChannel("no configured channel can take this payment")
        # route() found candidates, but attempts() yielded none of them.
        why = (
            "the failover deadline passed"
            if router.time_left(decision, self._hub.failover) <= 0
            else "circuit half-open and its one probe is in flight"
        )
        reasons = dict(decision.excluded)
        for candidate in decision.candidates:
            reasons.setdefault(candidate.name, why)
        detail = "; ".join(f"{name}: {reason}" for name, reason in reasons.items())
        return NoEligibleChannel(f"no channel account could be tried ({detail})", reasons=reasons)


def _record_attempt(
    hub: BaseHub,
    request: PaymentRequest,
    channel: Channel,
    outcome: AttemptOutcome,
    attempts: list[PaymentAttempt],
    *,
    error: PayhubError | None = None,
    may_exist: bool = False,
    result: PaymentResult | None = None,
) -> None:
    """Record one pay attempt (blocking when there is a store)."""
    if hub._store is not None:
        attempt = hub._store.record_attempt(
            request.out_trade_no,
            channel.name,
            outcome,
            error=error,
            may_exist=may_exist,
            channel_trade_id=None if result is None else result.channel_trade_id,
            channel_context=None if result is None else result.channel_context,
        )
    else:
        attempt = PaymentAttempt(
            channel=channel.name,
            seq=len(attempts) + 1,
            outcome=outcome,
            code=None if error is None else error.code.name,
            channel_code=getattr(error, "channel_code", None),
            may_exist=may_exist,
        )
    attempts.append(attempt)


def record_failure(
    hub: BaseHub,
    request: PaymentRequest,
    channel: Channel,
    exc: PayhubError,
    attempts: list[PaymentAttempt],
) -> None:
    """Record a failed attempt (store, router); raise it if it is a business
    error, which no other channel account is tried for (blocking)."""
    outcome, may_exist = attempt_outcome(exc)
    if hub.router is not None:
        hub.router.record(channel.name, Outcome.of(exc))
    _record_attempt(hub, request, channel, outcome, attempts, error=exc, may_exist=may_exist)
    logger.info("%s: pay %s: %s", channel.name, outcome.value, exc.message)
    if outcome is AttemptOutcome.BUSINESS_ERROR:
        if len(attempts) > 1:
            exc.add_note(_attempt_note(attempts))
        raise exc


def record_success(
    hub: BaseHub,
    request: PaymentRequest,
    channel: Channel,
    result: PaymentResult,
    attempts: list[PaymentAttempt],
) -> PaymentResult:
    """Record the attempt that took the payment (store, router); the result with
    every attempt (blocking)."""
    if hub.router is not None:
        hub.router.record(channel.name, Outcome.SUCCESS, amount=request.amount)
    _record_attempt(hub, request, channel, AttemptOutcome.SUCCEEDED, attempts, result=result)
    return result.model_copy(update={"attempts": tuple(attempts)})


# -- the I/O loop, twice -----------------------------------------------------------


def pay(hub: PayHub, request: PaymentRequest) -> PaymentResult:
    verdict = None if hub.risk is None else hub._call_store(screen, hub, request)
    plan = hub._call_router(PaymentPlan, hub, request)
    if hub._store is not None:
        hub._call_store(hub._store.begin_payment, request)
        if recorded(verdict):
            hub._call_store(hold, hub, request, verdict)
    attempts: list[PaymentAttempt] = []
    last_error: PayhubError | None = None
    while (step := hub._call_router(plan.next)) is not None:
        channel, budget = step
        try:
            result = hub._run_flow(channel, channel.pay(request), budget=budget)
        except PayhubError as exc:
            hub._call_store(record_failure, hub, request, channel, exc, attempts)
            last_error = exc
            continue
        return hub._call_store(record_success, hub, request, channel, result, attempts)
    raise plan.exhausted(last_error, attempts)


async def pay_async(hub: AsyncPayHub, request: PaymentRequest) -> PaymentResult:
    verdict = None if hub.risk is None else await hub._call_store(screen, hub, request)
    plan = await hub._call_router(PaymentPlan, hub, request)
    if hub._store is not None:
        await hub._call_store(hub._store.begin_payment, request)
        if recorded(verdict):
            await hub._call_store(hold, hub, request, verdict)
    attempts: list[PaymentAttempt] = []
    last_error: PayhubError | None = None
    while (step := await hub._call_router(plan.next)) is not None:
        channel, budget = step
        try:
            result = await hub._run_flow(channel, channel.pay(request), budget=budget)
        except PayhubError as exc:
            await hub._call_store(record_failure, hub, request, channel, exc, attempts)
            last_error = exc
            continue
        return await hub._call_store(record_success, hub, request, channel, result, attempts)
    raise plan.exhausted(last_error, attempts)
