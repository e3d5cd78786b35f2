""":class:`BaseHub`: the state and the decisions both hubs share.

Nothing here does network I/O; the store's blocking calls made here run in
place in :class:`~payhub.hub.PayHub` and in a worker thread in
:class:`~payhub.hub.AsyncPayHub` (both pass them through ``_call_store``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

import pluggy

from payhub.channels._base import Channel, HeadersInput
from payhub.errors import ConfigurationError, UnknownChannelError
from payhub.events import Event, Subscribers
from payhub.hub import _config, _notifications, _paying
from payhub.lifecycle import PaymentState
from payhub.models import Notification, PaymentRequest, ReturnInfo
from payhub.plugins import event_handlers, get_plugin_manager, transition_hooks
from payhub.risk import RiskEngine
from payhub.routing import FailoverPolicy, Router
from payhub.signing import guard_http_logs
from payhub.store import Store, Transition

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from payhub.hub._notifications import NotificationOutcome
    from payhub.ledger import Ledger


def _risk_settler(risk: RiskEngine) -> Callable[[Connection, Transition], None]:
    """A transition hook: a payment leaving pending (paid, closed) no longer
    counts as unpaid for the risk rules (best effort: never raises)."""

    def settle(conn: Connection, transition: Transition) -> None:
        if transition.from_state is PaymentState.PENDING:
            risk.settle(transition.out_trade_no)

    return settle


class BaseHub:
    """Everything of the hub that does no network I/O."""

    def __init__(
        self,
        *,
        channels: Sequence[Channel],
        store: Store | None = None,
        router: Router | None = None,
        failover: FailoverPolicy | None = None,
        attempt_timeout: float | None = None,
        risk: RiskEngine | None = None,
    ) -> None:
        # httpx logs each request's URL at INFO, and Alipay's carries ``sign``
        guard_http_logs()
        self._channels: dict[str, Channel] = {}
        for channel in channels:
            if channel.name in self._channels:
                raise ConfigurationError(f"two channel accounts named {channel.name!r}")
            self._channels[channel.name] = channel
        self._store = store
        self._owns_store = False
        self._subscribers = Subscribers()
        if router is not None:
            _config.check_routing_names(router, self._channels)
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
        #: Risk rules checked in ``pay`` before any channel is called (None: none).
        self.risk = risk
        if risk is not None and store is None and risk.holds_for_review:
            raise ConfigurationError("risk review rules need a store: the review queue is in it")
        if risk is not None and store is not None:
            store.add_transition_hook(_risk_settler(risk))

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
        closes the store), ``"ledger"``: fees, settlement plans, refund-fee
        policies, withdrawal rules (``docs/ledger.md``; zero fees and ``D+1``
        without it), ``"events": {"handlers": {type: "module:function"}}``
        and ``"routing"``: :meth:`Router.from_config`'s keys, plus ``"failover":
        {"max_attempts": 3, "deadline": 30}`` and ``"attempt_timeout"`` (seconds).
        Keyword arguments (``router=``, ``failover=``, ...) win over the file.

        Plugins add event handlers (``register_event_handlers``) and, to a store
        the hub builds from ``"store"``, transition hooks
        (``register_transition_hooks``); see ``docs/plugins.md``.
        """
        channels = config.get("channels")
        if not isinstance(channels, Mapping) or not channels:
            raise ConfigurationError("configuration needs a non-empty 'channels' mapping")
        pm = plugin_manager or get_plugin_manager()
        built = _config.build_channels(channels, pm)
        handlers = [*event_handlers(pm), *_config.configured_handlers(config.get("events"))]
        if config.get("routing") is not None and "router" not in kwargs:
            for key, value in _config.routing_options(config["routing"]).items():
                kwargs.setdefault(key, value)
        if config.get("risk") is not None and "risk" not in kwargs:
            kwargs["risk"] = RiskEngine.from_config(config["risk"])
        owns_store = config.get("store") is not None and "store" not in kwargs
        ledger = config.get("ledger")
        if owns_store:
            store_config = config["store"]
            if ledger is not None and isinstance(store_config, Mapping):
                store_config = {**store_config, "ledger": ledger}
            kwargs["store"] = Store.from_config(store_config)
        elif ledger is not None and kwargs.get("store") is not None:
            kwargs["store"].configure_ledger(ledger)
        try:
            hub = cls(channels=built, **kwargs)
            if owns_store:
                for hook in transition_hooks(pm):
                    kwargs["store"].add_transition_hook(hook)
        except BaseException:
            if owns_store:
                kwargs["store"].close()
            raise
        hub._owns_store = owns_store
        for event_type, handler in handlers:
            hub.subscribe(event_type, handler)
        return hub

    # -- channels ---------------------------------------------------------------

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
        return _paying.first_eligible(self._channels, request)

    def candidates(self, request: PaymentRequest) -> list[Channel]:
        """The channel accounts to try for a payment, in order (the next on a
        retryable failure).

        With a router, its ranked decision (:class:`NoEligibleChannel`, with
        a reason per account, when none can take it); ``pay`` then follows the
        router's decision itself (:class:`~payhub.hub._paying.PaymentPlan`).
        Without one, the pinned or first eligible account.
        """
        if self.router is not None:
            decision = self.router.route(request, self._channels.values())
            return [candidate.channel for candidate in decision.candidates]
        return [self.select_channel(request)]

    # -- store and events -------------------------------------------------------

    @property
    def store(self) -> Store | None:
        return self._store

    @property
    def ledger(self) -> Ledger:
        """The store's double-entry ledger (``docs/ledger.md``)."""
        return self._require_store().ledger

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

    # -- notifications without I/O ------------------------------------------------

    def parse_notification(self, channel: str, headers: HeadersInput, body: bytes) -> Notification:
        """Verify and parse a notification; raise a typed :class:`PayhubError` if bad."""
        return _notifications.parse(self.channel(channel), headers, body)

    def handle_notification(
        self, channel: str, headers: HeadersInput, body: bytes
    ) -> NotificationOutcome:
        """Verify and parse a notification and say what to answer the channel.

        Never raises for a bad notification: the outcome carries a failure ack
        (so the channel resends) and the typed error. The hubs override this
        to run the channel's prerequisite flow first and, with a store, to
        apply the notification.
        """
        return _notifications.verify(self.channel(channel), headers, body)

    def verify_return(self, channel: str, params: Mapping[str, str]) -> ReturnInfo:
        """Verify a browser return. It is never proof of payment: query or await the
        notification before delivering goods."""
        return self.channel(channel).parse_return(params)
