"""The :class:`Sandbox`: every channel's state, one clock, one delivery scheduler."""

from __future__ import annotations

import logging
import math
import threading
import warnings
from datetime import date
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, Self, Unpack

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.errors import ConfigurationError
from payhub.money import Money
from payhub.signing import load_private_key, load_public_key
from payhub_sandbox._bill_faults import BillFault, BillFaults
from payhub_sandbox._channel import SandboxChannel
from payhub_sandbox._clock import Clock, SystemClock
from payhub_sandbox._errors import InvalidInputError
from payhub_sandbox._faults import FaultMode, GatewayFault, GatewayFaults
from payhub_sandbox._splits import SplitBook
from payhub_sandbox._state import Refund, Trade, TradeStore
from payhub_sandbox.alipay._channel import AlipayChannel
from payhub_sandbox.alipay._simulator import (
    DEFAULT_BUYER_ID,
    DEFAULT_FEE_RATE,
    AlipayMerchant,
    AlipaySimulator,
    make_merchant,
)
from payhub_sandbox.delivery._faults import DeliveryFault, DeliveryFaultOptions
from payhub_sandbox.delivery._listeners import Listeners, ListeningTransport
from payhub_sandbox.delivery._scheduler import (
    DeliveryAttempt,
    DeliveryScheduler,
    OutboundNotification,
)
from payhub_sandbox.unionpay._channel import UnionPayChannel
from payhub_sandbox.unionpay._pki import UnionPayPKI
from payhub_sandbox.unionpay._simulator import UnionPayMerchant, UnionPaySimulator
from payhub_sandbox.wechat._channel import WechatChannel
from payhub_sandbox.wechat._notify import ResigningTransport
from payhub_sandbox.wechat._simulator import (
    DEFAULT_FEE_RATE as WECHAT_DEFAULT_FEE_RATE,
)
from payhub_sandbox.wechat._simulator import (
    RefundOutcome,
    WechatMerchant,
    WechatSimulator,
    make_wechat_merchant,
)

__all__ = ["Sandbox"]

