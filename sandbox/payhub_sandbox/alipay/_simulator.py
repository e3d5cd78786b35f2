"""Alipay's side of the sandbox: merchants, gateway methods, notifications,
browser returns and bill links.

:class:`AlipaySimulator` holds no Flask: the gateway view hands it the merged
request parameters and sends back the :class:`GatewayReply` it returns. The
wire format is built here and in :mod:`payhub_sandbox.alipay._wire` from
PROTOCOLS.md, never through ``payhub.channels``.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.errors import AmountError, ConfigurationError, SignatureError
from payhub.money import Money
from payhub.signing import load_public_key, rsa_verify
from payhub_sandbox._clock import CHINA_TZ, Clock
from payhub_sandbox._errors import (
    InvalidInputError,
    TradeNotFoundError,
    TradeStateError,
    UnknownMerchantError,
    parse_fee_rate,
)
from payhub_sandbox._state import Refund, Trade, TradeState, TradeStore
from payhub_sandbox.alipay._bills import alipay_bill_filename, build_alipay_bill_zip
from payhub_sandbox.alipay._wire import (
    SIGN_HASHES,
    amount_text,
    encode_form,
    format_time,
    node_name,
    normalize_charset,
    parse_time,
    render_response,
    sign_params,
    string_to_sign,
    transcode,
)
from payhub_sandbox.delivery._scheduler import DeliveryScheduler, OutboundNotification, scaled

__all__ = [
    "ALIPAY_RETRY_DELAYS",
    "DEFAULT_BUYER_ID",
    "AlipayMerchant",
    "AlipaySimulator",
    "GatewayReply",
    "alipay_trade_status",
]

CHANNEL: Final = "alipay"

#: Seconds between notification attempts: after 4m, 10m, 10m, 1h, 2h, 6h, 15h
#: (8 attempts in all, about 25 hours).
ALIPAY_RETRY_DELAYS: Final = (240.0, 600.0, 600.0, 3600.0, 7200.0, 21600.0, 54000.0)

DEFAULT_BUYER_ID: Final = "2088102000000001"
DEFAULT_FEE_RATE: Final = Decimal("0.006")

_MAX_TOTAL: Final = Money.parse("100000000.00")
_TIMESTAMP_TOLERANCE: Final = timedelta(minutes=15)
_BILL_LINK_TTL: Final = timedelta(seconds=30)
_OUT_NO_RE: Final = re.compile(r"[A-Za-z0-9_\-]{1,64}", re.ASCII)
_TIMEOUT_RE: Final = re.compile(r"([1-9][0-9]{0,4})([mhdc])", re.ASCII)
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_MAX_TIMEOUT: Final = timedelta(days=15)

#: Methods a browser (or the app) brings to the gateway: answered with a
#: redirect to the cashier, or an HTML error page.
_PAGE_METHODS: Final = frozenset(
    {"alipay.trade.page.pay", "alipay.trade.wap.pay", "alipay.trade.app.pay"}
)
_API_METHODS: Final = frozenset(
    {
        "alipay.trade.precreate",
        "alipay.trade.query",
        "alipay.trade.refund",
        "alipay.trade.fastpay.refund.query",
        "alipay.trade.close",
        "alipay.data.dataservice.bill.downloadurl.query",
    }
)
#: Real methods the sandbox does not implement: answered as for an app that
#: has not signed up for them (40006), not as unknown methods.
_UNSUPPORTED_METHODS: Final = frozenset(
    {
        "alipay.trade.create",
        "alipay.trade.pay",
        "alipay.trade.cancel",
        "alipay.trade.order.settle",
        "alipay.trade.orderinfo.sync",
        "alipay.trade.royalty.relation.bind",
        "alipay.fund.trans.uni.transfer",
        "alipay.system.oauth.token",
        "alipay.user.info.share",
    }
)
_KNOWN_METHODS: Final = _PAGE_METHODS | _API_METHODS | _UNSUPPORTED_METHODS

_ALIPAY_STATUS: Final = {
    TradeState.PENDING: "WAIT_BUYER_PAY",
    TradeState.PAID: "TRADE_SUCCESS",
    TradeState.CLOSED: "TRADE_CLOSED",
    TradeState.FINISHED: "TRADE_FINISHED",
}


def alipay_trade_status(trade: Trade) -> str:
    """The Alipay ``trade_status`` of a trade."""
    return _ALIPAY_STATUS[trade.state]


# -- merchants ----------------------------------------------------------------


@dataclass(frozen=True)
class AlipayMerchant:
    """A registered Alipay app: its public key, seller and notification habits."""

    app_id: str
    public_key: rsa.RSAPublicKey = field(repr=False, compare=False)
    seller_id: str
    sign_type: Literal["RSA2", "RSA"] = "RSA2"
    charset: str = "utf-8"
    """The charset of its notifications (``utf-8`` or ``gbk``)."""
    lie_content_type: bool = False
    """Send GBK notifications with a Content-Type that says ``charset=utf-8``."""
    notify_on_close: bool = False
    """Notify ``TRADE_CLOSED`` when the merchant closes a trade (timeouts always notify)."""
    fee_rate: Decimal = DEFAULT_FEE_RATE
    """The service fee rate shown in bills (0.6 % by default)."""

    @property
    def public_key_pem(self) -> str:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def to_json(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "seller_id": self.seller_id,
            "sign_type": self.sign_type,
            "charset": self.charset,
            "lie_content_type": self.lie_content_type,
            "notify_on_close": self.notify_on_close,
            "fee_rate": str(self.fee_rate),
            "public_key": self.public_key_pem,
        }


def make_merchant(
    app_id: str,
    public_key: str | bytes | rsa.RSAPublicKey,
    seller_id: str,
    *,
    sign_type: str = "RSA2",
    charset: str = "utf-8",
    lie_content_type: bool = False,
    notify_on_close: bool = False,
    fee_rate: Decimal | str | int = DEFAULT_FEE_RATE,
) -> AlipayMerchant:
    """Validate registration input into an :class:`AlipayMerchant`."""
    if not app_id or not seller_id:
        raise InvalidInputError("app_id and seller_id are required")
    if sign_type == "RSA2":
        kind: Literal["RSA2", "RSA"] = "RSA2"
    elif sign_type == "RSA":
        kind = "RSA"
    else:
        raise InvalidInputError(f"sign_type must be RSA2 or RSA, not {sign_type!r}")
    codec = normalize_charset(charset)
    if codec is None:
        raise InvalidInputError(f"charset must be utf-8 or gbk, not {charset!r}")
    if isinstance(public_key, rsa.RSAPublicKey):
        key = public_key
    else:
        try:
            key = load_public_key(public_key)
        except (ConfigurationError, UnicodeEncodeError) as exc:
            raise InvalidInputError(f"public_key: {exc}") from None
    rate = parse_fee_rate(fee_rate)
    return AlipayMerchant(
        app_id=app_id,
        public_key=key,
        seller_id=seller_id,
        sign_type=kind,
        charset=codec,
        lie_content_type=lie_content_type,
        notify_on_close=notify_on_close,
        fee_rate=rate,
    )


# -- gateway answers ----------------------------------------------------------


@dataclass(frozen=True)
class GatewayReply:
    """What ``gateway.do`` answers: signed JSON, a redirect, or an error page."""

    kind: Literal["json", "redirect", "page_error"]
    body: bytes = b""
    codec: str = "utf-8"
    location: str = ""
    node: Mapping[str, str] = field(default_factory=dict)


class AlipayFailure(Exception):
    """An error answer of the gateway (never escapes :class:`AlipaySimulator`)."""

    def __init__(
        self,
        code: str,
        msg: str,
        sub_code: str,
        sub_msg: str,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(sub_code)
        self.node: dict[str, str] = {
            "code": code,
            "msg": msg,
            "sub_code": sub_code,
            "sub_msg": sub_msg,
        }
        self.node.update(extra or {})


def _missing(sub_code: str, sub_msg: str) -> AlipayFailure:
    return AlipayFailure("40001", "Missing Required Arguments", sub_code, sub_msg)


def _invalid(sub_code: str, sub_msg: str) -> AlipayFailure:
    return AlipayFailure("40002", "Invalid Arguments", sub_code, sub_msg)


def _business(sub_code: str, sub_msg: str, extra: Mapping[str, str] | None = None) -> AlipayFailure:
    return AlipayFailure("40004", "Business Failed", sub_code, sub_msg, extra)


def _bad_param(what: str) -> AlipayFailure:
    return _business("ACQ.INVALID_PARAMETER", f"参数无效: {what}")


def _busy(code: str) -> AlipayFailure:
    """The gateway's "system busy" answers: ``20000`` (gateway) or ``40004`` (trade system)."""
    if code == "40004":
        return _business("ACQ.SYSTEM_ERROR", "系统错误")
    return AlipayFailure("20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙")


