"""The facade: :class:`PayHub` (sync) and :class:`AsyncPayHub` (async).

Both share everything that does no I/O in :class:`BaseHub`, and the
operations that mix channel calls, store transactions and event delivery
(pay, refund, close, recovery, event dispatch) are written once there as
*steps*: generators of the effects they need (see ``Steps``). Each hub only
performs the effects: in place (``httpx.Client``), or awaited, with the
store's blocking work in a worker thread (``httpx.AsyncClient``).

>>> hub = PayHub.from_config({"channels": {"alipay": {"type": "alipay", ...}}})
... # doctest: +SKIP
>>> result = hub.pay(PaymentRequest(...))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import inspect
import logging
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, Self, TypeVar

import httpx
import pluggy
import pydantic

from payhub.channels._base import (
    Channel,
    Flow,
    HeadersInput,
    as_headers,
    run_flow_async,
    run_flow_sync,
)
from payhub.errors import (
    AmountError,
    ChannelError,
    ChannelTimeout,
    ConfigurationError,
    ErrorCode,
    InvalidRequestError,
    NetworkError,
    NoEligibleChannel,
    PayhubError,
    PaymentStateError,
    ProtocolError,
    UnknownChannelError,
)
from payhub.events import Event, Subscribers
from payhub.models import (
    Ack,
    AttemptOutcome,
    BillRecord,
    Notification,
    PaymentAttempt,
    PaymentQueryResult,
    PaymentRequest,
    PaymentResult,
    RefundQueryRequest,
    RefundRequest,
    RefundResult,
    RefundStatus,
    ReturnInfo,
)
from payhub.money import Money
from payhub.plugins import channel_types, get_plugin_manager
from payhub.routing import FailoverPolicy, InMemoryHealthStore, Outcome, Router, RoutingDecision
from payhub.routing._router import refused_request
from payhub.store import (
    DEFAULT_EVENT_LEASE,
    AnomalyKind,
    AnomalyRecord,
    AnomalyStatus,
    ApplyResult,
    PaymentRecord,
    PaymentState,
    RefundRecord,
    RefundState,
    Store,
    TransitionCause,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["AsyncPayHub", "BaseHub", "NotificationOutcome", "PayHub", "SyncReport"]

T = TypeVar("T")
P = ParamSpec("P")


# -- steps: the orchestration both hubs share -----------------------------------
#
# An operation that mixes channel calls, store transactions and event dispatch
# is written once, as a generator of the effects it needs (as a channel's flow
# yields its HTTP requests). PayHub performs each effect in place; AsyncPayHub
# awaits the channel, runs the store's blocking work in a worker thread and
# awaits its async handlers. An exception an effect raises is thrown back into
# the generator, so the steps read as plain code with try/except.


@dataclass(frozen=True, slots=True)
class _Call:
    """Drive a channel's flow over the hub's HTTP client (within ``budget`` seconds)."""

    channel: Channel
    flow: Flow[Any]
    budget: float | None = None


@dataclass(frozen=True, slots=True)
class _Blocking:
    """Blocking work (the store): in place, or in a worker thread by the async hub."""

    fn: Callable[[], Any]


@dataclass(frozen=True, slots=True)
class _Routing:
    """A router call: in place, or in a worker thread when its health store does I/O."""

    fn: Callable[[], Any]


@dataclass(frozen=True, slots=True)
class _Dispatch:
    """Deliver a payment's pending events now; never raises."""

    about: Notification | RefundRecord | str


@dataclass(frozen=True, slots=True)
class _Deliver:
    """Run one event's handlers (the async hub awaits async ones); the first failure."""

    event: Event


_Effect = _Call | _Blocking | _Routing | _Dispatch | _Deliver
#: What the shared steps are: a generator of effects returning ``T``.
Steps = Generator[_Effect, Any, T]


def _call(channel: Channel, flow: Flow[T], budget: float | None = None) -> Steps[T]:
    result: T = yield _Call(channel, flow, budget)
    return result


def _routed(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Steps[T]:
    result: T = yield _Routing(functools.partial(fn, *args, **kwargs))
    return result


def _deliver(event: Event) -> Steps[str | None]:
    error: str | None = yield _Deliver(event)
    return error


def _blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Steps[T]:
    result: T = yield _Blocking(functools.partial(fn, *args, **kwargs))
    return result


def _dispatch(about: Notification | RefundRecord | str) -> Steps[None]:
    yield _Dispatch(about)


logger = logging.getLogger("payhub.client")

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True)
class NotificationOutcome:
    """What handling one notification came to.

    ``ack`` is what to answer the channel, always set. ``notification`` is the
    verified notification, or None if it did not verify; ``error`` says why it
    was not accepted (bad signature, not our payment, store unavailable).
    With a store, ``applied`` tells what the transaction did (applied,
    duplicate, review, deferred).
    """

    ack: Ack
    notification: Notification | None = None
    error: PayhubError | None = None
    applied: ApplyResult | None = None

    @property
    def accepted(self) -> bool:
        return self.error is None


def _prerequisite_failed(channel: Channel, exc: PayhubError) -> NotificationOutcome:
    """The outcome when a notification's prerequisite flow failed: a failure ack."""
    logger.warning("%s: notification prerequisite failed: %s", channel.name, exc.message)
    return NotificationOutcome(ack=channel.ack(False, exc.code.name), error=exc)


@contextlib.contextmanager
def map_network_errors(channel: str) -> Iterator[None]:
    """Translate httpx's transport errors into payhub's, at the boundary."""
    try:
        yield
    except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        # The request never left: no trade can exist at the channel.
        raise NetworkError(f"{channel}: could not connect ({type(exc).__name__})") from exc
    except httpx.TimeoutException as exc:
        raise ChannelTimeout(
            f"{channel}: no answer in time ({type(exc).__name__}); the trade may exist"
        ) from exc
    except httpx.TransportError as exc:
        raise NetworkError(f"{channel}: request failed ({type(exc).__name__})") from exc


def _applied_to(outcome: NotificationOutcome, notification: Notification) -> str:
    """The payment a stored notification was applied to: a refund notification
    may name the refund's own order number (UnionPay), not the payment's."""
    if outcome.applied is not None:
        return outcome.applied.out_trade_no
    return notification.out_trade_no


def _unsupported(request: PaymentRequest) -> str:
    return f"does not support {request.method.value} in {request.amount.currency}"


def _over_limit(channel: Channel, request: PaymentRequest) -> int:
    """1 if the amount is above ``channel``'s limit, else 0."""
    return int(request.amount.minor > channel.max_amount_minor())


def _request_problem(channel: Channel, request: PaymentRequest) -> str | None:
    """Why ``channel`` cannot take ``request`` (its support check first, then its
    request constraints), or None."""
    if not channel.supports(request.method, request.amount.currency):
        return _unsupported(request)
    return channel.request_problem(request)


def _parse(channel: Channel, headers: HeadersInput, body: bytes) -> Notification:
    """Run a channel's parser; a model it fails to build is the channel's bad data."""
    # (the common types pass straight through: this is every notification's path)
    if type(headers) is not httpx.Headers:
        headers = as_headers(headers)
    if type(body) is not bytes:
        body = bytes(body)
    try:
        return channel.parse_notification(headers, body)
    except pydantic.ValidationError as exc:
        raise ProtocolError(
            f"{channel.name}: notification fields are unusable ({exc.error_count()} errors)",
            retryable=False,
        ) from None


