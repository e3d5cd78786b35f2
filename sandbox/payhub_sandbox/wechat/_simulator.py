"""WeChat Pay APIv3's side of the sandbox: the engine behind ``/v3/...``.

:class:`WechatSimulator` holds no Flask: the view hands it the method, the
path, the request target as sent, the ``Authorization`` headers and the exact
body bytes, and sends back the :class:`WechatReply` it returns. It routes,
authenticates and injects faults here; each job lives in its own module and
class, over one shared :class:`~payhub_sandbox.wechat._core.WechatCore`:

* :mod:`~payhub_sandbox.wechat._orders` — orders, queries, close, the buyer's payment;
* :mod:`~payhub_sandbox.wechat._refunds` — refunds and their end;
* :mod:`~payhub_sandbox.wechat._notifications` — the encrypted, signed notifications;
* :mod:`~payhub_sandbox.wechat._billing` — bill requests and downloads;
* :mod:`~payhub_sandbox.wechat._keys` — the public key, platform certificates, signatures.

The wire format is built from PROTOCOLS.md and checked against files WeChat Pay
published (``tests/fixtures/wechat/``), never through ``payhub.channels``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.errors import SignatureError
from payhub.money import Money
from payhub.signing import rsa_verify
from payhub_sandbox._clock import Clock
from payhub_sandbox._errors import InvalidInputError
from payhub_sandbox._splits import SplitBook
from payhub_sandbox._state import Refund, Trade, TradeStore
from payhub_sandbox.delivery._scheduler import DeliveryScheduler
from payhub_sandbox.wechat._api import Answer, Call, WechatReply
from payhub_sandbox.wechat._billing import WechatBilling
from payhub_sandbox.wechat._core import WechatCore
from payhub_sandbox.wechat._keys import WechatKeys
from payhub_sandbox.wechat._merchants import (
    DEFAULT_FEE_RATE,
    KeyMode,
    WechatMerchant,
    make_wechat_merchant,
)
from payhub_sandbox.wechat._notifications import WECHAT_RETRY_DELAYS, WechatNotifier
from payhub_sandbox.wechat._notify import ResigningTransport
from payhub_sandbox.wechat._orders import DEFAULT_OPENID, WechatOrders, wechat_trade_state
from payhub_sandbox.wechat._pki import PlatformCertificate
from payhub_sandbox.wechat._refunds import RefundOutcome, WechatRefunds
from payhub_sandbox.wechat._sharing import WechatSharing
from payhub_sandbox.wechat._wire import (
    DEFAULT_MESSAGES,
    ERROR_STATUS,
    TIMESTAMP_TOLERANCE,
    WechatFailure,
    parse_authorization,
    render_json,
    request_message,
)

__all__ = [
    "DEFAULT_FEE_RATE",
    "DEFAULT_OPENID",
    "WECHAT_RETRY_DELAYS",
    "KeyMode",
    "RefundOutcome",
    "WechatMerchant",
    "WechatReply",
    "WechatSimulator",
    "make_wechat_merchant",
    "wechat_trade_state",
]

_TIMESTAMP_RE: Final = re.compile(r"[0-9]{1,12}", re.ASCII)

_Handler = Callable[[Call], Answer]


@dataclass
class _Fault:
    code: str
    message: str | None
    remaining: int
    path: str | None
    mch_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "remaining": self.remaining,
            "path": self.path,
            "mch_id": self.mch_id,
        }


class WechatSimulator:
    """WeChat Pay's state and behaviour; every public method is thread-safe."""

    def __init__(
        self,
        *,
        store: TradeStore,
        scheduler: DeliveryScheduler,
        clock: Clock,
        time_factor: float,
        bills_ready_immediately: bool = False,
        public_key: rsa.RSAPrivateKey | str | bytes | None = None,
        platform_key: rsa.RSAPrivateKey | str | bytes | None = None,
        resigner: ResigningTransport | None = None,
        splits: SplitBook | None = None,
    ) -> None:
        self._core = WechatCore(store, scheduler, clock, time_factor)
        self._lock = self._core.lock
        self.keys = WechatKeys(self._core, public_key=public_key, platform_key=platform_key)
        notifier = WechatNotifier(self._core, self.keys)
        self.orders = WechatOrders(self._core, notifier)
        self.refunds = WechatRefunds(self._core, self.orders, notifier)
        self.billing = WechatBilling(self._core, ready_immediately=bills_ready_immediately)
        self.sharing = WechatSharing(
            self._core,
            self.keys,
            notifier,
            splits if splits is not None else SplitBook(store.lock, time_factor),
        )
        sharing, share_path = self.sharing, "/v3/profitsharing"
        bills_path = "/v3/fund-app/mch-transfer/transfer-bills"
        self._faults: list[_Fault] = []
        orders, refunds = self.orders, self.refunds
        trade_path = "/v3/pay/transactions"
        self._routes: tuple[tuple[str, re.Pattern[str], _Handler], ...] = (
            ("POST", re.compile(rf"{trade_path}/(native|jsapi|app|h5)"), orders.create),
            ("GET", re.compile(rf"{trade_path}/out-trade-no/([^/]+)"), orders.query_by_out_no),
            ("GET", re.compile(rf"{trade_path}/id/([^/]+)"), orders.query_by_id),
            ("POST", re.compile(rf"{trade_path}/out-trade-no/([^/]+)/close"), orders.close_api),
            ("POST", re.compile(r"/v3/refund/domestic/refunds"), refunds.create),
            ("GET", re.compile(r"/v3/refund/domestic/refunds/([^/]+)"), refunds.query),
            ("GET", re.compile(r"/v3/certificates"), self.keys.list_certificates),
            ("GET", re.compile(r"/v3/bill/tradebill"), self.billing.tradebill),
            ("GET", re.compile(r"/v3/bill/fundflowbill"), self.billing.fundflowbill),
            ("GET", re.compile(r"/v3/billdownload/file"), self.billing.download),
            ("POST", re.compile(rf"{share_path}/receivers/add"), sharing.add_receiver),
            ("POST", re.compile(rf"{share_path}/receivers/delete"), sharing.delete_receiver),
            ("POST", re.compile(rf"{share_path}/orders"), sharing.create_order),
            ("POST", re.compile(rf"{share_path}/orders/unfreeze"), sharing.unfreeze),
            ("GET", re.compile(rf"{share_path}/orders/([^/]+)"), sharing.query_order),
            ("POST", re.compile(rf"{share_path}/return-orders"), sharing.create_return),
            ("GET", re.compile(rf"{share_path}/return-orders/([^/]+)"), sharing.query_return),
            ("GET", re.compile(rf"{share_path}/transactions/([^/]+)/amounts"), sharing.amounts),
            ("POST", re.compile(bills_path), sharing.create_transfer),
            ("GET", re.compile(rf"{bills_path}/out-bill-no/([^/]+)"), sharing.query_transfer),
            (
                "POST",
                re.compile(rf"{bills_path}/out-bill-no/([^/]+)/cancel"),
                sharing.cancel_transfer,
            ),
        )
        if resigner is not None:
            resigner.register("wechat", self.keys.resign)

    # -- keys and certificates (see WechatKeys) -----------------------------------

    @property
    def public_key_pem(self) -> str:
        """The WeChat Pay public key (微信支付公钥), PEM."""
        return self.keys.public_key_pem

    @property
    def public_key_id(self) -> str:
        """Its id, ``PUB_KEY_ID_…``: the ``Wechatpay-Serial`` of public-key mode."""
        return self.keys.public_key_id

    def certificates(self) -> list[PlatformCertificate]:
        """The platform certificates in force, oldest first (one is made on first need)."""
        return self.keys.certificates()

    def newest_certificate(self) -> PlatformCertificate:
        return self.keys.newest_certificate()

    @property
    def ca_certificate_pem(self) -> str:
        """The sandbox CA that issued the platform certificates, PEM."""
        return self.keys.ca_certificate_pem

    def rotate_certificate(
        self, key: rsa.RSAPrivateKey | str | bytes | None = None
    ) -> PlatformCertificate:
        """Issue a new platform certificate; the old ones stay valid (overlap).
        Responses and notifications are signed with the newest from now on."""
        return self.keys.rotate(key)

    def retire_certificate(self, serial_no: str) -> None:
        """End the overlap: drop a platform certificate (never the last one)."""
        self.keys.retire(serial_no)

    def sign(self, merchant: WechatMerchant | None, body: bytes) -> list[tuple[str, str]]:
        """The ``Wechatpay-*`` headers for ``body``, in the merchant's key mode, now."""
        return self.keys.sign(merchant, body)

    # -- merchants ----------------------------------------------------------------

    def add_merchant(self, merchant: WechatMerchant) -> WechatMerchant:
        """Register (or replace) a merchant."""
        with self._lock:
            self._core.merchants[merchant.mch_id] = merchant
        return merchant

    def merchant(self, mch_id: str) -> WechatMerchant:
        return self._core.merchant(mch_id)

    def merchants(self) -> list[WechatMerchant]:
        with self._lock:
            return list(self._core.merchants.values())

    # -- faults -------------------------------------------------------------------------

    def add_fault(
        self,
        code: str,
        *,
        times: int = 1,
        path: str | None = None,
        mch_id: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` authenticated requests (to paths starting with
        ``path``, of merchant ``mch_id``, if given) with the error ``code``."""
        if code not in ERROR_STATUS:
            raise InvalidInputError(f"unknown WeChat Pay error code {code!r}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise InvalidInputError("times must be a positive integer")
        with self._lock:
            self._faults.append(_Fault(code, message, times, path, mch_id))

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def _take_fault(self, path: str, mch_id: str) -> WechatFailure | None:
        for fault in self._faults:
            if (fault.path is None or path.startswith(fault.path)) and fault.mch_id in (
                None,
                mch_id,
            ):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return WechatFailure(fault.code, fault.message)
        return None

    # -- the API ------------------------------------------------------------------------

    def handle(
        self,
        *,
        method: str,
        path: str,
        targets: Sequence[str],
        query: Mapping[str, str],
        authorization: Sequence[str],
        body: bytes,
        base_url: str,
        serial: str = "",
    ) -> WechatReply:
        """Answer one ``/v3/...`` request.

        ``path`` is the decoded path (for routing); ``targets`` the forms of the
        request target (path and query) the signature may have been made over,
        the raw one as received first.
        """
        self.close_expired()
        self.settle_due_refunds()
        self.sharing.settle_due()
        merchant: WechatMerchant | None = None
        try:
            handler, groups = self._route(method, path)
            merchant = self._authenticate(method, targets, authorization, body)
            call = Call(merchant, query, body, base_url.rstrip("/"), groups, serial)
            with self._lock:
                fault = self._take_fault(path, merchant.mch_id)
                if fault is not None:
                    raise fault
                answer = handler(call)
        except WechatFailure as failure:
            data = render_json(failure.body())
            return WechatReply(failure.status, data, tuple(self.sign(merchant, data)))
        if answer.raw is not None:
            return WechatReply(answer.status, answer.raw, (), answer.content_type)
        data = b"" if answer.data is None else render_json(answer.data)
        return WechatReply(answer.status, data, tuple(self.sign(merchant, data)))

    def _route(self, method: str, path: str) -> tuple[_Handler, tuple[str, ...]]:
        for verb, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is not None and verb == method:
                return handler, match.groups()
        raise WechatFailure("NOT_FOUND", f"{method} {path} 不是微信支付APIv3的接口")

    def error_reply(self, code: str, mch_id: str | None, message: str | None = None) -> WechatReply:
        """A signed error answer (``SYSTEM_ERROR``: HTTP 500, …) to merchant ``mch_id``."""
        status = ERROR_STATUS.get(code, 500)
        text = message or DEFAULT_MESSAGES.get(code, "系统错误，请稍后重试")
        data = render_json({"code": code, "message": text})
        with self._lock:
            merchant = self._core.merchants.get(mch_id or "")
        return WechatReply(status, data, tuple(self.sign(merchant, data)))

    def _authenticate(
        self, method: str, targets: Sequence[str], authorization: Sequence[str], body: bytes
    ) -> WechatMerchant:
        if not authorization:
            raise WechatFailure("SIGN_ERROR", "Http头缺少Authorization或格式错误")
        if len(authorization) > 1:
            raise WechatFailure("SIGN_ERROR", "Http头Authorization重复")
        parsed = parse_authorization(authorization[0])
        if isinstance(parsed, str):
            raise WechatFailure("SIGN_ERROR", parsed)
        with self._lock:
            merchant = self._core.merchants.get(parsed.mchid)
        if merchant is None:
            raise WechatFailure("SIGN_ERROR", "商户号不存在或未开通APIv3，签名验证失败")
        if parsed.serial_no.upper() != merchant.merchant_serial_no:
            raise WechatFailure("SIGN_ERROR", "商户证书序列号有误。请使用签名私钥匹配的证书序列号")
        if not _TIMESTAMP_RE.fullmatch(parsed.timestamp) or (
            abs(int(parsed.timestamp) - self._core.now().timestamp()) > TIMESTAMP_TOLERANCE
        ):
            raise WechatFailure("SIGN_ERROR", "Http头Authorization中的timestamp已过期或格式错误")
        for target in targets:
            message = request_message(method, target, parsed.timestamp, parsed.nonce_str, body)
            try:
                rsa_verify(merchant.public_key, message, parsed.signature)
            except SignatureError:
                continue
            return merchant
        raise WechatFailure("SIGN_ERROR", "错误的签名，验签失败")

    # -- orders (see WechatOrders) --------------------------------------------------------

    def pay_url(self, trade: Trade, base_url: str) -> str:
        """The sandbox page showing the QR content and a Pay button."""
        return self.orders.pay_url(trade, base_url)

    def transaction_json(self, trade: Trade) -> dict[str, Any]:
        """The query answer (and, for a payment, the notification's resource)."""
        return self.orders.transaction_json(trade)

    def trade(self, mch_id: str, out_trade_no: str) -> Trade:
        return self.orders.trade(mch_id, out_trade_no)

    def trade_by_token(self, token: str) -> Trade:
        return self.orders.trade_by_token(token)

    def pay(self, trade: Trade, *, openid: str | None = None) -> Trade:
        """The buyer pays: ``NOTPAY`` → ``SUCCESS``; ``TRANSACTION.SUCCESS`` is scheduled."""
        return self.orders.pay(trade, openid=openid)

    def close(self, trade: Trade) -> Trade:
        """Close an unpaid trade (as the merchant's close API would; not notified)."""
        return self.orders.close(trade)

    def close_expired(self) -> list[Trade]:
        """Close every unpaid trade whose ``time_expire`` has passed (WeChat notifies nothing)."""
        return self.orders.close_expired()

    # -- refunds (see WechatRefunds) -------------------------------------------------------

    def portal_refund(
        self,
        mch_id: str,
        out_trade_no: str,
        amount: Money,
        *,
        out_refund_no: str | None = None,
        reason: str = "",
        notify_url: str | None = None,
    ) -> Refund:
        """Refund as the merchant platform (商户平台) would: the API's rules, no request.
        ``out_refund_no`` (None: a new one) makes it idempotent."""
        return self.refunds.portal_refund(
            mch_id,
            out_trade_no,
            amount,
            out_refund_no=out_refund_no,
            reason=reason,
            notify_url=notify_url,
        )

    def refund(self, mch_id: str, out_refund_no: str) -> Refund:
        return self.refunds.refund(mch_id, out_refund_no)

    def refund_json(self, refund: Refund, trade: Trade | None) -> dict[str, Any]:
        return self.refunds.refund_json(refund, trade)

    def settle_due_refunds(self) -> list[Refund]:
        """Move every ``PROCESSING`` refund whose delay has passed to ``SUCCESS`` (notified)."""
        return self.refunds.settle_due_refunds()

    def settle_refund(self, mch_id: str, out_refund_no: str, status: str = "SUCCESS") -> Refund:
        """End a ``PROCESSING`` refund now: ``SUCCESS``, ``ABNORMAL`` or ``CLOSED`` (notified)."""
        return self.refunds.settle_refund(mch_id, out_refund_no, status)

    # -- bills (see WechatBilling) ----------------------------------------------------------

    def bill(self, mch_id: str, bill_date: date, bill_type: str = "ALL") -> bytes:
        """A day's bill file (uncompressed, BOM per merchant), whatever the time."""
        return self.billing.bill(mch_id, bill_date, bill_type)

    def fundflow_bill(self, mch_id: str, bill_date: date, account_type: str = "BASIC") -> bytes:
        """A day's fund-flow bill file (uncompressed, BOM per merchant), whatever the time."""
        return self.billing.fundflow_bill(mch_id, bill_date, account_type)
