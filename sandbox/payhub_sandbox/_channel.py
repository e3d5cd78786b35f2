"""The verbs every channel simulator offers through the :class:`~payhub_sandbox.Sandbox`.

``sandbox.alipay``, ``sandbox.wechat`` and ``sandbox.unionpay`` are each a
:class:`SandboxChannel`: the same six verbs, with the same arguments, whatever
the channel::

    sandbox.alipay.pay(app_id, "ORDER-1")              # the buyer pays; notified
    sandbox.wechat.refund(mch_id, "ORDER-2", "5.00")    # a refund from the portal
    sandbox.unionpay.notify(mer_id, "ORDER-3")          # send the latest notification again
    sandbox.alipay.fail("40004", times=2)               # the next two calls answer busy
    sandbox.wechat.close(mch_id, "ORDER-4")             # close an unpaid trade
    sandbox.alipay.bill(app_id, date(2024, 3, 1))       # the day's bill, as downloaded

A verb a channel has no counterpart for raises :class:`UnsupportedVerbError`
(UnionPay has no close and no bill download); ``docs/sandbox.md`` lists them.
A channel's own extras sit beside the verbs (``sandbox.alipay.finish``,
``sandbox.wechat.settle_refund``, ``sandbox.unionpay.set_cert_fault``), and the
engine behind the channel's gateway is its :attr:`~SandboxChannel.engine`.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from datetime import date
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar

from payhub.errors import AmountError
from payhub.money import Money
from payhub_sandbox._errors import InvalidInputError, SandboxError, TradeStateError
from payhub_sandbox._faults import FaultMode, GatewayFaults
from payhub_sandbox._state import Refund, Trade
from payhub_sandbox.delivery._records import DeliveryAttempt
from payhub_sandbox.delivery._scheduler import DeliveryScheduler

__all__ = ["VERBS", "SandboxChannel", "UnsupportedVerbError", "parse_amount"]

#: The verbs every channel offers, in the order the docs list them.
VERBS: Final = ("pay", "fail", "refund", "close", "notify", "bill")


class UnsupportedVerbError(SandboxError, NotImplementedError):
    """A verb the channel has no counterpart for (``channel``, ``verb``); the message says
    what the channel does instead."""

    status = 501
    code = "UNSUPPORTED_VERB"

    def __init__(self, channel: str, verb: str, instead: str) -> None:
        super().__init__(f"{channel} has no {verb}: {instead}")
        self.channel = channel
        self.verb = verb


def parse_amount(amount: Money | str) -> Money:
    """``Money``, or yuan as a decimal string (``"12.34"``)."""
    if isinstance(amount, Money):
        return amount
    try:
        return Money.parse(amount, "CNY")
    except AmountError:
        raise InvalidInputError(f"amount: {amount!r} is not an amount") from None


class _Engine(Protocol):
    """What the facade needs of a channel's simulator."""

    def merchant(self, merchant_id: str, /) -> object: ...

    def trade(self, merchant_id: str, out_trade_no: str, /) -> Trade: ...


EngineT = TypeVar("EngineT", bound=_Engine)


class SandboxChannel(ABC, Generic[EngineT]):
    """One channel as a test or a person drives it: the common verbs.

    ``merchant_id`` is the channel's merchant number (an Alipay ``app_id``, a
    WeChat ``mchid``, a UnionPay ``merId``) and ``out_trade_no`` the shop's
    order number (UnionPay's ``orderId``).
    """

    #: The channel's name, as in payhub's configuration and the gateway faults.
    name: str = ""
    #: The verbs this channel answers with :class:`UnsupportedVerbError`.
    unsupported: frozenset[str] = frozenset()

    def __init__(
        self, engine: EngineT, scheduler: DeliveryScheduler, gateway_faults: GatewayFaults
    ) -> None:
        self._engine = engine
        self._scheduler = scheduler
        self._gateway_faults = gateway_faults

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    @property
    def engine(self) -> EngineT:
        """The simulator behind the channel's gateway (its views use it)."""
        return self._engine

    def trade(self, merchant_id: str, out_trade_no: str) -> Trade:
        """The trade of an order (:class:`UnknownMerchantError`, :class:`TradeNotFoundError`)."""
        self._engine.merchant(merchant_id)
        return self._engine.trade(merchant_id, out_trade_no)

    @abstractmethod
    def pay(self, merchant_id: str, out_trade_no: str, *, buyer_id: str | None = None) -> Trade:
        """The buyer pays the order; its payment notification is scheduled."""

    @abstractmethod
    def fail(
        self, code: str | None = None, *, times: int = 1, merchant_id: str | None = None
    ) -> None:
        """Answer the channel's next ``times`` API calls (of ``merchant_id`` only, if given)
        with its "system busy" error ``code`` (None: the channel's usual one)."""

    @abstractmethod
    def refund(
        self,
        merchant_id: str,
        out_trade_no: str,
        amount: Money | str,
        *,
        out_refund_no: str | None = None,
        reason: str = "",
    ) -> Refund:
        """Refund (part of) a paid order as the merchant's portal would, with the API's
        rules, notified as the channel notifies refunds. ``amount`` is Money or yuan
        (``"12.34"``); ``out_refund_no`` (None: a new one) makes it idempotent."""

    @abstractmethod
    def close(self, merchant_id: str, out_trade_no: str) -> Trade:
        """Close an unpaid order."""

    @abstractmethod
    def bill(self, merchant_id: str, bill_date: date) -> bytes:
        """The merchant's bill of a day, as its download serves it."""

    def notify(self, merchant_id: str, out_trade_no: str) -> list[DeliveryAttempt]:
        """Send the order's latest notification now, synchronously: a pending one's next
        attempt at once, a finished one once more (as a merchant portal's "resend")."""
        trade = self.trade(merchant_id, out_trade_no)
        found = [
            n
            for n in self._scheduler.notifications()
            if n.channel == self.name and n.trade_no == trade.trade_no
        ]
        if not found:
            raise TradeStateError(
                f"{self.name} order {out_trade_no!r} has no notification to send "
                "(none was scheduled: no notify URL, or nothing notified yet)"
            )
        return self._scheduler.resend(found[-1].id)

    def supports(self, verb: str) -> bool:
        """Whether ``verb`` (one of :data:`VERBS`) does something on this channel."""
        return verb in VERBS and verb not in self.unsupported

    def _busy(self, code: str | None, times: int, merchant_id: str | None) -> None:
        """The channel's "system busy" gateway fault, for the next ``times`` requests."""
        self._gateway_faults.set(
            self.name, FaultMode.SYSTEM_ERROR, app_id=merchant_id, count=times, code=code
        )

    def _unsupported(self, verb: str, instead: str) -> UnsupportedVerbError:
        return UnsupportedVerbError(self.name, verb, instead)

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # Before 0.2, sandbox.alipay (…wechat, …unionpay) was the engine itself.
            if name.startswith("_"):
                raise AttributeError(name)
            found = getattr(self.engine, name)
            warnings.warn(
                f"sandbox.{self.name}.{name} reaches the engine: use "
                f"sandbox.{self.name}.engine.{name}",
                DeprecationWarning,
                stacklevel=2,
            )
            return found