@dataclass
class SyncReport:
    """What :meth:`PayHub.sync_pending` found."""

    #: pending payments whose channels were queried
    checked: int = 0
    #: out_trade_no -> the state a channel's answer moved it to
    changed: dict[str, PaymentState] = field(default_factory=dict)
    #: out_trade_no -> why a query or the store failed (it stays pending)
    errors: dict[str, str] = field(default_factory=dict)
    #: pending refunds whose channels were asked
    refunds_checked: int = 0
    #: out_refund_no -> the state a channel's answer moved the refund to
    refunds_changed: dict[str, RefundState] = field(default_factory=dict)
    #: out_refund_no -> why it stays pending: the channel does not know it, its
    #: answer disagrees with the reservation, or the query or the store failed
    refund_errors: dict[str, str] = field(default_factory=dict)

    def _add_refund(self, refund: RefundRecord, error: str | None) -> None:
        self.refunds_checked += 1
        if refund.status is not RefundState.PENDING:
            self.refunds_changed[refund.out_refund_no] = refund.status
        if error is not None:
            self.refund_errors[refund.out_refund_no] = error


def _refund_not_applied(refund: RefundRecord, answer: RefundResult) -> str | None:
    """Why a channel's answer about a pending refund is not applied; None: apply it.

    Neither case releases the reservation: a refund the channel does not know
    may still arrive there (and UnionPay cannot find a refund stored before its
    ``txnTime`` was kept), and an amount that disagrees needs a person.
    """
    if answer.status is RefundStatus.NOT_FOUND:
        return (
            f"{refund.channel}: the channel knows no such refund (the request may never "
            "have reached it); it stays reserved: repeat hub.refund with the same "
            "out_refund_no and amount, or release it with store.fail_refund"
        )
    if answer.amount is not None and answer.amount != refund.amount:
        return (
            f"{refund.channel}: the channel's refund is {answer.amount}, but "
            f"{refund.amount} was reserved; left pending for a person to check"
        )
    return None


def _unknown_refund(out_refund_no: str) -> PaymentStateError:
    return PaymentStateError(
        f"no stored refund {out_refund_no!r}", code=ErrorCode.UNKNOWN_REFUND
    )


def _attempt_outcome(exc: PayhubError) -> tuple[AttemptOutcome, bool]:
    """How a failed pay attempt is recorded: (outcome, may the trade exist there?)."""
    if isinstance(exc, ChannelTimeout):
        return AttemptOutcome.TIMEOUT, True
    if not exc.retryable:
        return AttemptOutcome.BUSINESS_ERROR, False
    never_sent = isinstance(exc, NetworkError) and isinstance(
        exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
    )
    return AttemptOutcome.RETRYABLE_FAILURE, not never_sent


def _cap_timeout(request: httpx.Request, default: httpx.Timeout, ends_at: float) -> None:
    """Cap each of the request's timeouts (its own, else the client's) to what is
    left of its attempt, which ends at ``ends_at`` (:func:`time.monotonic`).

    A request sent with no time left gets 1 ms: httpx then fails it the usual
    way (a connect timeout: never sent; a read timeout: the trade may exist).
    """
    left = max(ends_at - time.monotonic(), 0.001)
    timeouts = request.extensions.get("timeout") or default.as_dict()
    request.extensions = {
        **request.extensions,
        "timeout": {
            phase: left if limit is None else min(limit, left) for phase, limit in timeouts.items()
        },
    }


def _excluded_note(decision: RoutingDecision) -> str:
    return "; ".join(f"{name} ({why})" for name, why in decision.excluded.items())


def _attempt_note(attempts: Sequence[PaymentAttempt]) -> str:
    tried = ", ".join(
        f"{a.channel} {a.outcome.value}{' (the trade may exist there)' if a.may_exist else ''}"
        for a in attempts
    )
    return f"payhub tried {len(attempts)} channel accounts: {tried}"