@dataclass(frozen=True)
class _BillLink:
    app_id: str
    bill_date: date
    expires_at: datetime


@dataclass(frozen=True)
class _Request:
    method: str
    codec: str
    params: Mapping[str, str]
    biz: Mapping[str, object]
    merchant: AlipayMerchant


# -- the channel --------------------------------------------------------------


class AlipaySimulator:
    """Alipay's state and behaviour; every public method is thread-safe."""

    def __init__(
        self,
        *,
        store: TradeStore,
        scheduler: DeliveryScheduler,
        clock: Clock,
        platform_key: rsa.RSAPrivateKey,
        time_factor: float,
        escape_slashes: bool = True,
        bills_ready_immediately: bool = False,
    ) -> None:
        self._store = store
        self._lock: threading.RLock = store.lock
        self._scheduler = scheduler
        self._clock = clock
        self._key = platform_key
        self._time_factor = time_factor
        self._escape_slashes = escape_slashes
        self._bills_ready_immediately = bills_ready_immediately
        self._merchants: dict[str, AlipayMerchant] = {}
        self._bill_links: dict[str, _BillLink] = {}
        self._prefix = f"{secrets.randbelow(10_000):04d}"
        self._serial = 0

    # -- merchants ----------------------------------------------------------

    def add_merchant(self, merchant: AlipayMerchant) -> AlipayMerchant:
        """Register (or replace, e.g. after a key rotation) a merchant app."""
        with self._lock:
            self._merchants[merchant.app_id] = merchant
        return merchant

    def merchant(self, app_id: str) -> AlipayMerchant:
        with self._lock:
            try:
                return self._merchants[app_id]
            except KeyError:
                raise UnknownMerchantError(f"no Alipay app {app_id!r} is registered") from None

    def merchants(self) -> list[AlipayMerchant]:
        with self._lock:
            return list(self._merchants.values())

    @property
    def public_key_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    # -- the gateway --------------------------------------------------------

    def handle(
        self, raw: Mapping[str, str], *, base_url: str, system_error: str | None = None
    ) -> GatewayReply:
        """Answer one ``gateway.do`` request.

        ``raw`` holds the merged query and form parameters as latin-1 text (one
        character per received byte); they are decoded here with the request's
        ``charset``. ``system_error`` (``"20000"`` or ``"40004"``, an injected
        fault) answers the gateway's "system busy" instead, signed like any
        error, and changes nothing.
        """
        self.close_expired()
        method = raw.get("method", "")
        node = node_name(method) if method in _KNOWN_METHODS else "error_response"
        codec = normalize_charset(raw.get("charset"))
        requested_type = raw.get("sign_type", "")
        merchant: AlipayMerchant | None = None
        try:
            if system_error is not None:
                raise _busy(system_error)
            if codec is None:
                raise _invalid("isv.invalid-charset", "字符集错误")
            try:
                params = transcode(raw, codec)
            except UnicodeDecodeError:
                raise _invalid("isv.invalid-charset", "参数编码与charset不一致") from None
            request = self._check(params, codec)
            merchant = request.merchant
            with self._lock:
                return self._dispatch(request, node, base_url)
        except AlipayFailure as failure:
            if method in _PAGE_METHODS:
                return GatewayReply(kind="page_error", node=failure.node)
            if merchant is None:
                with self._lock:
                    merchant = self._merchants.get(raw.get("app_id", ""))
            sign_type = (
                merchant.sign_type
                if merchant is not None
                else (requested_type if requested_type in SIGN_HASHES else "RSA2")
            )
            return self._json(node, failure.node, sign_type, codec or "utf-8")

    def _json(self, name: str, node: Mapping[str, Any], sign_type: str, codec: str) -> GatewayReply:
        body = render_response(
            name,
            node,
            self._key,
            sign_type=sign_type,
            codec=codec,
            escape_slashes=self._escape_slashes,
        )
        return GatewayReply(kind="json", body=body, codec=codec)

    def _check(self, params: Mapping[str, str], codec: str) -> _Request:
        """The common checks, in the order the real gateway makes them."""
        method = params.get("method", "")
        if not method:
            raise _missing("isv.missing-method", "缺少方法名参数")
        if method not in _KNOWN_METHODS:
            raise _invalid("isv.invalid-method", "不存在的方法名")
        fmt = params.get("format", "")
        if fmt and fmt.upper() != "JSON":
            raise _invalid("isv.invalid-format", "无效的数据格式")
        app_id = params.get("app_id", "")
        if not app_id:
            raise _missing("isv.missing-app-id", "缺少AppID参数")
        if not params.get("sign"):
            raise _missing("isv.missing-signature", "缺少签名参数")
        sign_type = params.get("sign_type", "")
        if not sign_type:
            raise _missing("isv.missing-signature-type", "缺少签名类型参数")
        stamp = params.get("timestamp", "")
        if not stamp:
            raise _missing("isv.missing-timestamp", "缺少时间戳参数")
        when = parse_time(stamp)
        if when is None or abs(when - self._clock.now()) > _TIMESTAMP_TOLERANCE:
            raise _invalid("isv.invalid-timestamp", "非法的时间戳参数")
        if not params.get("version"):
            raise _missing("isv.missing-version", "缺少版本参数")
        with self._lock:
            merchant = self._merchants.get(app_id)
        if merchant is None:
            raise _invalid("isv.invalid-app-id", "无效的AppID参数")
        if sign_type not in SIGN_HASHES:
            raise _invalid("isv.invalid-signature-type", "无效的签名类型参数")
        content = string_to_sign(params)
        if sign_type != merchant.sign_type or not self._verifies(
            merchant, content, params["sign"], codec
        ):
            raise _invalid(
                "isv.invalid-signature",
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，"
                f"网关生成的验签字符串为：{content}",
            )
        if method in _UNSUPPORTED_METHODS:
            raise AlipayFailure(
                "40006",
                "Insufficient Permissions",
                "isv.insufficient-isv-permissions",
                "ISV权限不足，建议在开发者中心检查对应功能是否已经添加",
            )
        if params.get("app_auth_token"):
            raise AlipayFailure(
                "20001",
                "Insufficient Token Permissions",
                "aop.invalid-app-auth-token",
                "无效的应用授权令牌",
            )
        return _Request(method, codec, params, _parse_biz(params.get("biz_content", "")), merchant)

    @staticmethod
    def _verifies(merchant: AlipayMerchant, content: str, sign: str, codec: str) -> bool:
        try:
            rsa_verify(
                merchant.public_key,
                content.encode(codec),
                sign,
                SIGN_HASHES[merchant.sign_type],
            )
        except (SignatureError, UnicodeEncodeError):
            return False
        return True

    def _dispatch(self, request: _Request, node: str, base_url: str) -> GatewayReply:
        method = request.method
        if method in _PAGE_METHODS:
            trade = self._create(request)
            return GatewayReply(kind="redirect", location=self.cashier_url(trade, base_url))
        if method == "alipay.trade.precreate":
            trade = self._create(request)
            fields: dict[str, Any] = {
                "out_trade_no": trade.out_trade_no,
                "qr_code": self.cashier_url(trade, base_url),
            }
        elif method == "alipay.trade.query":
            fields = self._query(request)
        elif method == "alipay.trade.refund":
            fields = self._refund(request)
        elif method == "alipay.trade.fastpay.refund.query":
            fields = self._refund_query(request)
        elif method == "alipay.trade.close":
            fields = self._close(request)
        else:
            fields = self._bill_url(request, base_url)
        answer: dict[str, Any] = {"code": "10000", "msg": "Success"}
        answer.update(fields)
        return self._json(node, answer, request.merchant.sign_type, request.codec)

    # -- creating trades ----------------------------------------------------

    def _new_trade_no(self, now: datetime) -> str:
        self._serial += 1
        return f"{now.astimezone(CHINA_TZ):%Y%m%d}22001{self._prefix}{self._serial:011d}"

    def _create(self, request: _Request) -> Trade:
        biz = request.biz
        merchant = request.merchant
        out_trade_no = _text(biz, "out_trade_no")
        if not _OUT_NO_RE.fullmatch(out_trade_no):
            raise _bad_param("out_trade_no必须是1-64位字母、数字、下划线或连字符")
        total = _amount(biz, "total_amount")
        if total > _MAX_TOTAL:
            raise _business("ACQ.TOTAL_FEE_EXCEED", "订单金额超过限额")
        if total.is_zero():
            raise _bad_param("total_amount必须大于0")
        subject = _text(biz, "subject")
        if not subject or len(subject) > 256:
            raise _bad_param("subject不能为空且不能超过256个字符")
        now = self._clock.now()
        expires_at = self._expiry(biz, now)
        existing = self._store.find(CHANNEL, merchant.app_id, out_trade_no=out_trade_no)
        if existing is not None:
            if existing.state is TradeState.PAID:
                raise _business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if existing.state is TradeState.FINISHED:
                raise _business("ACQ.TRADE_HAS_FINISHED", "交易已完结")
            if existing.state is TradeState.CLOSED:
                raise _business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if existing.amount != total or existing.subject != subject:
                raise _business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            return existing
        trade = Trade(
            channel=CHANNEL,
            merchant_id=merchant.app_id,
            trade_no=self._new_trade_no(now),
            out_trade_no=out_trade_no,
            amount=total,
            subject=subject,
            state=TradeState.PENDING,
            created_at=now,
            product=request.method,
            notify_url=request.params.get("notify_url") or None,
            return_url=request.params.get("return_url") or None,
            expires_at=expires_at,
            extra={
                "charset": request.codec,
                "seller_id": merchant.seller_id,
                "body": _text(biz, "body"),
            },
        )
        self._store.add_trade(trade)
        return trade

    def _expiry(self, biz: Mapping[str, object], now: datetime) -> datetime | None:
        absolute = _text(biz, "time_expire")
        if absolute:
            when = parse_time(absolute)
            if when is None:
                raise _bad_param("time_expire格式必须为yyyy-MM-dd HH:mm:ss")
            return when
        relative = _text(biz, "timeout_express")
        if not relative:
            return None
        match = _TIMEOUT_RE.fullmatch(relative)
        if match is None:
            raise _bad_param("timeout_express格式错误")
        count, unit = int(match.group(1)), match.group(2)
        if unit == "c":
            if count != 1:
                raise _bad_param("timeout_express取值1c表示当天")
            today = now.astimezone(CHINA_TZ).date()
            return datetime.combine(today, time(23, 59, 59), CHINA_TZ)
        span = timedelta(minutes=count) * {"m": 1, "h": 60, "d": 1440}[unit]
        if span > _MAX_TIMEOUT:
            raise _bad_param("timeout_express取值范围1m～15d")
        return now + span / self._time_factor

    # -- query, refund, close -----------------------------------------------

    def _locate(self, request: _Request) -> Trade:
        trade_no = _text(request.biz, "trade_no")
        out_trade_no = _text(request.biz, "out_trade_no")
        if not trade_no and not out_trade_no:
            raise _bad_param("trade_no和out_trade_no不能同时为空")
        trade = self._store.find(
            CHANNEL, request.merchant.app_id, trade_no=trade_no, out_trade_no=out_trade_no
        )
        if trade is None:
            extra = {"out_trade_no": out_trade_no} if out_trade_no else {}
            raise _business("ACQ.TRADE_NOT_EXIST", "交易不存在", extra)
        return trade

    def _query(self, request: _Request) -> dict[str, Any]:
        trade = self._locate(request)
        zero = Money.zero(trade.amount.currency)
        paid = trade.paid_at is not None
        fields: dict[str, Any] = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
        }
        if paid:
            fields["buyer_logon_id"] = trade.buyer_account
        fields.update(
            {
                "trade_status": alipay_trade_status(trade),
                "total_amount": amount_text(trade.amount),
                "buyer_pay_amount": amount_text(trade.amount if paid else zero),
                "point_amount": "0.00",
                "invoice_amount": amount_text(trade.amount if paid else zero),
                "receipt_amount": amount_text(trade.amount if paid else zero),
                "subject": trade.subject,
            }
        )
        if paid and trade.paid_at is not None:
            fields["send_pay_date"] = format_time(trade.paid_at)
            fields["fund_bill_list"] = [
                {"fund_channel": "ALIPAYACCOUNT", "amount": amount_text(trade.amount)}
            ]
            fields["buyer_user_id"] = trade.buyer_id
        return fields

    def _refund(self, request: _Request) -> dict[str, Any]:
        trade = self._locate(request)
        amount = _amount(request.biz, "refund_amount")
        if amount.is_zero():
            raise _bad_param("refund_amount必须大于0")
        out_request_no = _text(request.biz, "out_request_no") or trade.trade_no
        if len(out_request_no) > 64:
            raise _bad_param("out_request_no不能超过64个字符")
        earlier = self._store.find_refund(
            CHANNEL, trade.merchant_id, trade.trade_no, out_request_no
        )
        if earlier is not None:
            if earlier.amount != amount:
                raise _business(
                    "ACQ.DISCORDANT_REPEAT_REQUEST", "不一致的请求: 该退款请求号已用于另一金额"
                )
            return self._refund_answer(trade, earlier, fund_change=False)
        if trade.state is TradeState.PENDING:
            raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if trade.state is TradeState.FINISHED:
            raise _business("ACQ.TRADE_HAS_FINISHED", "交易已完结")
        if trade.state is TradeState.CLOSED and trade.close_reason != "refunded":
            raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if amount > trade.refundable:
            raise _business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        refund = self._apply_refund(
            trade, amount, out_request_no, _text(request.biz, "refund_reason")
        )
        updated = self._store.get(trade.trade_no)
        assert updated is not None
        return self._refund_answer(updated, refund, fund_change=True)

    def _apply_refund(
        self, trade: Trade, amount: Money, out_request_no: str, reason: str
    ) -> Refund:
        now = self._clock.now()
        merchant = self.merchant(trade.merchant_id)
        total = trade.refunded + amount
        full = total == trade.amount
        earlier_fees = sum(
            (
                r.fee_returned.minor
                for r in self._store.refunds(CHANNEL)
                if r.trade_no == trade.trade_no
            ),
            0,
        )
        if full:
            fee_back = trade.fee.minor - earlier_fees
        else:
            fee_back = min(
                _half_up_div(trade.fee.minor * amount.minor, trade.amount.minor),
                trade.fee.minor - earlier_fees,
            )
        self._serial += 1
        refund = Refund(
            channel=CHANNEL,
            merchant_id=trade.merchant_id,
            refund_no=f"{now.astimezone(CHINA_TZ):%Y%m%d}RF{self._prefix}{self._serial:011d}",
            out_refund_no=out_request_no,
            trade_no=trade.trade_no,
            out_trade_no=trade.out_trade_no,
            amount=amount,
            refunded_total=total,
            fee_returned=Money(fee_back, amount.currency),
            created_at=now,
            reason=reason,
            full=full,
        )
        self._store.add_refund(refund)
        changed = replace(trade, refunded=total)
        if full:
            changed = replace(
                changed, state=TradeState.CLOSED, closed_at=now, close_reason="refunded"
            )
        self._store.replace_trade(changed)
        self._notify(changed, merchant, refund=refund)
        return refund

    def _refund_answer(self, trade: Trade, refund: Refund, *, fund_change: bool) -> dict[str, Any]:
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": trade.buyer_account,
            "fund_change": "Y" if fund_change else "N",
            "refund_fee": amount_text(refund.refunded_total),
            "gmt_refund_pay": format_time(refund.created_at),
            "buyer_user_id": trade.buyer_id,
            "send_back_fee": amount_text(refund.amount),
        }

    def _refund_query(self, request: _Request) -> dict[str, Any]:
        out_request_no = _text(request.biz, "out_request_no")
        if not out_request_no:
            raise _bad_param("out_request_no不能为空")
        trade = self._locate(request)
        refund = self._store.find_refund(CHANNEL, trade.merchant_id, trade.trade_no, out_request_no)
        if refund is None:
            # Alipay answers a refund it does not know with a bare success.
            return {}
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "out_request_no": refund.out_refund_no,
            "total_amount": amount_text(trade.amount),
            "refund_amount": amount_text(refund.amount),
            "refund_status": "REFUND_SUCCESS",
            "gmt_refund_pay": format_time(refund.created_at),
            "send_back_fee": amount_text(refund.amount),
        }

    def _close(self, request: _Request) -> dict[str, Any]:
        trade = self._locate(request)
        if trade.state is not TradeState.PENDING:
            raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        self._close_trade(trade, "merchant")
        return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}

    def _close_trade(self, trade: Trade, reason: str) -> Trade:
        merchant = self.merchant(trade.merchant_id)
        closed = replace(
            trade, state=TradeState.CLOSED, closed_at=self._clock.now(), close_reason=reason
        )
        self._store.replace_trade(closed)
        if reason != "merchant" or merchant.notify_on_close:
            self._notify(closed, merchant)
        return closed

    # -- bills ----------------------------------------------------------------

    def _bill_url(self, request: _Request, base_url: str) -> dict[str, Any]:
        bill_type = _text(request.biz, "bill_type")
        bill_date = _text(request.biz, "bill_date")
        if bill_type not in ("trade", "signcustomer"):
            raise _invalid("isv.invalid-parameter", "参数无效: bill_type")
        if not _DATE_RE.fullmatch(bill_date):
            # Monthly bills (yyyy-MM) and customer bills are not kept by the sandbox.
            if re.fullmatch(r"[0-9]{4}-[0-9]{2}", bill_date, re.ASCII):
                raise _business("isp.bill_not_exist", "账单不存在")
            raise _invalid("isv.invalid-parameter", "参数无效: bill_date")
        try:
            day = date.fromisoformat(bill_date)
        except ValueError:
            raise _invalid("isv.invalid-parameter", "参数无效: bill_date") from None
        if bill_type != "trade" or not self._bill_ready(day):
            raise _business("isp.bill_not_exist", "账单不存在")
        now = self._clock.now()
        token = secrets.token_urlsafe(18)
        self._bill_links[token] = _BillLink(request.merchant.app_id, day, now + _BILL_LINK_TTL)
        for stale in [t for t, link in self._bill_links.items() if link.expires_at < now]:
            del self._bill_links[stale]
        return {"bill_download_url": f"{base_url.rstrip('/')}/_bills/alipay/{token}"}

    def _bill_ready(self, day: date) -> bool:
        now = self._clock.now().astimezone(CHINA_TZ)
        if self._bills_ready_immediately:
            return day <= now.date()
        return now >= datetime.combine(day + timedelta(days=1), time(9), CHINA_TZ)

    def bill_archive(self, token: str) -> tuple[str, bytes] | None:
        """The zip a bill link points to, with its file name; None if unknown or expired."""
        with self._lock:
            link = self._bill_links.get(token)
            if link is None or self._clock.now() > link.expires_at:
                return None
        return self.bill(link.app_id, link.bill_date)

    def bill(self, app_id: str, bill_date: date) -> tuple[str, bytes]:
        """The day's bill zip of a merchant app (whatever the time), with its file name."""
        merchant = self.merchant(app_id)
        with self._lock:
            trades = [t for t in self._store.trades(CHANNEL) if t.merchant_id == app_id]
            refunds = [r for r in self._store.refunds(CHANNEL) if r.merchant_id == app_id]
        trades, refunds = self._store.bill_faults.apply(CHANNEL, app_id, bill_date, trades, refunds)
        archive = build_alipay_bill_zip(
            seller_id=merchant.seller_id,
            bill_date=bill_date,
            trades=trades,
            refunds=refunds,
            exported_at=self._clock.now(),
        )
        return alipay_bill_filename(merchant.seller_id, bill_date), archive

    # -- what the buyer, the control API and the Python API do ---------------

    def trade(self, app_id: str, out_trade_no: str) -> Trade:
        trade = self._store.find(CHANNEL, app_id, out_trade_no=out_trade_no)
        if trade is None:
            raise TradeNotFoundError(f"no Alipay trade {out_trade_no!r} for app {app_id!r}")
        return trade

    def trade_by_no(self, trade_no: str) -> Trade:
        trade = self._store.get(trade_no)
        if trade is None or trade.channel != CHANNEL:
            raise TradeNotFoundError(f"no Alipay trade {trade_no!r}")
        return trade

    def pay(self, trade: Trade, *, buyer_id: str = DEFAULT_BUYER_ID) -> Trade:
        """The buyer pays: ``WAIT_BUYER_PAY`` → ``TRADE_SUCCESS``, notification scheduled."""
        with self._lock:
            self.close_expired()
            trade = self.trade_by_no(trade.trade_no)
            if trade.state is not TradeState.PENDING:
                raise TradeStateError(
                    f"trade {trade.trade_no} is {alipay_trade_status(trade)}, not WAIT_BUYER_PAY"
                )
            merchant = self.merchant(trade.merchant_id)
            if not buyer_id:
                raise InvalidInputError("buyer_id is required")
            if buyer_id == merchant.seller_id:
                raise TradeStateError("ACQ.BUYER_SELLER_EQUAL: 买卖家不能相同")
            fee = (Decimal(trade.amount.minor) * merchant.fee_rate).quantize(
                Decimal(1), ROUND_HALF_UP
            )
            paid = replace(
                trade,
                state=TradeState.PAID,
                paid_at=self._clock.now(),
                buyer_id=buyer_id,
                buyer_account=f"138****{buyer_id[-4:]}",
                fee=Money(int(fee), trade.amount.currency),
            )
            self._store.replace_trade(paid)
            self._notify(paid, merchant)
            return paid

    def finish(self, trade: Trade) -> Trade:
        """``TRADE_SUCCESS`` → ``TRADE_FINISHED`` (the refund period is over)."""
        with self._lock:
            trade = self.trade_by_no(trade.trade_no)
            if trade.state is not TradeState.PAID:
                raise TradeStateError(
                    f"trade {trade.trade_no} is {alipay_trade_status(trade)}, not TRADE_SUCCESS"
                )
            done = replace(trade, state=TradeState.FINISHED, finished_at=self._clock.now())
            self._store.replace_trade(done)
            self._notify(done, self.merchant(trade.merchant_id))
            return done

    def close(self, trade: Trade, *, reason: Literal["timeout", "merchant"] = "timeout") -> Trade:
        """Close an unpaid trade, as a timeout (always notified) or as the merchant."""
        with self._lock:
            trade = self.trade_by_no(trade.trade_no)
            if trade.state is not TradeState.PENDING:
                raise TradeStateError(
                    f"trade {trade.trade_no} is {alipay_trade_status(trade)}, not WAIT_BUYER_PAY"
                )
            return self._close_trade(trade, reason)

    def refund(
        self, trade: Trade, amount: Money, *, out_request_no: str | None = None, reason: str = ""
    ) -> Refund:
        """A refund made outside the gateway (the merchant's portal: the console, the
        control API), with the gateway's rules, notified like any refund.

        ``out_request_no`` is the idempotency key (None: a new one); the same number
        and amount returns the earlier refund unchanged.
        """
        with self._lock:
            trade = self.trade_by_no(trade.trade_no)
            if amount.is_zero() or amount.minor < 0:
                raise InvalidInputError("the refund amount must be positive")
            if out_request_no is None:
                done = sum(1 for r in self._store.refunds(CHANNEL) if r.trade_no == trade.trade_no)
                out_request_no = f"R{done + 1}-{trade.trade_no}"
            if not _OUT_NO_RE.fullmatch(out_request_no):
                raise InvalidInputError("out_request_no: 1-64 of A-Z a-z 0-9 _ -")
            earlier = self._store.find_refund(
                CHANNEL, trade.merchant_id, trade.trade_no, out_request_no
            )
            if earlier is not None:
                if earlier.amount != amount:
                    raise InvalidInputError(
                        f"refund {out_request_no} was made for another amount "
                        "(ACQ.DISCORDANT_REPEAT_REQUEST)"
                    )
                return earlier
            refundable = trade.state is TradeState.PAID or (
                trade.state is TradeState.CLOSED and trade.close_reason == "refunded"
            )
            if not refundable:
                raise TradeStateError(
                    f"trade {trade.trade_no} is {alipay_trade_status(trade)}: it cannot be refunded"
                )
            if amount > trade.refundable:
                raise TradeStateError(
                    f"refund of {amount.to_decimal_string()} exceeds the refundable "
                    f"{trade.refundable.to_decimal_string()} (ACQ.REFUND_AMT_NOT_EQUAL_TOTAL)"
                )
            return self._apply_refund(trade, amount, out_request_no, reason)

    def close_expired(self) -> list[Trade]:
        """Close every unpaid trade whose ``timeout_express``/``time_expire`` has passed."""
        now = self._clock.now()
        with self._lock:
            due = self._store.expired(CHANNEL, now)
            return [self._close_trade(t, "timeout") for t in due]

    def cashier_url(self, trade: Trade, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/alipay/cashier/{trade.trade_no}"

    def return_url(self, trade: Trade) -> str | None:
        """The browser's signed way back to the shop after paying, if it gave one."""
        if not trade.return_url:
            return None
        merchant = self.merchant(trade.merchant_id)
        codec = trade.extra.get("charset", "utf-8")
        fields = {
            "charset": codec,
            "out_trade_no": trade.out_trade_no,
            "method": f"{trade.product}.return",
            "total_amount": amount_text(trade.amount),
            "trade_no": trade.trade_no,
            "auth_app_id": merchant.app_id,
            "version": "1.0",
            "app_id": merchant.app_id,
            "sign_type": merchant.sign_type,
            "seller_id": merchant.seller_id,
            "timestamp": format_time(self._clock.now()),
        }
        fields["sign"] = sign_params(fields, self._key, sign_type=merchant.sign_type, codec=codec)
        query = encode_form(fields.items(), codec).decode("ascii")
        return f"{trade.return_url}{'&' if '?' in trade.return_url else '?'}{query}"

    # -- notifications ----------------------------------------------------------

    def _notify(
        self, trade: Trade, merchant: AlipayMerchant, *, refund: Refund | None = None
    ) -> None:
        if not trade.notify_url:
            return
        now = self._clock.now()
        notify_id = secrets.token_hex(16)
        paid = trade.paid_at is not None
        total = amount_text(trade.amount)
        closed_at = trade.finished_at or trade.closed_at
        fields: dict[str, str] = {
            "gmt_create": format_time(trade.created_at),
            "charset": merchant.charset,
            "seller_id": merchant.seller_id,
            "subject": trade.subject,
            "body": trade.extra.get("body", ""),
            "buyer_id": trade.buyer_id or "",
            "buyer_logon_id": trade.buyer_account or "",
            "invoice_amount": total if paid else "",
            "notify_id": notify_id,
            "fund_bill_list": _fund_bill_list(trade) if paid else "",
            "notify_type": "trade_status_sync",
            "trade_status": alipay_trade_status(trade),
            "receipt_amount": total if paid else "",
            "buyer_pay_amount": total if paid else "",
            "app_id": merchant.app_id,
            "notify_time": format_time(now),
            "point_amount": "0.00" if paid else "",
            "total_amount": total,
            "gmt_payment": format_time(trade.paid_at) if trade.paid_at else "",
            "gmt_close": format_time(closed_at) if closed_at and trade.state in _ENDED else "",
            "trade_no": trade.trade_no,
            "auth_app_id": merchant.app_id,
            "out_trade_no": trade.out_trade_no,
            "version": "1.0",
        }
        if refund is not None:
            fields["refund_fee"] = amount_text(refund.refunded_total)
            fields["gmt_refund"] = _millis(refund.created_at)
            fields["out_biz_no"] = refund.out_refund_no
        fields = {k: v for k, v in fields.items() if v != ""}
        fields["sign_type"] = merchant.sign_type
        fields["sign"] = sign_params(
            fields, self._key, sign_type=merchant.sign_type, codec=merchant.charset
        )
        declared = "utf-8" if merchant.lie_content_type else merchant.charset
        notification = OutboundNotification(
            id=self._scheduler.new_id(),
            channel=CHANNEL,
            merchant_id=merchant.app_id,
            event_id=notify_id,
            kind=fields["trade_status"] + (" (refund)" if refund is not None else ""),
            trade_no=trade.trade_no,
            url=trade.notify_url,
            headers=(("Content-Type", f"application/x-www-form-urlencoded; charset={declared}"),),
            body=encode_form(fields.items(), merchant.charset),
            created_at=now,
            delays=scaled(ALIPAY_RETRY_DELAYS, self._time_factor),
        )
        self._scheduler.enqueue(notification, _acknowledged)


_ENDED: Final = frozenset({TradeState.CLOSED, TradeState.FINISHED})


def _acknowledged(response: httpx.Response) -> bool:
    """Alipay stops resending only when the body is exactly ``success``."""
    return response.content == b"success"


def _fund_bill_list(trade: Trade) -> str:
    return json.dumps(
        [{"amount": amount_text(trade.amount), "fundChannel": "ALIPAYACCOUNT"}],
        separators=(",", ":"),
    )


def _millis(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss.SSS`` in Asia/Shanghai: the format of ``gmt_refund``."""
    local = moment.astimezone(CHINA_TZ)
    return f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d}"


def _half_up_div(numerator: int, denominator: int) -> int:
    """``round(numerator / denominator)``, halves up, for non-negative integers."""
    return (2 * numerator + denominator) // (2 * denominator)


def _parse_biz(text: str) -> dict[str, object]:
    """``biz_content`` as an object; numbers kept as their literal text (never floats)."""
    if not text:
        return {}
    try:
        value = json.loads(text, parse_float=str, parse_int=str, parse_constant=_no_constant)
    except ValueError:
        raise _invalid("isv.invalid-parameter", "参数无效: biz_content不是合法的JSON对象") from None
    if not isinstance(value, dict):
        raise _invalid("isv.invalid-parameter", "参数无效: biz_content不是合法的JSON对象")
    return value


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _text(biz: Mapping[str, object], name: str) -> str:
    value = biz.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad_param(f"{name}必须是字符串")
    return value


def _amount(biz: Mapping[str, object], name: str) -> Money:
    text = _text(biz, name)
    if not text:
        raise _bad_param(f"{name}不能为空")
    try:
        return Money.parse(text, "CNY")
    except AmountError:
        raise _bad_param(f"{name}格式错误") from None