logger = logging.getLogger("payhub_sandbox")


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"Sandbox.{old}() is deprecated and goes in payhub-sandbox 0.3: use sandbox.{new}()",
        DeprecationWarning,
        stacklevel=3,
    )


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
    ``alipay_unscanned_query_waits`` makes ``alipay.trade.query`` answer
    ``WAIT_BUYER_PAY`` for a precreated QR code nobody has scanned yet (Alipay,
    and the sandbox by default, answer ``ACQ.TRADE_NOT_EXIST``).
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
        alipay_unscanned_query_waits: bool = False,
        bills_ready_immediately: bool = False,
        unionpay_pki: UnionPayPKI | None = None,
        wechat_public_key: rsa.RSAPrivateKey | str | bytes | None = None,
        wechat_platform_key: rsa.RSAPrivateKey | str | bytes | None = None,
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
        self._bill_faults = BillFaults()
        self._store.bill_faults = self._bill_faults
        # WeChat Pay signs each notification attempt afresh (see _wechat_notify).
        #: Processes taking notifications in the shops' place (``payhub-sandbox listen``).
        self.listeners = Listeners()
        self._resigner = ResigningTransport(ListeningTransport(self.listeners, notify_transport))
        self._scheduler = DeliveryScheduler(
            clock=self.clock,
            lock=self._lock,
            transport=self._resigner,
            trade_lookup=self._store.get,
        )
        #: Balances, known payees and split/transfer faults (see :mod:`._splits`).
        self.splits = SplitBook(self._lock, self.time_factor)
        self._alipay = AlipaySimulator(
            splits=self.splits,
            store=self._store,
            scheduler=self._scheduler,
            clock=self.clock,
            platform_key=_platform_key(alipay_platform_key),
            time_factor=self.time_factor,
            escape_slashes=alipay_escape_slashes,
            unscanned_query_waits=alipay_unscanned_query_waits,
            bills_ready_immediately=bills_ready_immediately,
        )
        self._unionpay = UnionPaySimulator(
            store=self._store,
            scheduler=self._scheduler,
            clock=self.clock,
            time_factor=self.time_factor,
            pki=unionpay_pki,
        )
        self._unionpay.bills_ready_immediately = bills_ready_immediately
        self._wechat = WechatSimulator(
            store=self._store,
            scheduler=self._scheduler,
            clock=self.clock,
            time_factor=self.time_factor,
            bills_ready_immediately=bills_ready_immediately,
            public_key=wechat_public_key,
            platform_key=wechat_platform_key,
            resigner=self._resigner,
            splits=self.splits,
        )
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        #: Faults injected into the channels' gateways (see :meth:`set_fault`).
        self.gateway_faults = GatewayFaults()
        self._alipay_channel = AlipayChannel(self._alipay, self._scheduler, self.gateway_faults)
        self._unionpay_channel = UnionPayChannel(
            self._unionpay, self._scheduler, self.gateway_faults
        )
        self._wechat_channel = WechatChannel(self._wechat, self._scheduler, self.gateway_faults)

    def __repr__(self) -> str:
        return (
            f"Sandbox(time_factor={self.time_factor}, clock={self.clock!r}, "
            f"base_url={self.base_url!r})"
        )

    # -- Alipay -----------------------------------------------------------

    @property
    def alipay(self) -> AlipayChannel:
        """Alipay's verbs (``sandbox.alipay.pay/fail/refund/close/notify/bill``); its
        ``engine`` is the simulator behind the gateway."""
        return self._alipay_channel

    @property
    def alipay_public_key_pem(self) -> str:
        """The sandbox's Alipay platform public key ("支付宝公钥"), PEM."""
        return self._alipay.public_key_pem

    @property
    def alipay_cert_pem(self) -> str:
        """Certificate mode: the platform's ``alipayCertPublicKey_RSA2.crt``, PEM."""
        return self._alipay.certificates.alipay_cert_pem

    @property
    def alipay_root_cert_pem(self) -> str:
        """Certificate mode: ``alipayRootCert.crt``, PEM."""
        return self._alipay.certificates.root_cert_pem

    def issue_alipay_app_cert(self, app_id: str, public_key: str | bytes) -> str:
        """Certificate mode: an ``appCertPublicKey_<app_id>.crt`` for an app's public
        key (PEM); register the app with it to use certificate mode."""
        try:
            key = load_public_key(public_key)
        except (ConfigurationError, UnicodeEncodeError) as exc:
            raise InvalidInputError(f"public_key: {exc}") from None
        return self._alipay.certificates.issue_app_cert(key, app_id)

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
        """Deprecated: ``sandbox.alipay.pay(app_id, out_trade_no, buyer_id=...)``."""
        _deprecated("pay_alipay", "alipay.pay")
        return self.alipay.pay(app_id, out_trade_no, buyer_id=buyer_id)

    def finish_alipay(self, app_id: str, out_trade_no: str) -> Trade:
        """Deprecated: ``sandbox.alipay.finish(app_id, out_trade_no)``."""
        _deprecated("finish_alipay", "alipay.finish")
        return self.alipay.finish(app_id, out_trade_no)

    def close_alipay(
        self,
        app_id: str,
        out_trade_no: str,
        *,
        reason: Literal["timeout", "merchant"] = "timeout",
    ) -> Trade:
        """Deprecated: ``sandbox.alipay.close(app_id, out_trade_no, reason=...)``."""
        _deprecated("close_alipay", "alipay.close")
        return self.alipay.close(app_id, out_trade_no, reason=reason)

    def refund_alipay(
        self,
        app_id: str,
        out_trade_no: str,
        amount: Money | str,
        *,
        out_request_no: str | None = None,
        reason: str = "",
    ) -> Refund:
        """Deprecated: ``sandbox.alipay.refund(app_id, out_trade_no, amount,
        out_refund_no=...)``."""
        _deprecated("refund_alipay", "alipay.refund")
        return self.alipay.refund(
            app_id, out_trade_no, amount, out_refund_no=out_request_no, reason=reason
        )

    def alipay_bill(self, app_id: str, bill_date: date) -> bytes:
        """Deprecated: ``sandbox.alipay.bill(app_id, bill_date)``."""
        _deprecated("alipay_bill", "alipay.bill")
        return self.alipay.bill(app_id, bill_date)

    # -- UnionPay -------------------------------------------------------------

    @property
    def unionpay(self) -> UnionPayChannel:
        """UnionPay's verbs (``sandbox.unionpay.pay/fail/refund/notify``; no close, no
        bill); its ``engine`` is the simulator behind ``/gateway/api/``."""
        return self._unionpay_channel

    @property
    def unionpay_root_cert_pem(self) -> str:
        """The root certificate a UnionPay client trusts (PEM)."""
        return self._unionpay.root_cert_pem

    @property
    def unionpay_middle_cert_pem(self) -> str:
        """The middle certificate a UnionPay client trusts (PEM)."""
        return self._unionpay.middle_cert_pem

    def issue_unionpay_merchant(
        self, mer_id: str, password: str, *, key: rsa.RSAPrivateKey | None = None
    ) -> tuple[bytes, x509.Certificate]:
        """Issue a signing certificate for ``mer_id`` and register it: returns the
        PKCS#12 (.pfx) bytes protected by ``password``, and the certificate
        (``certId`` = its serial number in decimal). ``key``: reuse an RSA key."""
        return self._unionpay.issue_merchant(mer_id, password, key=key)

    def add_unionpay_merchant(
        self, mer_id: str, certificate: x509.Certificate | str | bytes
    ) -> UnionPayMerchant:
        """Register a merchant's own signing certificate (PEM, DER or loaded)."""
        return self._unionpay.add_merchant(mer_id, certificate)

    def unionpay_merchant(self, mer_id: str) -> UnionPayMerchant:
        return self._unionpay.merchant(mer_id)

    @property
    def unionpay_merchants(self) -> list[UnionPayMerchant]:
        return self._unionpay.merchants()

    def unionpay_trade(self, mer_id: str, order_id: str) -> Trade:
        return self._unionpay.trade(mer_id, order_id)

    def pay_unionpay(self, mer_id: str, order_id: str) -> Trade:
        """Deprecated: ``sandbox.unionpay.pay(mer_id, order_id)``."""
        _deprecated("pay_unionpay", "unionpay.pay")
        return self.unionpay.pay(mer_id, order_id)

    def unionpay_fault(self, kind: str | None) -> str | None:
        """From now on sign UnionPay answers and notifications with a faulty certificate:
        ``other_chain``, ``expired``, ``self_signed``, ``foreign_cn``, ``wrong_key``
        or ``unsigned``; None goes back to the good one."""
        return self._unionpay.set_fault(kind)

    # -- WeChat Pay -----------------------------------------------------------

    @property
    def wechat(self) -> WechatChannel:
        """WeChat Pay's verbs (``sandbox.wechat.pay/fail/refund/close/notify/bill``); its
        ``engine`` is the simulator behind ``/v3/``."""
        return self._wechat_channel

    @property
    def wechat_public_key_pem(self) -> str:
        """The WeChat Pay public key (微信支付公钥), PEM: verifies public-key-mode answers."""
        return self._wechat.public_key_pem

    @property
    def wechat_public_key_id(self) -> str:
        """Its ``PUB_KEY_ID_…``: the ``Wechatpay-Serial`` of public-key mode."""
        return self._wechat.public_key_id

    @property
    def wechat_platform_certificates_pem(self) -> list[str]:
        """The platform certificates in force (PEM), oldest first; the last one signs."""
        return [c.pem for c in self._wechat.certificates()]

    @property
    def wechat_platform_certificate_serials(self) -> list[str]:
        """Their serials (upper hex), oldest first."""
        return [c.serial_no for c in self._wechat.certificates()]

    def rotate_wechat_platform_certificate(
        self, key: rsa.RSAPrivateKey | str | bytes | None = None
    ) -> str:
        """Issue a new platform certificate (its serial is returned). The old ones stay
        valid and listed by ``/v3/certificates`` (the overlap); answers and
        notifications are signed with the new one from now on."""
        return self._wechat.rotate_certificate(key).serial_no

    def retire_wechat_platform_certificate(self, serial_no: str) -> None:
        """End a rotation's overlap: stop listing an old platform certificate."""
        self._wechat.retire_certificate(serial_no)

    def add_wechat_merchant(  # noqa: PLR0917 - the order WeChat's console lists them in
        self,
        mch_id: str,
        app_id: str,
        merchant_serial_no: str,
        merchant_public_key: str | bytes | rsa.RSAPublicKey | x509.Certificate,
        api_v3_key: str | bytes,
        key_mode: Literal["public_key", "certificate"] | str = "public_key",
        *,
        fee_rate: Decimal | str | int = WECHAT_DEFAULT_FEE_RATE,
        refund_delay: float = 0.0,
        bill_bom: bool = True,
    ) -> WechatMerchant:
        """Register (or replace) a WeChat Pay merchant: its API certificate's serial and
        public key (PEM key or certificate), its 32-byte API v3 key, and the key mode
        the sandbox signs to it in (``public_key`` or ``certificate``)."""
        merchant = make_wechat_merchant(
            mch_id,
            app_id,
            merchant_serial_no,
            merchant_public_key,
            api_v3_key,
            key_mode,
            fee_rate=fee_rate,
            refund_delay=refund_delay,
            bill_bom=bill_bom,
        )
        return self._wechat.add_merchant(merchant)

    def wechat_merchant(self, mch_id: str) -> WechatMerchant:
        return self._wechat.merchant(mch_id)

    @property
    def wechat_merchants(self) -> list[WechatMerchant]:
        return self._wechat.merchants()

    def wechat_trade(self, mch_id: str, out_trade_no: str) -> Trade:
        return self._wechat.trade(mch_id, out_trade_no)

    def pay_wechat(
        self,
        mch_id: str,
        out_trade_no: str,
        *,
        openid: str | None = None,
        buyer_id: str | None = None,
    ) -> Trade:
        """Deprecated: ``sandbox.wechat.pay(mch_id, out_trade_no, buyer_id=openid)``."""
        _deprecated("pay_wechat", "wechat.pay")
        return self.wechat.pay(mch_id, out_trade_no, buyer_id=openid or buyer_id)

    def refund_wechat(
        self,
        mch_id: str,
        out_trade_no: str,
        amount: Money | str,
        *,
        out_refund_no: str | None = None,
        reason: str = "",
        notify_url: str | None = None,
    ) -> Refund:
        """Deprecated: ``sandbox.wechat.refund(mch_id, out_trade_no, amount, ...)``."""
        _deprecated("refund_wechat", "wechat.refund")
        return self.wechat.refund(
            mch_id,
            out_trade_no,
            amount,
            out_refund_no=out_refund_no,
            reason=reason,
            notify_url=notify_url,
        )

    def close_wechat(self, mch_id: str, out_trade_no: str) -> Trade:
        """Deprecated: ``sandbox.wechat.close(mch_id, out_trade_no)``."""
        _deprecated("close_wechat", "wechat.close")
        return self.wechat.close(mch_id, out_trade_no)

    def wechat_refund(self, mch_id: str, out_refund_no: str) -> Refund:
        return self._wechat.refund(mch_id, out_refund_no)

    def settle_wechat_refund(
        self, mch_id: str, out_refund_no: str, status: RefundOutcome | str = "SUCCESS"
    ) -> Refund:
        """Deprecated: ``sandbox.wechat.settle_refund(mch_id, out_refund_no, status)``."""
        _deprecated("settle_wechat_refund", "wechat.settle_refund")
        return self.wechat.settle_refund(mch_id, out_refund_no, status)

    def wechat_bill(self, mch_id: str, bill_date: date, bill_type: str = "ALL") -> bytes:
        """Deprecated: ``sandbox.wechat.bill(mch_id, bill_date, bill_type)``."""
        _deprecated("wechat_bill", "wechat.bill")
        return self.wechat.bill(mch_id, bill_date, bill_type)

    def fail_wechat_next(
        self,
        code: str,
        *,
        times: int = 1,
        path: str | None = None,
        mch_id: str | None = None,
        message: str | None = None,
    ) -> None:
        """Deprecated: ``sandbox.wechat.fail(code, times=..., merchant_id=..., path=...)``."""
        _deprecated("fail_wechat_next", "wechat.fail")
        self.wechat.fail(code, times=times, merchant_id=mch_id, path=path, message=message)

    # -- every channel ------------------------------------------------------

    @property
    def channels(self) -> dict[str, SandboxChannel[Any]]:
        """Every channel's verbs by name: ``alipay``, ``unionpay``, ``wechat``."""
        return {
            "alipay": self._alipay_channel,
            "unionpay": self._unionpay_channel,
            "wechat": self._wechat_channel,
        }

    def channel(self, name: str) -> SandboxChannel[Any]:
        """A channel's verbs by its name (:class:`InvalidInputError` for another name)."""
        try:
            return self.channels[name]
        except KeyError:
            raise InvalidInputError(f"the sandbox has no channel {name!r}") from None

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
        return (
            self._alipay.close_expired()
            + self._unionpay.close_expired()
            + self._wechat.close_expired()
        )

    def deliver_due(self, *, force: bool = False) -> list[DeliveryAttempt]:
        """POST every notification due now (every pending one if ``force``), synchronously.

        WeChat Pay refunds whose ``refund_delay`` has passed settle first, so their
        ``REFUND.SUCCESS`` notifications go out in the same call."""
        self._wechat.settle_due_refunds()
        self._alipay.settle_due_transfers()
        self._wechat.sharing.settle_due()
        return self._scheduler.deliver_due(force=force)

    def tick(self) -> list[DeliveryAttempt]:
        """What the background thread does each time: close expired trades, deliver."""
        self.close_expired()
        return self.deliver_due()

    # -- planted bill differences -------------------------------------------

    def plant_bill_difference(
        self,
        channel: str,
        merchant_id: str,
        bill_date: date,
        kind: str,
        *,
        out_trade_no: str | None = None,
        out_refund_no: str | None = None,
        amount: Money | None = None,
        fee: Money | None = None,
    ) -> BillFault:
        """Make ``channel``'s bill of ``bill_date`` for ``merchant_id`` disagree with
        what happened (for testing reconciliation): ``unknown_trade``,
        ``wrong_fee``, ``missing_refund``, ``missing_trade``, ``duplicate_row``
        (see ``payhub_sandbox._bill_faults``). Trades and queries are unchanged."""
        if channel not in ("alipay", "wechat", "unionpay"):
            raise InvalidInputError("bills with planted differences: alipay, wechat or unionpay")
        return self._bill_faults.plant(
            channel,
            merchant_id,
            bill_date,
            kind,
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            amount=amount,
            fee=fee,
        )

    @property
    def bill_differences(self) -> list[BillFault]:
        return self._bill_faults.faults()

    def clear_bill_differences(self) -> int:
        """Remove every planted bill difference; how many there were."""
        return self._bill_faults.clear()

    # -- delivery faults ----------------------------------------------------

    def add_delivery_fault(self, **options: Unpack[DeliveryFaultOptions]) -> DeliveryFault:
        """Make notifications misbehave on the way to the shop (see ``docs/sandbox.md``):
        ``delay`` (seconds, or a ``(low, high)`` range drawn with ``seed``),
        ``duplicates`` (+ ``concurrent``), ``reorder``, ``drop_first``,
        ``replay_after`` (+ ``replays``), ``tamper`` (``"amount"``, with
        ``tamper_amount``, or ``"signature"``; ``tamper_attempts``). Scope:
        ``channel``, ``merchant_id``, ``out_trade_no``, ``event_types``; ``limit``
        caps how many notifications it takes. Applies to notifications scheduled
        from now on."""
        return self._scheduler.faults.add(options)

    @property
    def delivery_faults(self) -> list[DeliveryFault]:
        return self._scheduler.faults.faults()

    def delivery_fault(self, fault_id: str) -> DeliveryFault:
        return self._scheduler.faults.get(fault_id)

    def remove_delivery_fault(self, fault_id: str) -> DeliveryFault:
        """Remove a delivery fault; notifications it held back are released."""
        return self._scheduler.remove_fault(fault_id)

    def clear_delivery_faults(self) -> int:
        """Remove every delivery fault (releasing held notifications); how many there were."""
        return len(self._scheduler.clear_faults())

    def notification(self, notification_id: str) -> OutboundNotification:
        return self._scheduler.notification(notification_id)

    def resend_notification(self, notification_id: str) -> list[DeliveryAttempt]:
        """Send a notification now, synchronously: a pending one's next attempt at once
        (released if held), an acknowledged or abandoned one once more (as a
        channel's merchant portal lets a merchant do)."""
        return self._scheduler.resend(notification_id)

    # -- gateway faults -----------------------------------------------------

    def set_fault(
        self,
        channel: str,
        mode: FaultMode | str,
        *,
        app_id: str | None = None,
        seconds: float | None = None,
        count: int | None = None,
        close: bool = False,
        code: str | None = None,
        duration: float | None = None,
    ) -> GatewayFault:
        """Make a channel's gateway fail on purpose: ``down`` (503, empty body; with
        ``close`` a live server drops the connection instead of answering),
        ``slow`` (answer after ``seconds``, real time), ``system_error`` (the
        channel's "system busy", ``code`` choosing which), ``html_error`` (502,
        an nginx page). ``app_id``: one merchant only; ``count``: the next
        ``count`` requests only; ``duration``: for that many seconds of real time (an
        outage); until :meth:`clear_faults` otherwise."""
        return self.gateway_faults.set(
            channel,
            mode,
            app_id=app_id,
            seconds=seconds,
            count=count,
            close=close,
            code=code,
            duration=duration,
        )

    def clear_faults(self, channel: str | None = None, *, app_id: str | None = None) -> int:
        """Clear every gateway fault (a channel's, one merchant's); how many were cleared."""
        return self.gateway_faults.clear(channel, app_id=app_id)

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
        """Stop the delivery thread (if any) and close the notification client;
        clear the gateway faults, releasing the requests a ``slow`` one holds."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping.set()
        if thread is not None:
            thread.join(timeout=30)
        self.gateway_faults.clear()
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
