"""The :class:`Sandbox`: every channel's state, one clock, one delivery scheduler."""

from __future__ import annotations

import logging
import math
import threading
from datetime import date
from decimal import Decimal
from types import TracebackType
from typing import Literal, Self

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.errors import ConfigurationError
from payhub.signing import load_private_key
from payhub_sandbox._alipay import (
    DEFAULT_BUYER_ID,
    DEFAULT_FEE_RATE,
    AlipayMerchant,
    AlipaySimulator,
    make_merchant,
)
from payhub_sandbox._clock import Clock, SystemClock
from payhub_sandbox._delivery import DeliveryAttempt, DeliveryScheduler, OutboundNotification
from payhub_sandbox._errors import InvalidInputError
from payhub_sandbox._state import Refund, Trade, TradeStore

__all__ = ["Sandbox"]

logger = logging.getLogger("payhub_sandbox")


def _platform_key(key: rsa.RSAPrivateKey | str | bytes | None) -> rsa.RSAPrivateKey:
    if key is None:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    try:
        return load_private_key(key)
    except ConfigurationError as exc:
        raise InvalidInputError(f"alipay_platform_key: {exc.message}") from None


class Sandbox:
    """Payment channels' servers, in memory, thread-safe.

    >>> sandbox = Sandbox(time_factor=60)  # doctest: +SKIP
    >>> sandbox.add_alipay_merchant("2021000000000001", public_pem, "2088000000000001")
    ... # doctest: +SKIP

    Every delay the sandbox waits on its own (notification retries, trade
    timeouts) is divided by ``time_factor``. ``clock`` decides what "now" is
    (a :class:`ManualClock` in tests). Notifications go through
    ``notify_transport`` (an ``httpx.MockTransport`` or ``httpx.WSGITransport``
    in tests; the network when None). ``base_url`` is the sandbox's own public
    URL, used in cashier and bill links; when None, each request's own URL root.
    """

    def __init__(
        self,
        *,
        alipay_platform_key: rsa.RSAPrivateKey | str | bytes | None = None,
        time_factor: float = 1.0,
        clock: Clock | None = None,
        notify_transport: httpx.BaseTransport | None = None,
        base_url: str | None = None,
        alipay_escape_slashes: bool = True,
        bills_ready_immediately: bool = False,
    ) -> None:
        if not (isinstance(time_factor, int | float) and math.isfinite(time_factor)) or (
            time_factor <= 0
        ):
            raise InvalidInputError("time_factor must be a positive finite number")
        self.time_factor = float(time_factor)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.base_url = base_url.rstrip("/") if base_url else None
        self._lock = threading.RLock()
        self._store = TradeStore(self._lock)
        self._scheduler = DeliveryScheduler(
            clock=self.clock, lock=self._lock, transport=notify_transport
        )
        self._alipay = AlipaySimulator(
            store=self._store,
            scheduler=self._scheduler,
            clock=self.clock,
            platform_key=_platform_key(alipay_platform_key),
            time_factor=self.time_factor,
            escape_slashes=alipay_escape_slashes,
            bills_ready_immediately=bills_ready_immediately,
        )
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def __repr__(self) -> str:
        return (
            f"Sandbox(time_factor={self.time_factor}, clock={self.clock!r}, "
            f"base_url={self.base_url!r})"
        )

    # -- Alipay -----------------------------------------------------------

    @property
    def alipay(self) -> AlipaySimulator:
        """The Alipay engine behind the gateway (for views and advanced tests)."""
        return self._alipay

    @property
    def alipay_public_key_pem(self) -> str:
        """The sandbox's Alipay platform public key ("支付宝公钥"), PEM."""
        return self._alipay.public_key_pem

    def add_alipay_merchant(
        self,
        app_id: str,
        public_key: str | bytes | rsa.RSAPublicKey,
        seller_id: str,
        sign_type: str = "RSA2",
        *,
        charset: str = "utf-8",
        lie_content_type: bool = False,
        notify_on_close: bool = False,
        fee_rate: Decimal | str | int = DEFAULT_FEE_RATE,
    ) -> AlipayMerchant:
        """Register an Alipay app (PEM or bare base64 public key); replaces one of the same id."""
        merchant = make_merchant(
            app_id,
            public_key,
            seller_id,
            sign_type=sign_type,
            charset=charset,
            lie_content_type=lie_content_type,
            notify_on_close=notify_on_close,
            fee_rate=fee_rate,
        )
        return self._alipay.add_merchant(merchant)

    def alipay_merchant(self, app_id: str) -> AlipayMerchant:
        return self._alipay.merchant(app_id)

    @property
    def alipay_merchants(self) -> list[AlipayMerchant]:
        return self._alipay.merchants()

    def alipay_trade(self, app_id: str, out_trade_no: str) -> Trade:
        return self._alipay.trade(app_id, out_trade_no)

    def pay_alipay(
        self, app_id: str, out_trade_no: str, *, buyer_id: str = DEFAULT_BUYER_ID
    ) -> Trade:
        """The buyer pays: ``WAIT_BUYER_PAY`` → ``TRADE_SUCCESS``; the notification is scheduled."""
        self._alipay.merchant(app_id)
        return self._alipay.pay(self._alipay.trade(app_id, out_trade_no), buyer_id=buyer_id)

    def finish_alipay(self, app_id: str, out_trade_no: str) -> Trade:
        """``TRADE_SUCCESS`` → ``TRADE_FINISHED``, notified."""
        self._alipay.merchant(app_id)
        return self._alipay.finish(self._alipay.trade(app_id, out_trade_no))

    def close_alipay(
        self,
        app_id: str,
        out_trade_no: str,
        *,
        reason: Literal["timeout", "merchant"] = "timeout",
    ) -> Trade:
        """Close an unpaid trade as a timeout would (notified) or as the merchant."""
        self._alipay.merchant(app_id)
        return self._alipay.close(self._alipay.trade(app_id, out_trade_no), reason=reason)

    def alipay_bill(self, app_id: str, bill_date: date) -> bytes:
        """The day's bill zip of an app, as its download link would serve it."""
        return self._alipay.bill(app_id, bill_date)[1]

    # -- every channel ------------------------------------------------------

    @property
    def trades(self) -> list[Trade]:
        return self._store.trades()

    @property
    def refunds(self) -> list[Refund]:
        return self._store.refunds()

    @property
    def deliveries(self) -> list[DeliveryAttempt]:
        """Every notification attempt made so far, in order."""
        return self._scheduler.attempts()

    @property
    def notifications(self) -> list[OutboundNotification]:
        """Every notification event scheduled so far, with its delivery progress."""
        return self._scheduler.notifications()

    def close_expired(self) -> list[Trade]:
        """Close unpaid trades whose timeout has passed on the sandbox clock."""
        return self._alipay.close_expired()

    def deliver_due(self, *, force: bool = False) -> list[DeliveryAttempt]:
        """POST every notification due now (every pending one if ``force``), synchronously."""
        return self._scheduler.deliver_due(force=force)

    def tick(self) -> list[DeliveryAttempt]:
        """What the background thread does each time: close expired trades, deliver."""
        self.close_expired()
        return self.deliver_due()

    # -- server mode --------------------------------------------------------

    def start_delivery_thread(self, interval: float = 0.2) -> None:
        """Run :meth:`tick` every ``interval`` seconds in a daemon thread until :meth:`stop`."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = threading.Event()
            self._thread = threading.Thread(
                target=self._run,
                args=(self._stopping, interval),
                name="payhub-sandbox-delivery",
                daemon=True,
            )
            self._thread.start()

    def _run(self, stopping: threading.Event, interval: float) -> None:
        while not stopping.wait(interval):
            try:
                self.tick()
            except Exception:
                logger.exception("delivery tick failed")

    def stop(self) -> None:
        """Stop the delivery thread (if any) and close the notification client."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping.set()
        if thread is not None:
            thread.join(timeout=30)
        self._scheduler.close()

    close = stop

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