class _Attempts:
    """The channel accounts one payment may try, in order, each with its time budget.

    Without a router: :meth:`BaseHub.candidates`, each attempt given the hub's
    ``attempt_timeout`` (None: the HTTP client's own timeouts only). With one:
    the router's decision, admitted candidates only, at most the failover
    policy's ``max_attempts`` and none after its deadline; each attempt gets
    ``min(attempt_timeout, time left before the deadline)``.

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
            self._steps = self._routed(router, self.decision)
            if self.decision.excluded:
                logger.info(
                    "pay %s: not eligible: %s",
                    request.out_trade_no,
                    _excluded_note(self.decision),
                )

    def _routed(
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


def _routing_options(section: object) -> dict[str, Any]:
    """``PayHub.from_config``'s ``"routing"`` section as hub keyword arguments.

    The keys of :meth:`Router.from_config`, plus ``"failover": {"max_attempts": 3,
    "deadline": 30}`` (seconds) and ``"attempt_timeout"`` (seconds).
    """
    if not isinstance(section, Mapping):
        raise ConfigurationError("routing: expected a mapping")
    rest = dict(section)
    options: dict[str, Any] = {}
    failover = rest.pop("failover", None)
    if failover is not None:
        try:
            options["failover"] = FailoverPolicy.model_validate(failover)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigurationError(
                f"routing.failover{'.' + where if where else ''}: {first['msg']}"
            ) from None
        except PayhubError as exc:
            raise ConfigurationError(f"routing.failover: {exc.message}") from None
    if "attempt_timeout" in rest:
        options["attempt_timeout"] = rest.pop("attempt_timeout")
    options["router"] = Router.from_config(rest)
    return options


def _check_routing_names(router: Router, channels: Mapping[str, Channel]) -> None:
    """A policy or rule naming no configured account is a typo: refuse it."""
    named = set(router.policies)
    for rule in router.rules:
        named |= rule.accounts
    unknown = sorted(named - set(channels))
    if unknown:
        raise ConfigurationError(
            f"routing names accounts that are not configured channels: {', '.join(unknown)}"
        )


def _paid_first(
    answers: list[tuple[str, PaymentQueryResult]],
) -> list[tuple[str, PaymentQueryResult]]:
    """Apply "paid" answers before "closed" ones: a trade closed at one channel
    must not close a payment that another channel took."""
    return sorted(answers, key=lambda a: a[1].status.value != "paid")


_STATE_OF_ANSWER = {
    RefundStatus.SUCCEEDED: RefundState.SUCCEEDED,
    RefundStatus.FAILED: RefundState.FAILED,
    RefundStatus.CLOSED: RefundState.FAILED,
}


def _as_stored(answer: RefundResult, stored: RefundRecord | None) -> RefundResult:
    """The channel's answer, corrected to what the store recorded of the refund
    (an answer the store could not apply leaves the refund as it was)."""
    if stored is None:
        return answer
    if _STATE_OF_ANSWER.get(answer.status, RefundState.PENDING) is stored.status:
        return answer
    return _refund_result(stored).model_copy(
        update={"channel_trade_id": answer.channel_trade_id, "raw": answer.raw}
    )


def _refund_result(refund: RefundRecord) -> RefundResult:
    """A stored refund as a result (an idempotent repeat of ``hub.refund``)."""
    status = {
        RefundState.PENDING: RefundStatus.PENDING,
        RefundState.SUCCEEDED: RefundStatus.SUCCEEDED,
        RefundState.FAILED: RefundStatus.FAILED,
    }[refund.status]
    return RefundResult(
        channel=refund.channel,
        out_trade_no=refund.out_trade_no,
        out_refund_no=refund.out_refund_no,
        status=status,
        amount=refund.amount,
        channel_refund_id=refund.channel_refund_id,
    )


def _import_handler(ref: object) -> Callable[[Event], Any]:
    """``"package.module:function"`` from a configuration file."""
    if callable(ref):
        return ref
    if not isinstance(ref, str) or ":" not in ref:
        raise ConfigurationError(f"events: handler {ref!r} is not 'module:attribute'")
    module_name, _, attr = ref.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"events: cannot import handler {ref!r}: {exc}") from None
    if not callable(target):
        raise ConfigurationError(f"events: handler {ref!r} is not callable")
    return target  # type: ignore[no-any-return]


def _handler_refs(config: object) -> list[tuple[str, object]]:
    """``{"handlers": {"payment.succeeded": "shop.tasks:deliver" | [...]}}``."""
    if config is None:
        return []
    handlers = config.get("handlers", {}) if isinstance(config, Mapping) else None
    if not isinstance(handlers, Mapping):
        raise ConfigurationError("events: expected {'handlers': {event_type: 'module:function'}}")
    found: list[tuple[str, object]] = []
    for event_type, refs in handlers.items():
        for ref in refs if isinstance(refs, list) else [refs]:
            found.append((str(event_type), ref))
    return found


def build_channels(
    config: Mapping[str, Mapping[str, Any]], pm: pluggy.PluginManager | None = None
) -> list[Channel]:
    """Build channel accounts from ``{name: {"type": kind, ...settings}}``."""
    types = channel_types(pm or get_plugin_manager())
    channels: list[Channel] = []
    for name, settings in config.items():
        kind = settings.get("type", name)
        cls = types.get(kind)
        if cls is None:
            raise ConfigurationError(
                f"channel {name!r}: unknown type {kind!r} (known: {', '.join(sorted(types))})"
            )
        channels.append(cls.from_config(name, {k: v for k, v in settings.items() if k != "type"}))
    return channels


class BaseHub:
    """Everything of the hub that does no I/O (the store's blocking calls aside,
    which the async hub runs in a worker thread)."""

    def __init__(
        self,
        *,
        channels: Sequence[Channel],
        store: Store | None = None,
        router: Router | None = None,
        failover: FailoverPolicy | None = None,
        attempt_timeout: float | None = None,
    ) -> None:
        self._channels: dict[str, Channel] = {}
        for channel in channels:
            if channel.name in self._channels:
                raise ConfigurationError(f"two channel accounts named {channel.name!r}")
            self._channels[channel.name] = channel
        self._store = store
        self._owns_store = False
        self._subscribers = Subscribers()
        if router is not None:
            _check_routing_names(router, self._channels)
        elif failover is not None:
            raise ConfigurationError("failover= needs router=: it limits the router's attempts")
        if attempt_timeout is not None and (
            isinstance(attempt_timeout, bool)
            or not isinstance(attempt_timeout, int | float)
            or not 0 < attempt_timeout < float("inf")
        ):
            raise ConfigurationError("attempt_timeout must be a positive number of seconds")
        #: Ranks the channel accounts of each payment and keeps their health (None:
        #: the pinned or the first eligible account, no failover).
        self.router = router
        #: How many accounts one payment may try, and for how long (with a router).
        self.failover = FailoverPolicy() if failover is None else failover
        #: The most seconds one attempt (one account's pay flow) may take; None:
        #: the HTTP client's timeouts only (and, with a router, the failover deadline).
        self.attempt_timeout = None if attempt_timeout is None else float(attempt_timeout)

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        **kwargs: Any,
    ) -> Self:
        """Build a hub from ``{"channels": {name: {"type": kind, ...}}}``.

        Optional sections: ``"store": {"url": ...}`` (the hub then owns and
        closes the store), ``"events": {"handlers": {type: "module:function"}}``
        and ``"routing"``: :meth:`Router.from_config`'s keys, plus ``"failover":
        {"max_attempts": 3, "deadline": 30}`` and ``"attempt_timeout"`` (seconds).
        Keyword arguments (``router=``, ``failover=``, ...) win over the file.
        """
        channels = config.get("channels")
        if not isinstance(channels, Mapping) or not channels:
            raise ConfigurationError("configuration needs a non-empty 'channels' mapping")
        built = build_channels(channels, plugin_manager)
        handlers = [(t, _import_handler(ref)) for t, ref in _handler_refs(config.get("events"))]
        if config.get("routing") is not None and "router" not in kwargs:
            for key, value in _routing_options(config["routing"]).items():
                kwargs.setdefault(key, value)
        owns_store = config.get("store") is not None and "store" not in kwargs
        if owns_store:
            kwargs["store"] = Store.from_config(config["store"])
        try:
            hub = cls(channels=built, **kwargs)
        except BaseException:
            if owns_store:
                kwargs["store"].close()
            raise
        hub._owns_store = owns_store
        for event_type, handler in handlers:
            hub.subscribe(event_type, handler)
        return hub

    @property
    def channels(self) -> Mapping[str, Channel]:
        return dict(self._channels)

    def channel(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            raise UnknownChannelError(f"no channel account named {name!r}") from None

    def select_channel(self, request: PaymentRequest) -> Channel:
        """The channel account a payment goes to first: with a router, its first
        candidate; else the pinned one, else the first that can take it.

        "Can take it" is :meth:`Channel.request_problem` (method, currency, the
        channel's amount limit, its order-number rules). A pinned account that
        refuses raises :class:`InvalidRequestError` (:class:`AmountError` for
        its limit) naming the reason; so does an amount above the limit of
        every account that could otherwise take it; else :class:`NoEligibleChannel`.
        """
        if self.router is not None:
            return self.candidates(request)[0]
        if request.channel is not None:
            pinned = self.channel(request.channel)
            problem = _request_problem(pinned, request)
            if problem is not None:
                raise refused_request(pinned, request, problem)
            return pinned
        reasons: dict[str, str] = {}
        over_limit = supporting = 0
        for channel in self._channels.values():
            problem = _request_problem(channel, request)
            if problem is None:
                return channel
            reasons[channel.name] = problem
            if channel.supports(request.method, request.amount.currency):
                supporting += 1
                over_limit += _over_limit(channel, request)
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

    def candidates(self, request: PaymentRequest) -> list[Channel]:
        """The channel accounts to try for a payment, in order (the next on a
        retryable failure).

        With a router, its ranked decision (:class:`NoEligibleChannel`, with
        a reason per account, when none can take it); ``pay`` then follows the
        router's decision itself. Without one, the pinned or first eligible
        account.
        """
        if self.router is not None:
            decision = self.router.route(request, self._channels.values())
            return [candidate.channel for candidate in decision.candidates]
        return [self.select_channel(request)]

    # -- store and events -------------------------------------------------------

    @property
    def store(self) -> Store | None:
        return self._store

    def _require_store(self) -> Store:
        if self._store is None:
            raise ConfigurationError("this needs a store: PayHub(..., store=Store(url))")
        return self._store

    def subscribe(self, event_type: str, handler: Callable[[Event], Any]) -> None:
        """Call ``handler(event)`` for each event of ``event_type`` (``"*"``: all).

        Subscribe before handling notifications: events are dispatched right
        after their transaction commits, and by :meth:`PayHub.dispatch_events`
        for any not yet dispatched. A handler that raises leaves the event to be
        retried (every handler of it runs again then); make handlers
        idempotent on ``event.id``. A hub with no subscriber dispatches nothing.
        """
        self._subscribers.add(event_type, handler)

    def unsubscribe(self, event_type: str, handler: Callable[[Event], Any]) -> None:
        self._subscribers.remove(event_type, handler)

    def _checkpoint(self, name: str, conn: Connection | None = None) -> None:
        """Called at each step boundary of a notification (tests inject crashes):
        after_verify, after_inbox_insert, after_transition (in the transaction),
        before_event_dispatch, before_ack."""

    def _attempt(
        self,
        request: PaymentRequest,
        channel: Channel,
        outcome: AttemptOutcome,
        attempts: list[PaymentAttempt],
        *,
        error: PayhubError | None = None,
        may_exist: bool = False,
        channel_trade_id: str | None = None,
        channel_context: Mapping[str, str] | None = None,
    ) -> None:
        """Record one pay attempt (blocking when there is a store)."""
        if self._store is not None:
            attempt = self._store.record_attempt(
                request.out_trade_no,
                channel.name,
                outcome,
                error=error,
                may_exist=may_exist,
                channel_trade_id=channel_trade_id,
                channel_context=channel_context,
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

    def _pay_failed(
        self,
        request: PaymentRequest,
        channel: Channel,
        exc: PayhubError,
        attempts: list[PaymentAttempt],
    ) -> None:
        """Record a failed attempt (store, router); raise it if it is a business
        error, which no other channel account is tried for."""
        outcome, may_exist = _attempt_outcome(exc)
        if self.router is not None:
            self.router.record(channel.name, Outcome.of(exc))
        self._attempt(request, channel, outcome, attempts, error=exc, may_exist=may_exist)
        logger.info("%s: pay %s: %s", channel.name, outcome.value, exc.message)
        if outcome is AttemptOutcome.BUSINESS_ERROR:
            if len(attempts) > 1:
                exc.add_note(_attempt_note(attempts))
            raise exc

    def _pay_succeeded(
        self,
        request: PaymentRequest,
        channel: Channel,
        result: PaymentResult,
        attempts: list[PaymentAttempt],
    ) -> PaymentResult:
        if self.router is not None:
            self.router.record(channel.name, Outcome.SUCCESS, amount=request.amount)
        self._attempt(
            request,
            channel,
            AttemptOutcome.SUCCEEDED,
            attempts,
            channel_trade_id=result.channel_trade_id,
            channel_context=result.channel_context,
        )
        return result.model_copy(update={"attempts": tuple(attempts)})

    def _query_flow(self, target: Channel, out_trade_no: str) -> Flow[PaymentQueryResult]:
        """``target.query``, with the stored ``channel_context`` of the payment when
        ``target`` took it (blocking: reads the store). Without a context the
        channel is called as ``query(out_trade_no)``, so a channel written
        before ``context`` existed keeps working."""
        context: dict[str, str] = {}
        if self._store is not None:
            payment = self._store.payment(out_trade_no)
            if payment is not None and payment.channel == target.name:
                context = dict(payment.channel_context)
        if context:
            return target.query(out_trade_no, context=context)
        return target.query(out_trade_no)

    def _store_notification(
        self, target: Channel, notification: Notification
    ) -> NotificationOutcome:
        """Apply a verified notification in one transaction (blocking)."""
        store = self._require_store()
        self._checkpoint("after_verify")
        try:
            applied = store.apply_notification(notification, checkpoint=self._checkpoint)
        except PayhubError as exc:
            logger.warning("%s: notification not applied: %s", target.name, exc.message)
            return NotificationOutcome(
                ack=target.ack(False, exc.code.name), notification=notification, error=exc
            )
        if applied.reason:
            logger.info(
                "%s: notification %s: %s", target.name, applied.outcome.value, applied.reason
            )
        return NotificationOutcome(ack=target.ack(True), notification=notification, applied=applied)

    def _reserve_refund(
        self, channel: str | None, request: RefundRequest
    ) -> tuple[RefundRecord, RefundRequest, bool] | RefundResult:
        """Reserve under lock (blocking); a stored final result is returned as is.

        Returns the refund, the request to send (the payment's total and context
        filled in, and the refund's stored ``refund_context``, so that a retry
        is the same transaction at the channel) and whether it existed before.
        """
        store = self._require_store()
        payment = store.payment(request.out_trade_no)
        if not request.refund_context:
            name = channel or (payment.channel if payment is not None else None)
            target = self._channels.get(name) if name else None
            if target is not None:
                context = target.refund_context(request)
                if context:
                    request = request.model_copy(update={"refund_context": context})
        refund, existed = store.reserve_refund(channel, request)
        if existed and refund.status is not RefundState.PENDING:
            return _refund_result(refund)
        update: dict[str, Any] = {"refund_context": dict(refund.channel_context)}
        if payment is not None:
            if request.total is None:
                update["total"] = payment.amount
            if not request.payment_context and payment.channel == refund.channel:
                update["payment_context"] = dict(payment.channel_context)
        return refund, request.model_copy(update=update), existed

    def _find_anomaly(self, anomaly: int | tuple[str, str]) -> AnomalyRecord:
        """An anomaly by id, or the one open duplicate/late payment of (channel,
        out_trade_no) (blocking)."""
        store = self._require_store()
        if not isinstance(anomaly, tuple):
            return store.anomaly(anomaly)
        channel, out_trade_no = anomaly
        found = [
            a
            for a in store.anomalies(out_trade_no, status=AnomalyStatus.OPEN)
            if a.channel == channel
            and a.kind in (AnomalyKind.DUPLICATE_PAYMENT, AnomalyKind.LATE_PAYMENT)
        ]
        if len(found) != 1:
            which = "no" if not found else f"{len(found)}"
            raise InvalidRequestError(
                f"{which} open duplicate or late payment of {out_trade_no!r} at {channel!r}"
                + ("" if not found else ": name the anomaly by its id")
            )
        return found[0]

    def _reserve_duplicate_refund(
        self,
        anomaly: int | tuple[str, str],
        out_refund_no: str,
        amount: Money | None,
        reason: str | None,
    ) -> tuple[RefundRecord, RefundRequest, bool] | RefundResult:
        """As :meth:`_reserve_refund`, for a refund of a duplicate payment (blocking)."""
        store = self._require_store()
        record = self._find_anomaly(anomaly)
        target = self.channel(record.channel)
        total = record.amount
        if total is None:
            raise InvalidRequestError(f"anomaly {record.id} names no amount to refund")
        request = RefundRequest(
            out_trade_no=record.out_trade_no,
            out_refund_no=out_refund_no,
            amount=total if amount is None else amount,
            total=total,
            reason=reason,
        )
        refund, existed = store.reserve_duplicate_refund(
            record.id,
            out_refund_no,
            amount,
            reason=reason,
            refund_context=target.refund_context(request),
        )
        if existed and refund.status is not RefundState.PENDING:
            return _refund_result(refund)
        update = {"amount": refund.amount, "refund_context": dict(refund.channel_context)}
        return refund, request.model_copy(update=update), existed

    def _refund_error(self, refund: RefundRecord, exc: PayhubError, *, retried: bool) -> None:
        """A refund the channel refused on its first send: release the reservation.

        Not a timeout or network failure (it may have been made), and not the
        refusal of a *retry*: the earlier send's outcome is unknown (UnionPay
        even answers a resent refund "duplicate"), so the caller asks the
        channel instead.
        """
        if exc.retryable or retried or self._store is None:
            return
        self._store.fail_refund(refund.out_refund_no, exc.code.name)

    def _apply_answers(
        self, answers: list[tuple[str, PaymentQueryResult]], cause: TransitionCause
    ) -> list[ApplyResult]:
        store = self._require_store()
        return [store.apply_query(name, a, cause=cause) for name, a in _paid_first(answers)]

    def _deliver(self, event: Event) -> str | None:
        """Run the handlers of one event; the first failure, or None."""
        for handler in self._subscribers.for_type(event.type):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    if inspect.iscoroutine(result):
                        result.close()
                    raise TypeError("an async handler needs AsyncPayHub")
            except Exception as exc:
                logger.exception("event %s (%s): handler failed", event.id, event.type)
                return f"{type(exc).__name__}: {exc}"
        return None

    def _refund_query_for(self, refund: RefundRecord) -> RefundQueryRequest | str | None:
        """What to ask the channel about a stored refund: the query, or why not
        (a string: it stays pending), or None when it is no longer pending."""
        if refund.status is not RefundState.PENDING:
            return None
        if refund.channel not in self._channels:
            return f"{refund.channel}: not configured"
        return RefundQueryRequest(
            out_trade_no=refund.out_trade_no,
            out_refund_no=refund.out_refund_no,
            refund_context=dict(refund.channel_context),
        )

    # -- shared steps (see Steps): paying, events, refunds, closing, recovery ----

    def _pay_steps(self, request: PaymentRequest) -> Steps[PaymentResult]:
        plan = yield from _routed(_Attempts, self, request)
        if self._store is not None:
            yield from _blocking(self._store.begin_payment, request)
        attempts: list[PaymentAttempt] = []
        last_error: PayhubError | None = None
        while (step := (yield from _routed(plan.next))) is not None:
            channel, budget = step
            try:
                result = yield from _call(channel, channel.pay(request), budget)
            except PayhubError as exc:
                yield from _blocking(self._pay_failed, request, channel, exc, attempts)
                last_error = exc
                continue
            return (
                yield from _blocking(self._pay_succeeded, request, channel, result, attempts)
            )
        raise plan.exhausted(last_error, attempts)

    def _dispatch_steps(
        self, out_trade_no: str | None, limit: int | None, lease: timedelta
    ) -> Steps[int]:
        store = self._require_store()
        if not self._subscribers:
            return 0
        delivered = tried = 0
        after: Event | None = None
        while limit is None or tried < limit:
            batch = yield from _blocking(
                store.events, out_trade_no=out_trade_no, pending=True, limit=100, after=after
            )
            if not batch:
                break
            for event in batch:
                after = event
                if limit is not None and tried >= limit:
                    break
                tried += 1
                claimed = yield from _blocking(store.claim_event, event.id, lease)
                if claimed is None:
                    continue
                error = yield from _deliver(claimed)
                if error is None:
                    yield from _blocking(store.mark_dispatched, event.id)
                    delivered += 1
                else:
                    yield from _blocking(store.release_event, event.id, error)
        return delivered

    def _query_steps(self, channel: str, out_trade_no: str) -> Steps[PaymentQueryResult]:
        target = self.channel(channel)
        flow = yield from _blocking(self._query_flow, target, out_trade_no)
        return (yield from _call(target, flow))

    def _refund_steps(self, channel: str | None, request: RefundRequest) -> Steps[RefundResult]:
        if self._store is None:
            if channel is None:
                raise InvalidRequestError("without a store, name the channel to refund through")
            target = self.channel(channel)
            return (yield from _call(target, target.refund(request)))
        reserved = yield from _blocking(self._reserve_refund, channel, request)
        if isinstance(reserved, RefundResult):
            return reserved
        return (yield from self._send_refund_steps(*reserved))

    def _refund_duplicate_steps(
        self,
        anomaly: int | tuple[str, str],
        out_refund_no: str,
        amount: Money | None,
        reason: str | None,
    ) -> Steps[RefundResult]:
        reserved = yield from _blocking(
            self._reserve_duplicate_refund, anomaly, out_refund_no, amount, reason
        )
        if isinstance(reserved, RefundResult):
            return reserved
        return (yield from self._send_refund_steps(*reserved))

    def _send_refund_steps(
        self, refund: RefundRecord, request: RefundRequest, existed: bool
    ) -> Steps[RefundResult]:
        """Send a reserved refund to its channel and apply the answer (see ``refund``)."""
        store = self._require_store()
        target = self.channel(refund.channel)
        try:
            result = yield from _call(target, target.refund(request))
        except PayhubError as exc:
            yield from _blocking(self._refund_error, refund, exc, retried=existed)
            if existed and not exc.retryable:
                # A retry refused ("duplicate", or anything else): the earlier send
                # may have been made. Ask the channel; if it knows the refund, that
                # is the answer, else the refund stays pending and reserved.
                record, why = yield from self._sync_refund_steps(refund)
                if why is None:
                    return _refund_result(record)
            raise
        yield from _blocking(store.apply_refund_result, refund, result)
        if existed and result.status is RefundStatus.PENDING:
            # A retry answered "pending" (Alipay: fund_change N, no money moved by
            # *this* call): ask where the refund stands, as Alipay advises.
            record, why = yield from self._sync_refund_steps(refund)
            if why is None and record.status is not RefundState.PENDING:
                return _refund_result(record)
        yield from _dispatch(refund)
        stored = yield from _blocking(store.refund, refund.out_refund_no)
        return _as_stored(result, stored)

    def _close_trade_steps(self, channel: str, out_trade_no: str) -> Steps[None]:
        target = self.channel(channel)
        yield from _call(target, target.close(out_trade_no))
        store = self._store
        if store is not None and (yield from _blocking(store.payment, out_trade_no)) is not None:
            yield from _blocking(store.close_payment, channel, out_trade_no)
            yield from _dispatch(out_trade_no)

    def _sync_payment_steps(
        self, out_trade_no: str, cause: TransitionCause
    ) -> Steps[tuple[PaymentRecord | None, list[str]]]:
        """Query every channel where the payment may exist and apply the answers;
        (the payment as stored afterwards, what could not be asked)."""
        store = self._require_store()
        answers: list[tuple[str, PaymentQueryResult]] = []
        errors: list[str] = []
        for name in (yield from _blocking(store.sync_channels, out_trade_no)):
            if name not in self._channels:
                errors.append(f"{name}: not configured")
                continue
            try:
                answers.append((name, (yield from self._query_steps(name, out_trade_no))))
            except ChannelError as exc:
                if exc.code is not ErrorCode.TRADE_NOT_FOUND:
                    errors.append(f"{name}: {exc.message}")
            except PayhubError as exc:
                errors.append(f"{name}: {exc.message}")
        yield from _blocking(self._apply_answers, answers, cause)
        yield from _dispatch(out_trade_no)
        return (yield from _blocking(store.payment, out_trade_no)), errors

    def _sync_pending_steps(
        self,
        older_than: timedelta,
        limit: int | None,
        progress: Callable[[PaymentRecord], None] | None,
        refunds: bool,
    ) -> Steps[SyncReport]:
        store = self._require_store()
        report = SyncReport()
        for payment in (yield from _blocking(store.pending_payments, older_than, limit=limit)):
            report.checked += 1
            try:
                record, errors = yield from self._sync_payment_steps(
                    payment.out_trade_no, TransitionCause.SYNC
                )
            except PayhubError as exc:
                record, errors = None, [exc.message]
            if record is not None and record.status is not PaymentState.PENDING:
                report.changed[payment.out_trade_no] = record.status
            if errors:
                report.errors[payment.out_trade_no] = "; ".join(errors)
            if progress is not None:
                progress(payment)
        if refunds:
            for refund in (yield from _blocking(store.pending_refunds, older_than, limit=limit)):
                try:
                    report._add_refund(*(yield from self._sync_refund_steps(refund)))
                except PayhubError as exc:
                    report._add_refund(refund, exc.message)
        return report

    def _stored_refund_steps(self, out_refund_no: str) -> Steps[RefundRecord]:
        refund = yield from _blocking(self._require_store().refund, out_refund_no)
        if refund is None:
            raise _unknown_refund(out_refund_no)
        return (yield from self._sync_refund_steps(refund))[0]

    def _sync_refund_steps(self, refund: RefundRecord) -> Steps[tuple[RefundRecord, str | None]]:
        """Ask the channel about a pending refund and apply its answer; (the refund
        as stored afterwards, why it stays pending or None)."""
        store = self._require_store()
        request = self._refund_query_for(refund)
        if not isinstance(request, RefundQueryRequest):
            return refund, request
        target = self.channel(refund.channel)
        try:
            answer = yield from _call(target, target.refund_query(request))
        except PayhubError as exc:
            return refund, f"{refund.channel}: {exc.message}"
        why = _refund_not_applied(refund, answer)
        if why is None:
            yield from _blocking(store.apply_refund_result, refund, answer)
            yield from _dispatch(refund)
        return (yield from _blocking(store.refund, refund.out_refund_no)) or refund, why

    def _check_return_steps(
        self, channel: str, params: Mapping[str, str]
    ) -> Steps[PaymentRecord | None]:
        info = self.verify_return(channel, params)
        store = self._require_store()
        answer = yield from self._query_steps(channel, info.out_trade_no)
        yield from _blocking(self._apply_answers, [(channel, answer)], TransitionCause.RETURN)
        yield from _dispatch(info.out_trade_no)
        return (yield from _blocking(store.payment, info.out_trade_no))

    # -- notifications: pure, the same for sync and async ---------------------

    def parse_notification(
        self, channel: str, headers: HeadersInput, body: bytes
    ) -> Notification:
        """Verify and parse a notification; raise a typed :class:`PayhubError` if bad."""
        target = self._channels.get(channel)
        return _parse(self.channel(channel) if target is None else target, headers, body)

    def handle_notification(
        self, channel: str, headers: HeadersInput, body: bytes
    ) -> NotificationOutcome:
        """Verify and parse a notification and say what to answer the channel.

        Never raises for a bad notification: the outcome carries a failure ack
        (so the channel resends) and the typed error.
        """
        target = self.channel(channel)
        try:
            notification = _parse(target, headers, body)
        except PayhubError as exc:
            logger.warning("%s: notification rejected: %s", channel, exc.message)
            return NotificationOutcome(ack=target.ack(False, exc.code.name), error=exc)
        return NotificationOutcome(ack=target.ack(True), notification=notification)

    def verify_return(self, channel: str, params: Mapping[str, str]) -> ReturnInfo:
        """Verify a browser return. It is never proof of payment: query or await the
        notification before delivering goods."""
        return self.channel(channel).parse_return(params)


class PayHub(BaseHub):
    """The synchronous hub.

    >>> with PayHub.from_config(config) as hub:  # doctest: +SKIP
    ...     hub.pay(request)

    ``router``, ``failover`` and ``attempt_timeout``: see :meth:`pay` and
    ``docs/routing.md``.
    """

    def __init__(
        self,
        *,
        channels: Sequence[Channel],
        http_client: httpx.Client | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        store: Store | None = None,
        router: Router | None = None,
        failover: FailoverPolicy | None = None,
        attempt_timeout: float | None = None,
    ) -> None:
        super().__init__(
            channels=channels,
            store=store,
            router=router,
            failover=failover,
            attempt_timeout=attempt_timeout,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    def _run(self, channel: Channel, flow: Flow[T], *, budget: float | None = None) -> T:
        """Drive ``flow`` over the HTTP client; with ``budget`` (seconds), every
        request's timeouts are capped to what is left of it."""
        ends_at = None if budget is None else time.monotonic() + budget

        def send(request: httpx.Request) -> httpx.Response:
            if ends_at is not None:
                _cap_timeout(request, self._http.timeout, ends_at)
            with map_network_errors(channel.name):
                response = self._http.send(request)
                response.read()
                return response

        return run_flow_sync(flow, send)

    def handle_notification(
        self, channel: str, headers: HeadersInput, body: bytes
    ) -> NotificationOutcome:
        """As :meth:`BaseHub.handle_notification`, first running the channel's
        :meth:`~Channel.notification_prerequisite` flow if it has one (I/O: e.g.
        fetching new platform certificates). Its failure is a failure ack."""
        target = self.channel(channel)
        normalized = as_headers(headers)
        prerequisite = target.notification_prerequisite(normalized)
        if prerequisite is not None:
            try:
                self._run(target, prerequisite)
            except PayhubError as exc:
                return _prerequisite_failed(target, exc)
        outcome = super().handle_notification(channel, normalized, body)
        if self._store is None or outcome.notification is None:
            return outcome
        # With a store: one transaction (inbox, lock, checks, transition, outbox),
        # then the events, then the ack.
        notification = outcome.notification
        outcome = self._store_notification(target, notification)
        if outcome.accepted:
            self._checkpoint("before_event_dispatch")
            self._dispatch_quietly(_applied_to(outcome, notification))
        self._checkpoint("before_ack")
        return outcome

    def pay(self, request: PaymentRequest) -> PaymentResult:
        """Take a payment: the first candidate channel, the next on a retryable failure.

        With a router, the candidates are its ranked decision, tried within the
        failover policy (``max_attempts``, ``deadline``), each attempt within
        ``min(attempt_timeout, time left)``; each outcome is recorded with the
        router (health, volume). A business error (bad parameter, already
        paid) is raised at once; when every attempt failed, the last failure
        is raised. ``result.channel`` is the account that took the payment and
        ``result.attempts`` every attempt with its outcome (a timed-out one
        with ``may_exist``: the trade may exist there).

        With a store the payment and every attempt are stored first; paying an
        out_trade_no that is already paid raises :class:`PaymentStateError`.
        """
        return self._drive(self._pay_steps(request))

    def _drive(self, steps: Steps[T]) -> T:
        """Perform the effects of shared steps in place (see Steps)."""
        value: Any = None
        error: Exception | None = None
        while True:
            try:
                effect = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, error = None, None
            try:
                if isinstance(effect, _Call):
                    value = self._run(effect.channel, effect.flow, budget=effect.budget)
                elif isinstance(effect, _Blocking | _Routing):
                    value = effect.fn()
                elif isinstance(effect, _Deliver):
                    value = self._deliver(effect.event)
                else:
                    self._dispatch_quietly(effect.about)
            except Exception as exc:
                error = exc

    def query(self, channel: str, out_trade_no: str) -> PaymentQueryResult:
        """Query a payment; with a store, the channel gets the payment's stored
        ``channel_context`` when it took the payment (UnionPay's ``txnTime``)."""
        return self._drive(self._query_steps(channel, out_trade_no))

    def refund(self, channel: str | None, request: RefundRequest) -> RefundResult:
        """Refund (part of) a payment.

        With a store, idempotent on ``out_refund_no`` (the same number and amount
        gives the stored result; another amount raises InvalidRequestError), and
        the amount is reserved under the payment's lock before the channel is
        asked, so refunds never exceed what was paid, also when two race.
        ``channel`` may then be None: the channel that took the payment.

        A refund still pending (its answer was lost) is retried as the same
        transaction (its stored ``refund_context``). When the channel answers
        the retry "pending" (Alipay's ``fund_change`` N) or refuses it (UnionPay
        calls a resent refund a duplicate), the hub asks where the refund stands
        and returns that; a refused retry of a refund the channel cannot find
        raises the refusal and leaves the refund pending and reserved (the
        earlier send's outcome is unknown): ``sync_pending`` reports it.
        """
        return self._drive(self._refund_steps(channel, request))

    def refund_duplicate(
        self,
        anomaly: int | tuple[str, str],
        *,
        out_refund_no: str,
        amount: Money | None = None,
        reason: str | None = None,
    ) -> RefundResult:
        """Refund a duplicate or late payment on the channel that took it.

        ``anomaly`` is the anomaly's id (:meth:`anomalies`), or ``(channel,
        out_trade_no)`` when that payment has one open duplicate there.
        ``amount`` defaults to all of the duplicate not yet refunded. The
        payment itself is untouched (what it delivered stands); the anomaly is
        resolved (by ``"payhub"``) once the duplicate is refunded in full, and
        a ``payment.duplicate_refunded`` event is written.

        The same rules as :meth:`refund`: idempotent on ``out_refund_no``, the
        amount reserved before the channel is asked, a lost answer leaves the
        refund pending (``sync_refund``/``sync_pending`` settle it by query).
        """
        return self._drive(self._refund_duplicate_steps(anomaly, out_refund_no, amount, reason))

    def anomalies(
        self,
        out_trade_no: str | None = None,
        *,
        status: AnomalyStatus | str | None = AnomalyStatus.OPEN,
        kind: AnomalyKind | str | None = None,
        limit: int | None = None,
    ) -> list[AnomalyRecord]:
        """Recorded anomalies, oldest first (by default the open ones)."""
        return self._require_store().anomalies(out_trade_no, status=status, kind=kind, limit=limit)

    def resolve_anomaly(self, anomaly_id: int, *, operator: str, reason: str) -> AnomalyRecord:
        """Close an anomaly by hand, saying who and why (see :meth:`Store.resolve_anomaly`)."""
        return self._require_store().resolve_anomaly(anomaly_id, operator=operator, reason=reason)

    def refund_query(self, channel: str, request: RefundQueryRequest) -> RefundResult:
        target = self.channel(channel)
        return self._run(target, target.refund_query(request))

    def close_trade(self, channel: str, out_trade_no: str) -> None:
        self._drive(self._close_trade_steps(channel, out_trade_no))

    # -- recovery and events (need a store) -------------------------------------

    def sync_payment(self, out_trade_no: str) -> PaymentRecord | None:
        """Query the channels where the payment may exist and apply their answers
        through the same transition path as notifications (cause "sync")."""
        record, _ = self._drive(self._sync_payment_steps(out_trade_no, TransitionCause.SYNC))
        return record

    def sync_pending(
        self,
        older_than: timedelta = timedelta(minutes=5),
        *,
        limit: int | None = None,
        progress: Callable[[PaymentRecord], None] | None = None,
        refunds: bool = True,
    ) -> SyncReport:
        """Recover lost notifications (防掉单): query every payment still pending
        after ``older_than`` and apply the answers (cause "sync").

        With ``refunds`` (the default), then ask the channels about every refund
        still pending after ``older_than`` (its answer was lost: a timeout) and
        apply their answers, as :meth:`sync_refund`. ``limit`` caps each of the
        two sweeps; ``progress`` is called once per payment.
        """
        return self._drive(self._sync_pending_steps(older_than, limit, progress, refunds))

    def sync_refund(self, out_refund_no: str) -> RefundRecord:
        """Ask the channel where a pending refund stands and apply its answer.

        For a refund whose answer was lost (``hub.refund`` timed out): the
        channel's "succeeded" completes it (a ``payment.refunded`` event),
        "failed" or "closed" releases its reservation (``refund.failed``), and
        anything else leaves it pending and reserved. A refund that is no longer
        pending is returned as stored, without asking. Returns the stored refund.
        """
        return self._drive(self._stored_refund_steps(out_refund_no))

    def check_return(self, channel: str, params: Mapping[str, str]) -> PaymentRecord | None:
        """Verify a browser return, then *query* the channel and apply its answer
        (cause "return"). The return parameters alone are never proof of payment."""
        return self._drive(self._check_return_steps(channel, params))

    def dispatch_events(
        self,
        *,
        out_trade_no: str | None = None,
        limit: int | None = None,
        lease: timedelta = DEFAULT_EVENT_LEASE,
    ) -> int:
        """Deliver undispatched outbox events to the subscribers; the number delivered.

        Each event is claimed for ``lease`` first, so two dispatchers (processes)
        rarely deliver the same one; a handler failure releases it for a retry.
        """
        return self._drive(self._dispatch_steps(out_trade_no, limit, lease))

    def _dispatch_quietly(self, about: Notification | RefundRecord | str) -> None:
        """After a commit: deliver that payment's pending events; never raises."""
        out_trade_no = about if isinstance(about, str) else about.out_trade_no
        try:
            self.dispatch_events(out_trade_no=out_trade_no)
        except PayhubError as exc:
            logger.warning("events of %s not dispatched now: %s", out_trade_no, exc.message)

    def download_bill(self, channel: str, bill_date: date) -> list[BillRecord]:
        target = self.channel(channel)
        return self._run(target, target.download_bill(bill_date))

    def close(self) -> None:
        """Release the HTTP client and the store if the hub created them."""
        if self._owns_http:
            self._http.close()
        if self._owns_store and self._store is not None:
            self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncPayHub(BaseHub):
    """The asynchronous hub; the same channel flows, driven by ``httpx.AsyncClient``.

    The store's database work is blocking (SQLAlchemy Core with sync drivers);
    the async hub runs each store transaction in a worker thread with
    :func:`asyncio.to_thread`, so the event loop never waits on the database.
    Event handlers may be plain functions or coroutine functions.

    The router is synchronous: with the in-memory health store the hub calls it
    directly; with another store (Redis) its calls run in a worker thread too.
    """

    def __init__(
        self,
        *,
        channels: Sequence[Channel],
        http_client: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        store: Store | None = None,
        router: Router | None = None,
        failover: FailoverPolicy | None = None,
        attempt_timeout: float | None = None,
    ) -> None:
        super().__init__(
            channels=channels,
            store=store,
            router=router,
            failover=failover,
            attempt_timeout=attempt_timeout,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def _routing(self, fn: Callable[..., T], *args: Any) -> T:
        """Call the router (through ``fn``): in a worker thread if its health store does I/O."""
        router = self.router
        if router is None or isinstance(router.health, InMemoryHealthStore):
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def _run(self, channel: Channel, flow: Flow[T], *, budget: float | None = None) -> T:
        """As :meth:`PayHub._run`."""
        ends_at = None if budget is None else time.monotonic() + budget

        async def send(request: httpx.Request) -> httpx.Response:
            if ends_at is not None:
                _cap_timeout(request, self._http.timeout, ends_at)
            with map_network_errors(channel.name):
                response = await self._http.send(request)
                await response.aread()
                return response

        return await run_flow_async(flow, send)

    async def handle_notification(  # type: ignore[override]  # async: the prerequisite does I/O
        self, channel: str, headers: HeadersInput, body: bytes
    ) -> NotificationOutcome:
        """As :meth:`BaseHub.handle_notification`, first running the channel's
        :meth:`~Channel.notification_prerequisite` flow if it has one (I/O: e.g.
        fetching new platform certificates). Its failure is a failure ack."""
        target = self.channel(channel)
        normalized = as_headers(headers)
        prerequisite = target.notification_prerequisite(normalized)
        if prerequisite is not None:
            try:
                await self._run(target, prerequisite)
            except PayhubError as exc:
                return _prerequisite_failed(target, exc)
        outcome = BaseHub.handle_notification(self, channel, normalized, body)
        if self._store is None or outcome.notification is None:
            return outcome
        notification = outcome.notification
        outcome = await asyncio.to_thread(self._store_notification, target, notification)
        if outcome.accepted:
            self._checkpoint("before_event_dispatch")
            await self._dispatch_quietly(_applied_to(outcome, notification))
        self._checkpoint("before_ack")
        return outcome

    async def pay(self, request: PaymentRequest) -> PaymentResult:
        """As :meth:`PayHub.pay`."""
        return await self._drive(self._pay_steps(request))

    async def _drive(self, steps: Steps[T]) -> T:
        """Perform the effects of shared steps: await the channel, run the store's
        blocking work in a worker thread, await the handlers (see Steps)."""
        value: Any = None
        error: Exception | None = None
        while True:
            try:
                effect = steps.send(value) if error is None else steps.throw(error)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, error = None, None
            try:
                if isinstance(effect, _Call):
                    value = await self._run(effect.channel, effect.flow, budget=effect.budget)
                elif isinstance(effect, _Blocking):
                    value = await asyncio.to_thread(effect.fn)
                elif isinstance(effect, _Routing):
                    value = await self._routing(effect.fn)
                elif isinstance(effect, _Deliver):
                    value = await self._deliver_async(effect.event)
                else:
                    await self._dispatch_quietly(effect.about)
            except Exception as exc:
                error = exc

    async def query(self, channel: str, out_trade_no: str) -> PaymentQueryResult:
        """As :meth:`PayHub.query`."""
        return await self._drive(self._query_steps(channel, out_trade_no))

    async def refund(self, channel: str | None, request: RefundRequest) -> RefundResult:
        """As :meth:`PayHub.refund`."""
        return await self._drive(self._refund_steps(channel, request))

    async def refund_duplicate(
        self,
        anomaly: int | tuple[str, str],
        *,
        out_refund_no: str,
        amount: Money | None = None,
        reason: str | None = None,
    ) -> RefundResult:
        """As :meth:`PayHub.refund_duplicate`."""
        steps = self._refund_duplicate_steps(anomaly, out_refund_no, amount, reason)
        return await self._drive(steps)

    async def anomalies(
        self,
        out_trade_no: str | None = None,
        *,
        status: AnomalyStatus | str | None = AnomalyStatus.OPEN,
        kind: AnomalyKind | str | None = None,
        limit: int | None = None,
    ) -> list[AnomalyRecord]:
        """As :meth:`PayHub.anomalies`."""
        store = self._require_store()
        return await asyncio.to_thread(
            functools.partial(store.anomalies, out_trade_no, status=status, kind=kind, limit=limit)
        )

    async def resolve_anomaly(
        self, anomaly_id: int, *, operator: str, reason: str
    ) -> AnomalyRecord:
        """As :meth:`PayHub.resolve_anomaly`."""
        store = self._require_store()
        return await asyncio.to_thread(
            functools.partial(
                store.resolve_anomaly, anomaly_id, operator=operator, reason=reason
            )
        )

    async def refund_query(self, channel: str, request: RefundQueryRequest) -> RefundResult:
        target = self.channel(channel)
        return await self._run(target, target.refund_query(request))

    async def close_trade(self, channel: str, out_trade_no: str) -> None:
        await self._drive(self._close_trade_steps(channel, out_trade_no))

    # -- recovery and events (need a store) -------------------------------------

    async def sync_payment(self, out_trade_no: str) -> PaymentRecord | None:
        """As :meth:`PayHub.sync_payment`."""
        steps = self._sync_payment_steps(out_trade_no, TransitionCause.SYNC)
        record, _ = await self._drive(steps)
        return record

    async def sync_pending(
        self,
        older_than: timedelta = timedelta(minutes=5),
        *,
        limit: int | None = None,
        progress: Callable[[PaymentRecord], None] | None = None,
        refunds: bool = True,
    ) -> SyncReport:
        """As :meth:`PayHub.sync_pending`."""
        return await self._drive(self._sync_pending_steps(older_than, limit, progress, refunds))

    async def sync_refund(self, out_refund_no: str) -> RefundRecord:
        """As :meth:`PayHub.sync_refund`."""
        return await self._drive(self._stored_refund_steps(out_refund_no))

    async def check_return(
        self, channel: str, params: Mapping[str, str]
    ) -> PaymentRecord | None:
        """As :meth:`PayHub.check_return`."""
        return await self._drive(self._check_return_steps(channel, params))

    async def dispatch_events(
        self,
        *,
        out_trade_no: str | None = None,
        limit: int | None = None,
        lease: timedelta = DEFAULT_EVENT_LEASE,
    ) -> int:
        """As :meth:`PayHub.dispatch_events`; async handlers are awaited."""
        return await self._drive(self._dispatch_steps(out_trade_no, limit, lease))

    async def _deliver_async(self, event: Event) -> str | None:
        for handler in self._subscribers.for_type(event.type):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                logger.exception("event %s (%s): handler failed", event.id, event.type)
                return f"{type(exc).__name__}: {exc}"
        return None

    async def _dispatch_quietly(self, about: Notification | RefundRecord | str) -> None:
        out_trade_no = about if isinstance(about, str) else about.out_trade_no
        try:
            await self.dispatch_events(out_trade_no=out_trade_no)
        except PayhubError as exc:
            logger.warning("events of %s not dispatched now: %s", out_trade_no, exc.message)

    async def download_bill(self, channel: str, bill_date: date) -> list[BillRecord]:
        target = self.channel(channel)
        return await self._run(target, target.download_bill(bill_date))

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()
        if self._owns_store and self._store is not None:
            self._store.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
