"""The Alipay channel: OpenAPI ``gateway.do`` requests, responses and notifications.

Every operation is a sans-I/O flow (see :mod:`payhub.channels._base`): page,
mobile-web and app payments are built and signed locally and need no HTTP; a
QR payment, a query, a refund, a refund query, a close and a bill download each
send signed requests to the gateway and verify what comes back.
"""

from __future__ import annotations

import functools
import json
import math
import re
import tempfile
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import date, datetime
from html import escape
from typing import IO, Any, ClassVar, Final, Self

import httpx

from payhub.channels._base import Channel, Flow
from payhub.channels._bills import BillLine, BillStream
from payhub.channels._fundflow import FundFlowStream
from payhub.channels._splitting import SplitOperations
from payhub.config import validated
from payhub.errors import (
    AmountError,
    ChannelError,
    ConfigurationError,
    ErrorCode,
    InvalidRequestError,
    NotificationRejected,
    ProtocolError,
    SignatureError,
)
from payhub.models import (
    Ack,
    BillRecord,
    Notification,
    NotificationKind,
    PaymentQueryResult,
    PaymentRequest,
    PaymentResult,
    PaymentStatus,
    PayMethod,
    RefundQueryRequest,
    RefundRequest,
    RefundResult,
    RefundStatus,
    ResultKind,
    ReturnInfo,
    order_number_problem,
)
from payhub.money import Money
from payhub.signing import canonical_query, rsa_sign, rsa_verify
from payhub.splits_models import (
    ReceiverBinding,
    ReceiverKind,
    SplitLineResult,
    SplitRequest,
    SplitResult,
    SplitStatus,
    TransferRequest,
    TransferResult,
    TransferStatus,
)

from ._accountlog import (
    ACCOUNT_LOG_METHOD,
    PAGE_SIZE,
    day_window,
    iter_account_log,
    read_page,
    spool_line,
)
from ._bill import iter_bill_archive, parse_bill_archive
from ._codes import SUCCESS_CODE, map_error_code
from ._config import AlipayConfig
from ._wire import (
    SHANGHAI,
    JsonMember,
    decode_form,
    format_time,
    parse_time,
    quote,
    quote_base64,
    top_level_members,
)

__all__ = ["AlipayChannel"]

_PAY_APIS: Final = {
    PayMethod.PAGE: ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
    PayMethod.WAP: ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
    PayMethod.APP: ("alipay.trade.app.pay", "QUICK_MSECURITY_PAY"),
    PayMethod.QR: ("alipay.trade.precreate", "FACE_TO_FACE_PAYMENT"),
}
_TRADE_STATUS: Final = {
    "WAIT_BUYER_PAY": PaymentStatus.PENDING,
    "TRADE_SUCCESS": PaymentStatus.PAID,
    "TRADE_CLOSED": PaymentStatus.CLOSED,
    "TRADE_FINISHED": PaymentStatus.FINISHED,
}
#: trade_status -> (kind, status) without / with ``refund_fee``
_NOTIFY_KINDS: Final = {
    "TRADE_SUCCESS": (
        (NotificationKind.PAYMENT, PaymentStatus.PAID),
        (NotificationKind.REFUND, PaymentStatus.PAID),
    ),
    "TRADE_CLOSED": (
        (NotificationKind.CLOSED, PaymentStatus.CLOSED),
        (NotificationKind.REFUND, PaymentStatus.CLOSED),
    ),
    "TRADE_FINISHED": (
        (NotificationKind.FINISHED, PaymentStatus.FINISHED),
        (NotificationKind.FINISHED, PaymentStatus.FINISHED),
    ),
    "WAIT_BUYER_PAY": (
        (NotificationKind.PENDING, PaymentStatus.PENDING),
        (NotificationKind.PENDING, PaymentStatus.PENDING),
    ),
}
#: which time field says when the event happened, by kind (notify_time otherwise)
_EVENT_TIME: Final = {
    NotificationKind.PAYMENT: "gmt_payment",
    NotificationKind.REFUND: "gmt_refund",
    NotificationKind.CLOSED: "gmt_close",
    NotificationKind.FINISHED: "gmt_close",
    NotificationKind.PENDING: "gmt_create",
}
_FORM_HEADERS: Final = {
    "Content-Type": "application/x-www-form-urlencoded;charset=utf-8",
    "Accept": "application/json",
}
_TRACE_HEADERS: Final = ("alipay-trace-id", "trace_id", "trace-id")
#: The grammar of each identifier a notification carries, checked before the
#: hub (and any SQL) sees it: out_trade_no is payhub's order number, trade_no
#: Alipay's all-digit trade number; ids Alipay makes up are visible ASCII (no
#: NUL, control characters or whitespace) of a bounded length.
_IDENTIFIERS: Final = (
    ("out_trade_no", re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)),
    ("trade_no", re.compile(r"[0-9]{1,64}", re.ASCII)),
    ("notify_id", re.compile(r"[!-~]{1,128}", re.ASCII)),
    ("out_biz_no", re.compile(r"[!-~]{1,64}", re.ASCII)),
    ("seller_id", re.compile(r"[0-9A-Za-z_]{1,32}", re.ASCII)),
)
#: payhub's receiver kinds -> Alipay royalty ``type`` / ``trans_in_type``
_ROYALTY_TYPES: Final = {
    ReceiverKind.USER_ID: "userId",
    ReceiverKind.LOGIN_NAME: "loginName",
    ReceiverKind.OPENID: "openId",
}
#: payhub's receiver kinds -> ``payee_info.identity_type`` of a transfer
_PAYEE_TYPES: Final = {
    ReceiverKind.USER_ID: "ALIPAY_USER_ID",
    ReceiverKind.LOGIN_NAME: "ALIPAY_LOGON_ID",
    ReceiverKind.OPENID: "ALIPAY_OPEN_ID",
    ReceiverKind.MERCHANT: "ALIPAY_USER_ID",
}
_SETTLE_STATES: Final = {
    "SUCCESS": SplitStatus.SUCCEEDED,
    "FAIL": SplitStatus.FAILED,
    "PROCESSING": SplitStatus.PROCESSING,
}
_SETTLE_NOT_FOUND: Final = frozenset({"ACQ.TRADE_NOT_EXIST", "ACQ.SETTLE_NOT_EXIST"})
#: ``status`` of a transfer (uni.transfer answers SUCCESS, FAIL, DEALING, REFUND)
_TRANSFER_STATES: Final = {
    "SUCCESS": TransferStatus.SUCCEEDED,
    "FAIL": TransferStatus.FAILED,
    "REFUND": TransferStatus.FAILED,  # to a bank card: bounced, the money is back
    "CLOSED": TransferStatus.FAILED,
    "DEALING": TransferStatus.PROCESSING,
    "WAIT_PAY": TransferStatus.PROCESSING,
}
_REQUEST_NO: Final = re.compile(r"[A-Za-z0-9_]{1,32}", re.ASCII)
_quote_stable = functools.lru_cache(maxsize=256)(quote)  # URLs and ids repeat across calls


def _now() -> datetime:
    return datetime.now(SHANGHAI)


_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json(value: Mapping[str, Any]) -> str:
    """``biz_content``: compact, non-ASCII kept as is (Alipay signs what is sent)."""
    return _JSON.encode(value)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _order_no(value: object, name: str = "out_trade_no") -> str:
    problem = order_number_problem(value)
    if problem is not None:
        raise InvalidRequestError(f"{name}: {problem}")
    assert isinstance(value, str)  # order_number_problem refuses anything else
    return value


class AlipayChannel(Channel, SplitOperations):
    """One Alipay app, speaking the OpenAPI gateway (``gateway.do``) protocol.

    >>> channel = AlipayChannel.from_config("alipay", {  # doctest: +SKIP
    ...     "app_id": "2021000000000000",
    ...     "app_private_key": {"$file": "app_private_key.pem"},
    ...     "alipay_public_key": {"$env": "ALIPAY_PUBLIC_KEY"},
    ... })

    ``clock`` (a function returning an aware datetime) stamps requests; tests
    inject a fixed one.
    """

    kind: ClassVar[str] = "alipay"
    methods: ClassVar[frozenset[PayMethod]] = frozenset(_PAY_APIS)
    currencies: frozenset[str] = frozenset({"CNY"})

    def __init__(
        self,
        name: str,
        config: AlipayConfig | Mapping[str, Any],
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(name)
        if isinstance(config, Mapping):
            config = _validated(name, config)
        elif not isinstance(config, AlipayConfig):
            raise ConfigurationError(f"channel {name!r}: expected an AlipayConfig or a mapping")
        self.config = config
        self._clock = clock or _now
        self._key = config._private_key
        self._verify_key = config._verify_key
        self._hash = config.hash_name
        self._sign_type = config.sign_type
        self._app_id = config.app_id
        self._seller_id = config.seller_id
        self._alipay_cert_sn = config.alipay_cert_sn
        self._max_minor = config.max_amount.minor
        self._url_prefix = config.gateway + ("&" if "?" in config.gateway else "?")
        self._html_prefix = escape(self._url_prefix)
        common = {
            "app_id": config.app_id,
            "format": "JSON",
            "charset": config.charset,
            "sign_type": config.sign_type,
            "version": "1.0",
        }
        if config.app_cert_sn is not None and config.alipay_root_cert_sn is not None:
            common["app_cert_sn"] = config.app_cert_sn
            common["alipay_root_cert_sn"] = config.alipay_root_cert_sn
        self._common = common
        self._common_query = "&".join(f"{k}={quote(v)}" for k, v in common.items())
        self._acks = (
            Ack(status_code=200, body=b"fail", content_type="text/plain", ok=False),
            Ack(status_code=200, body=b"success", content_type="text/plain", ok=True),
        )

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        """Build the channel from a plain mapping (see :class:`AlipayConfig`)."""
        return cls(name, _validated(name, config))

    def max_amount_minor(self) -> int:
        """The configured ``max_amount`` (Alipay's 100,000,000.00 CNY by default):
        requests above it are refused, and so is any amount parsed from Alipay."""
        return self._max_minor

    # -- requests -----------------------------------------------------------

    def _signed(
        self,
        method: str,
        biz_content: str,
        notify_url: str | None = None,
        return_url: str | None = None,
    ) -> dict[str, str]:
        """The common parameters, ``biz_content`` and their ``sign``."""
        params = self._common.copy()
        params["method"] = method
        params["timestamp"] = format_time(self._clock())
        if notify_url:
            params["notify_url"] = notify_url
        if return_url:
            params["return_url"] = return_url
        params["biz_content"] = biz_content
        params["sign"] = rsa_sign(self._key, canonical_query(params).encode("utf-8"), self._hash)
        return params

    def _encode(self, params: Mapping[str, str], *, biz_content: bool) -> str:
        """Form-encode the parameters, with or without ``biz_content``."""
        parts = [
            self._common_query,
            "method=" + params["method"],  # our own names: letters and dots
            "timestamp=" + quote(params["timestamp"]),
        ]
        for name in ("notify_url", "return_url"):
            url = params.get(name)
            if url:
                parts.append(name + "=" + _quote_stable(url))
        parts.append("sign=" + quote_base64(params["sign"]))
        if biz_content:
            parts.append("biz_content=" + quote(params["biz_content"]))
        return "&".join(parts)

    def _amount(self, amount: Money) -> str:
        if amount.currency != "CNY":
            raise InvalidRequestError(f"alipay takes CNY only, not {amount.currency}")
        if amount.minor > self._max_minor:
            raise AmountError(f"amount {amount} exceeds this channel's limit")
        if amount.minor <= 0:
            raise AmountError("amount must be positive")
        return amount.to_decimal_string()

    def _call(
        self, method: str, biz: Mapping[str, Any], notify_url: str | None = None
    ) -> Generator[httpx.Request, httpx.Response, dict[str, Any]]:
        """POST one signed API call; return its verified ``…_response`` node."""
        biz_content = _json(biz)
        params = self._signed(method, biz_content, notify_url)
        request = httpx.Request(
            "POST",
            self._url_prefix + self._encode(params, biz_content=False),
            content=("biz_content=" + quote(biz_content)).encode("ascii"),
            headers=_FORM_HEADERS,
        )
        response = yield request
        return self._read_response(method, response)

    # -- responses ------------------------------------------------------------

    def _read_response(self, method: str, response: httpx.Response) -> dict[str, Any]:
        """Check, verify and unwrap a gateway response; raise the typed error."""
        status = response.status_code
        if not 200 <= status < 300:
            raise ProtocolError(
                f"alipay {method}: the gateway answered HTTP {status}",
                retryable=status >= 500 or status == 429,
            )
        raw = response.content
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(f"alipay {method}: the response is not UTF-8 text") from None
        members = top_level_members(text)
        node_name = method.replace(".", "_") + "_response"
        member = members.get(node_name) or members.get("error_response")
        if member is None or not isinstance(member.value, dict):
            raise ProtocolError(f"alipay {method}: the response holds no {node_name} object")
        node: dict[str, Any] = member.value
        code = node.get("code")
        sign = members.get("sign")
        if sign is None or sign.value is None or sign.value == "":
            if code in (None, SUCCESS_CODE, "40004"):
                raise SignatureError(f"alipay {method}: the response is not signed")
            # A gateway-level failure (bad signature, unknown app) may come back
            # unsigned: nothing is trusted from it but that the call failed.
            raise self._error(method, node, response, signed=False)
        self._verify_node(method, members, member, raw, text)
        if code != SUCCESS_CODE:
            if not isinstance(code, str):
                raise ProtocolError(f"alipay {method}: the response carries no code")
            raise self._error(method, node, response, signed=True)
        return node

    def _verify_node(
        self,
        method: str,
        members: dict[str, JsonMember],
        node: JsonMember,
        raw: bytes,
        text: str,
    ) -> None:
        sign = members["sign"].value
        if not isinstance(sign, str):
            raise SignatureError(f"alipay {method}: the response's sign is not a string")
        if self._alipay_cert_sn is not None:
            cert_sn = members.get("alipay_cert_sn")
            if cert_sn is not None and cert_sn.value != self._alipay_cert_sn:
                raise SignatureError(
                    f"alipay {method}: the response is signed with another Alipay certificate "
                    f"(alipay_cert_sn {_shown(cert_sn.value)}); install Alipay's current "
                    "public-key certificate"
                )
        # The node's exact bytes: offsets in an all-ASCII text are byte offsets;
        # otherwise re-encoding the slice of the (strictly decoded) text gives
        # back exactly the bytes received.
        signed = (
            raw[node.start : node.end]
            if len(raw) == len(text)
            else text[node.start : node.end].encode("utf-8")
        )
        try:
            rsa_verify(self._verify_key, signed, sign, self._hash)
        except SignatureError as exc:
            raise SignatureError(f"alipay {method}: response {exc.message}") from None

    def _error(
        self, method: str, node: Mapping[str, Any], response: httpx.Response, *, signed: bool
    ) -> ChannelError:
        code = _text(node.get("code"))
        sub_code = _text(node.get("sub_code"))
        msg = _text(node.get("msg"))
        sub_msg = _text(node.get("sub_msg"))
        detail = f"{code} {msg or ''}".strip()
        if sub_code:
            detail += f"; {sub_code}: {sub_msg or ''}".rstrip(": ")
        if not signed:
            detail += " (unsigned response)"
        request_id = next(
            (response.headers[h] for h in _TRACE_HEADERS if h in response.headers),
            _text(node.get("trace_id")),
        )
        return ChannelError(
            f"alipay {method} failed: {detail}",
            channel=self.name,
            channel_code=code,
            channel_sub_code=sub_code,
            channel_message=sub_msg or msg,
            code=map_error_code(code, sub_code),
            http_status=response.status_code,
            request_id=request_id,
        )

    def _money(self, value: Any) -> Money:
        return Money.parse(value, "CNY", max_minor=self._max_minor)

    def _optional_money(self, node: Mapping[str, Any], name: str) -> Money | None:
        value = node.get(name)
        return None if value is None or value == "" else self._money(value)

    @staticmethod
    def _same_trade(method: str, node: Mapping[str, Any], out_trade_no: str) -> None:
        echoed = node.get("out_trade_no")
        if echoed is not None and echoed != out_trade_no:
            raise ProtocolError(f"alipay {method}: the response is about another out_trade_no")

    # -- flows ----------------------------------------------------------------

    def pay(self, request: PaymentRequest) -> Flow[PaymentResult]:
        """PAGE, WAP and APP are signed locally (no HTTP); QR calls ``precreate``."""
        api = _PAY_APIS.get(request.method)
        if api is None:
            raise InvalidRequestError(f"alipay offers no {request.method.value} payment")
        method, product = api
        biz: dict[str, Any] = {
            "out_trade_no": request.out_trade_no,
            "total_amount": self._amount(request.amount),
            "subject": request.subject,
            "product_code": product,
        }
        if request.split:
            # 商家分账: freeze the trade's money for alipay.trade.order.settle
            biz["extend_params"] = {"royalty_freeze": "true"}
        if request.expires_at is not None:
            self._add_expiry(biz, request.expires_at, request.method)
        notify_url = request.notify_url or self.config.notify_url
        if request.method is PayMethod.QR:
            node = yield from self._call(method, biz, notify_url)
            self._same_trade(method, node, request.out_trade_no)
            qr_code = node.get("qr_code")
            if not isinstance(qr_code, str) or not qr_code:
                raise ProtocolError(f"alipay {method}: the response holds no qr_code")
            return PaymentResult(
                channel=self.name,
                out_trade_no=request.out_trade_no,
                kind=ResultKind.QR,
                qr_code=qr_code,
                raw=node,
            )
        browser = request.method is not PayMethod.APP
        return_url = (request.return_url or self.config.return_url) if browser else None
        params = self._signed(method, _json(biz), notify_url, return_url)
        return self._local_result(request.out_trade_no, params, browser=browser)

    def _local_result(
        self, out_trade_no: str, params: dict[str, str], *, browser: bool
    ) -> PaymentResult:
        values: dict[str, Any] = {
            "channel": self.name,
            "out_trade_no": out_trade_no,
            "kind": ResultKind.APP,
            "redirect_url": None,
            "form_html": None,
            "qr_code": None,
            "app_order_string": None,
            "app_params": None,
            "channel_trade_id": None,
            "raw": params,
            "attempts": (),
            "channel_context": {},
        }
        if not browser:
            values["app_order_string"] = self._encode(params, biz_content=True)
            return PaymentResult.model_construct(**values)
        query = self._encode(params, biz_content=False)
        biz_content = params["biz_content"]
        values["kind"] = ResultKind.FORM
        values["redirect_url"] = self._url_prefix + query + "&biz_content=" + quote(biz_content)
        # every byte of the query but '&' is percent-encoded: '&' is all HTML needs escaped
        action = self._html_prefix + query.replace("&", "&amp;")
        values["form_html"] = (
            '<form id="alipaysubmit" name="alipaysubmit" method="POST" accept-charset="utf-8" '
            f'action="{action}">'
            f'<input type="hidden" name="biz_content" value="{escape(biz_content)}">'
            '<input type="submit" value="Alipay" style="display:none"></form>'
            '<script>document.forms["alipaysubmit"].submit();</script>'
        )
        return PaymentResult.model_construct(**values)

    def _add_expiry(self, biz: dict[str, Any], expires_at: datetime, method: PayMethod) -> None:
        now = self._clock()
        seconds = (expires_at - now).total_seconds()
        if seconds <= 0:
            raise InvalidRequestError("expires_at is in the past")
        if method is PayMethod.QR:
            # precreate takes a relative timeout (1m-15d), in whole minutes
            biz["timeout_express"] = f"{min(max(1, math.ceil(seconds / 60)), 15 * 24 * 60)}m"
        else:
            biz["time_expire"] = format_time(expires_at)

    def query(
        self, out_trade_no: str, *, context: Mapping[str, str] | None = None
    ) -> Flow[PaymentQueryResult]:
        """``alipay.trade.query``. A QR trade nobody scanned yet is TRADE_NOT_FOUND.

        ``context`` is accepted and ignored: ``out_trade_no`` alone finds the trade.
        """
        method = "alipay.trade.query"
        node = yield from self._call(method, {"out_trade_no": _order_no(out_trade_no)})
        self._same_trade(method, node, out_trade_no)
        status = _TRADE_STATUS.get(node.get("trade_status", ""))
        if status is None:
            raise ProtocolError(
                f"alipay {method}: unknown trade_status {_shown(node.get('trade_status'))}"
            )
        paid_at = None
        if node.get("send_pay_date"):
            try:
                paid_at = parse_time(node["send_pay_date"])
            except (TypeError, ValueError):
                raise ProtocolError(f"alipay {method}: malformed send_pay_date") from None
        return PaymentQueryResult(
            channel=self.name,
            out_trade_no=out_trade_no,
            status=status,
            amount=self._optional_money(node, "total_amount"),
            channel_trade_id=node.get("trade_no") or None,
            paid_at=paid_at,
            buyer_id=node.get("buyer_user_id") or node.get("buyer_open_id") or None,
            raw=node,
        )

    def refund(self, request: RefundRequest) -> Flow[RefundResult]:
        """``alipay.trade.refund``, with ``out_request_no`` = ``out_refund_no``.

        ``fund_change == "Y"`` is a refund that moved money now: SUCCEEDED.
        Anything else (a repeat of an earlier request, or no answer on it) is
        PENDING: confirm with :meth:`refund_query`, as Alipay advises.
        """
        method = "alipay.trade.refund"
        biz = {
            "out_trade_no": request.out_trade_no,
            "refund_amount": self._amount(request.amount),
            "out_request_no": request.out_refund_no,
        }
        if request.reason:
            biz["refund_reason"] = request.reason
        node = yield from self._call(method, biz)
        self._same_trade(method, node, request.out_trade_no)
        moved = node.get("fund_change") == "Y"
        return RefundResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            out_refund_no=request.out_refund_no,
            status=RefundStatus.SUCCEEDED if moved else RefundStatus.PENDING,
            amount=request.amount,
            refunded_total=self._optional_money(node, "refund_fee"),
            channel_trade_id=node.get("trade_no") or None,
            raw=node,
        )

    def refund_query(self, request: RefundQueryRequest) -> Flow[RefundResult]:
        """``alipay.trade.fastpay.refund.query``.

        ``REFUND_SUCCESS`` (or, from older gateways, a refund amount with no
        status) is SUCCEEDED; an answer without the refund is NOT_FOUND.
        """
        method = "alipay.trade.fastpay.refund.query"
        biz = {"out_trade_no": request.out_trade_no, "out_request_no": request.out_refund_no}
        node = yield from self._call(method, biz)
        self._same_trade(method, node, request.out_trade_no)
        amount = self._optional_money(node, "refund_amount")
        refund_status = node.get("refund_status") or ""
        if refund_status == "REFUND_SUCCESS" or (amount is not None and not refund_status):
            status = RefundStatus.SUCCEEDED
        elif amount is None and not refund_status:
            status = RefundStatus.NOT_FOUND
        else:
            status = RefundStatus.PENDING
        return RefundResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            out_refund_no=request.out_refund_no,
            status=status,
            amount=amount,
            channel_trade_id=node.get("trade_no") or None,
            raw=node,
        )

    def close(self, out_trade_no: str) -> Flow[None]:
        """``alipay.trade.close``: close an unpaid trade."""
        method = "alipay.trade.close"
        node = yield from self._call(method, {"out_trade_no": _order_no(out_trade_no)})
        self._same_trade(method, node, out_trade_no)

    # -- royalty (分账) and transfers ------------------------------------------

    def _split_money(self, amount: Money) -> str:
        """An amount on a split line or a transfer: CNY, positive, within the limit."""
        return self._amount(amount)

    def bind_receiver(
        self, out_request_no: str, receivers: Sequence[ReceiverBinding]
    ) -> Flow[None]:
        """``alipay.trade.royalty.relation.bind``: bind up to 20 receivers.

        Splits (``alipay.trade.order.settle``) may go only to bound receivers.
        Binding an already bound receiver again succeeds.
        """
        yield from self._royalty_relation(
            "alipay.trade.royalty.relation.bind", out_request_no, receivers
        )

    def unbind_receiver(
        self, out_request_no: str, receivers: Sequence[ReceiverBinding]
    ) -> Flow[None]:
        """``alipay.trade.royalty.relation.unbind``: remove receivers from the relation."""
        yield from self._royalty_relation(
            "alipay.trade.royalty.relation.unbind", out_request_no, receivers
        )

    def _royalty_relation(
        self, method: str, out_request_no: str, receivers: Sequence[ReceiverBinding]
    ) -> Flow[None]:
        if not 1 <= len(receivers) <= 20:
            raise InvalidRequestError(f"alipay {method}: 1-20 receivers per call")
        entities = []
        for receiver in receivers:
            entity = {"type": _royalty_type(receiver.kind), "account": receiver.account}
            if receiver.name:
                entity["name"] = receiver.name
            elif receiver.kind is ReceiverKind.LOGIN_NAME and method.endswith(".bind"):
                raise InvalidRequestError(
                    "alipay: a receiver bound by login name needs its real name"
                )
            if receiver.memo:
                entity["memo"] = receiver.memo
            entities.append(entity)
        biz = {"receiver_list": entities, "out_request_no": _request_no(out_request_no)}
        node = yield from self._call(method, biz)
        if node.get("result_code") != "SUCCESS":
            raise ProtocolError(f"alipay {method}: result_code is not SUCCESS")

    def royalty_query(
        self, out_request_no: str, *, page: int = 1, page_size: int = 100
    ) -> Flow[tuple[ReceiverBinding, ...]]:
        """``alipay.trade.royalty.relation.batchquery``: one page of bound receivers."""
        method = "alipay.trade.royalty.relation.batchquery"
        if not (page >= 1 and 1 <= page_size <= 100):
            raise InvalidRequestError("alipay: page >= 1 and 1 <= page_size <= 100")
        biz = {
            "page_num": page,
            "page_size": page_size,
            "out_request_no": _request_no(out_request_no),
        }
        node = yield from self._call(method, biz)
        found = node.get("receiver_list") or []
        if not isinstance(found, list):
            raise ProtocolError(f"alipay {method}: receiver_list is not a list")
        kinds = {v: k for k, v in _ROYALTY_TYPES.items()}
        bound = []
        for item in found:
            if not isinstance(item, dict) or item.get("type") not in kinds:
                raise ProtocolError(f"alipay {method}: a receiver of unknown type")
            bound.append(
                ReceiverBinding(
                    kind=kinds[item["type"]],
                    account=str(item.get("account") or ""),
                    memo=_text(item.get("memo")),
                )
            )
        return tuple(bound)

    def split(self, request: SplitRequest) -> Flow[SplitResult]:
        """``alipay.trade.order.settle``: split a trade among bound receivers.

        Idempotent by ``out_request_no``. ``finish`` sends
        ``extend_params.royalty_finish = "true"`` (the rest of the frozen amount
        goes to the merchant). The answer only says Alipay took the request
        (``settle_no``): the result is PROCESSING until :meth:`split_query`.
        """
        method = "alipay.trade.order.settle"
        parameters = []
        for line in request.lines:
            item: dict[str, Any] = {
                "royalty_type": "transfer",
                "trans_in_type": _royalty_type(line.kind),
                "trans_in": line.account,
                "amount": self._split_money(line.amount),
                "desc": line.description,
            }
            if line.name:
                item["trans_in_name"] = line.name
            parameters.append(item)
        biz: dict[str, Any] = {
            "out_request_no": _request_no(request.out_request_no),
            "trade_no": request.channel_trade_id,
            "royalty_parameters": parameters,
        }
        if request.finish:
            biz["extend_params"] = {"royalty_finish": "true"}
        node = yield from self._call(method, biz)
        echoed = node.get("trade_no")
        if echoed is not None and echoed != request.channel_trade_id:
            raise ProtocolError(f"alipay {method}: the response is about another trade_no")
        return SplitResult(
            channel=self.name,
            out_request_no=request.out_request_no,
            status=SplitStatus.PROCESSING,
            channel_trade_id=request.channel_trade_id,
            channel_split_id=_text(node.get("settle_no")),
            raw=node,
        )

    def split_finish(
        self, out_request_no: str, channel_trade_id: str, description: str
    ) -> Flow[SplitResult]:
        """``alipay.trade.order.settle`` with no royalty parameters and only
        ``extend_params.royalty_finish = "true"``: unfreeze the rest of a trade
        paid with ``royalty_freeze`` (Alipay's 商家分账 guide: "也可不传入分账条款，
        只传入分账完结标识"). ``description`` is not sent (Alipay takes none)."""
        method = "alipay.trade.order.settle"
        biz: dict[str, Any] = {
            "out_request_no": _request_no(out_request_no),
            "trade_no": channel_trade_id,
            "extend_params": {"royalty_finish": "true"},
        }
        node = yield from self._call(method, biz)
        echoed = node.get("trade_no")
        if echoed is not None and echoed != channel_trade_id:
            raise ProtocolError(f"alipay {method}: the response is about another trade_no")
        return SplitResult(
            channel=self.name,
            out_request_no=out_request_no,
            status=SplitStatus.PROCESSING,
            channel_trade_id=channel_trade_id,
            channel_split_id=_text(node.get("settle_no")),
            raw=node,
        )

    def split_query(self, out_request_no: str, channel_trade_id: str) -> Flow[SplitResult]:
        """``alipay.trade.order.settle.query``: each line's ``state`` (SUCCESS, FAIL,
        PROCESSING). SUCCEEDED when every ``transfer`` line succeeded, FAILED
        when every one failed, PROCESSING otherwise."""
        method = "alipay.trade.order.settle.query"
        biz = {"out_request_no": _request_no(out_request_no), "trade_no": channel_trade_id}
        try:
            node = yield from self._call(method, biz)
        except ChannelError as exc:
            if exc.channel_sub_code in _SETTLE_NOT_FOUND:
                return SplitResult(
                    channel=self.name,
                    out_request_no=out_request_no,
                    status=SplitStatus.NOT_FOUND,
                    channel_trade_id=channel_trade_id,
                )
            raise
        details = node.get("royalty_detail_list") or []
        if not isinstance(details, list):
            raise ProtocolError(f"alipay {method}: royalty_detail_list is not a list")
        lines = []
        for item in details:
            if not isinstance(item, dict):
                raise ProtocolError(f"alipay {method}: a royalty detail is not an object")
            if item.get("operation_type", "transfer") != "transfer":
                continue
            state = _SETTLE_STATES.get(str(item.get("state")))
            if state is None:
                raise ProtocolError(f"alipay {method}: unknown state {_shown(item.get('state'))}")
            lines.append(
                SplitLineResult(
                    kind=str(item.get("trans_in_type") or ""),
                    account=str(item.get("trans_in") or item.get("trans_in_open_id") or ""),
                    amount=self._money(item.get("amount")),
                    status=state,
                    fail_reason=_text(item.get("error_code")),
                    channel_detail_id=_text(item.get("detail_id")),
                )
            )
        states = {line.status for line in lines}
        if not lines or SplitStatus.PROCESSING in states:
            status = SplitStatus.PROCESSING
        elif len(states) > 1:
            status = SplitStatus.PARTIAL
        else:
            status = states.pop()
        return SplitResult(
            channel=self.name,
            out_request_no=out_request_no,
            status=status,
            channel_trade_id=channel_trade_id,
            lines=tuple(lines),
            raw=node,
        )

    def _require_cert_mode(self, method: str) -> None:
        if "app_cert_sn" not in self._common:
            raise ConfigurationError(
                f"channel {self.name!r}: alipay {method} needs certificate mode "
                "(app_cert, alipay_cert and alipay_root_cert), not a public key"
            )

    def transfer(self, request: TransferRequest) -> Flow[TransferResult]:
        """``alipay.fund.trans.uni.transfer`` (product ``TRANS_ACCOUNT_NO_PWD``,
        scene ``DIRECT_TRANSFER``): pay to an Alipay account.

        Certificate mode only (Alipay refuses fund APIs signed in public-key
        mode). Idempotent by ``out_biz_no``: send the same number with the same
        content to retry. ``SUCCESS`` is SUCCEEDED; ``DEALING`` (and anything
        but ``FAIL``) is PROCESSING, settled by :meth:`transfer_query`.
        """
        method = "alipay.fund.trans.uni.transfer"
        self._require_cert_mode(method)
        if request.amount.minor < 10:
            raise AmountError("alipay: a transfer to an Alipay account is at least 0.10 CNY")
        payee: dict[str, str] = {
            "identity": request.account,
            "identity_type": _PAYEE_TYPES[request.kind],
        }
        if request.name:
            payee["name"] = request.name
        elif request.kind is ReceiverKind.LOGIN_NAME:
            raise InvalidRequestError("alipay: a transfer to a login name needs the payee's name")
        biz: dict[str, Any] = {
            "out_biz_no": _request_no(request.out_transfer_no),
            "trans_amount": self._split_money(request.amount),
            "product_code": "TRANS_ACCOUNT_NO_PWD",
            "biz_scene": "DIRECT_TRANSFER",
            "order_title": request.title or request.remark,
            "payee_info": payee,
            "remark": request.remark,
        }
        node = yield from self._call(method, biz)
        return self._transfer_result(method, request.out_transfer_no, node, request.amount)

    def transfer_query(self, out_transfer_no: str) -> Flow[TransferResult]:
        """``alipay.fund.trans.common.query`` by ``out_biz_no``."""
        method = "alipay.fund.trans.common.query"
        self._require_cert_mode(method)
        biz = {
            "out_biz_no": _request_no(out_transfer_no),
            "product_code": "TRANS_ACCOUNT_NO_PWD",
            "biz_scene": "DIRECT_TRANSFER",
        }
        try:
            node = yield from self._call(method, biz)
        except ChannelError as exc:
            if exc.channel_sub_code == "ORDER_NOT_EXIST":
                return TransferResult(
                    channel=self.name,
                    out_transfer_no=out_transfer_no,
                    status=TransferStatus.NOT_FOUND,
                )
            raise
        return self._transfer_result(method, out_transfer_no, node, None)

    def _transfer_result(
        self, method: str, out_transfer_no: str, node: Mapping[str, Any], sent: Money | None
    ) -> TransferResult:
        echoed = node.get("out_biz_no")
        if echoed is not None and echoed != out_transfer_no:
            raise ProtocolError(f"alipay {method}: the response is about another out_biz_no")
        raw_status = str(node.get("status") or "")
        status = _TRANSFER_STATES.get(raw_status, TransferStatus.PROCESSING)
        amount = self._optional_money(node, "trans_amount") or sent
        return TransferResult(
            channel=self.name,
            out_transfer_no=out_transfer_no,
            status=status,
            amount=amount,
            channel_transfer_id=_text(node.get("order_id")),
            fail_reason=_text(node.get("error_code") or node.get("fail_reason")),
            raw=dict(node),
        )

    def download_bill(self, bill_date: date) -> Flow[list[BillRecord]]:
        """The day's trade bill: ask for its URL, fetch the zip (a plain GET, over
        https from an allowed bill host only; the URL lives 30 s), parse the GBK
        detail CSV."""
        content = yield from self._bill_zip(bill_date)
        return parse_bill_archive(
            content, channel=self.name, bill_date=bill_date, max_minor=self._max_minor
        )

    def stream_bill(self, bill_date: date) -> Flow[BillStream]:
        """The day's trade bill as a :class:`BillStream`: the zip kept in a
        temporary file, the GBK detail file read one row at a time and held to
        its totals and to the summary file (汇总)."""
        content = yield from self._bill_zip(bill_date)
        name, limit = self.name, self._max_minor

        def read(file: IO[bytes]) -> Iterator[BillLine]:
            return iter_bill_archive(file, max_minor=limit)

        return BillStream.spool(content, read, channel=name, bill_date=bill_date)

    def stream_fundflow_bill(self, bill_date: date) -> Flow[FundFlowStream | None]:
        """The day's movements of the Alipay account, read through the account-log
        API (``alipay.data.bill.accountlog.query``, 00:00:00 to the next day's
        00:00:00 Asia/Shanghai) page by page (2,000 movements a page, each page
        checked, then written to a temporary file: memory holds one page) until
        ``total_size`` are read. A payment's line is what came in less the fee
        Alipay kept on it (its ``收费`` movement); see
        :mod:`payhub.channels.alipay._accountlog`."""
        if not isinstance(bill_date, date) or isinstance(bill_date, datetime):
            raise InvalidRequestError("bill_date must be a date")
        window = day_window(bill_date)
        file = tempfile.TemporaryFile(prefix="payhub-accountlog-")  # noqa: SIM115 - owned
        try:
            page_no, read, total = 1, 0, -1
            while True:
                biz = {
                    "start_time": window[0],
                    "end_time": window[1],
                    "page_no": str(page_no),
                    "page_size": str(PAGE_SIZE),
                }
                node = yield from self._call(ACCOUNT_LOG_METHOD, biz)
                size, items = read_page(
                    node, page_no=page_no, window=window, max_minor=self._max_minor
                )
                if total < 0:
                    total = size
                elif size != total:
                    raise ProtocolError(
                        f"alipay {ACCOUNT_LOG_METHOD}: total_size changed from {total} to "
                        f"{size} on page {page_no} (the day's movements moved while read)"
                    )
                file.writelines(spool_line(item) for item in items)
                read += len(items)
                if read > total:
                    raise ProtocolError(
                        f"alipay {ACCOUNT_LOG_METHOD}: {read} movements read, "
                        f"more than the total_size {total}"
                    )
                if read == total:
                    break
                if not items:
                    raise ProtocolError(
                        f"alipay {ACCOUNT_LOG_METHOD}: page {page_no} is empty after "
                        f"{read} of {total} movements"
                    )
                page_no += 1
            file.flush()
        except BaseException:
            file.close()
            raise
        return FundFlowStream(file, iter_account_log, channel=self.name, bill_date=bill_date)

    def _bill_zip(self, bill_date: date) -> Flow[bytes]:
        if not isinstance(bill_date, date) or isinstance(bill_date, datetime):
            raise InvalidRequestError("bill_date must be a date")
        method = "alipay.data.dataservice.bill.downloadurl.query"
        biz = {"bill_type": "trade", "bill_date": bill_date.isoformat()}
        node = yield from self._call(method, biz)
        text = node.get("bill_download_url")
        if not isinstance(text, str) or not text:
            raise ProtocolError(f"alipay {method}: the response holds no bill_download_url")
        url = self.config.bill_download_url(text)
        if url is None:
            # Never fetched: a URL elsewhere could reach internal addresses.
            raise ProtocolError(
                f"alipay {method}: the bill_download_url is not on an allowed bill host "
                "(see bill_download_hosts)",
                retryable=False,
            )
        response = yield httpx.Request("GET", url)
        if not 200 <= response.status_code < 300:
            raise ProtocolError(
                f"alipay: the bill download answered HTTP {response.status_code}",
                retryable=response.status_code >= 500,
            )
        return response.content

    # -- notifications ----------------------------------------------------------

    def parse_notification(self, headers: httpx.Headers, body: bytes) -> Notification:
        """Verify and parse an asynchronous notification (a form POST).

        The body is decoded with the charset its own ``charset`` field names
        (GBK happens; the Content-Type header is ignored), verified with the
        *configured* sign type over the sorted fields less ``sign`` and
        ``sign_type``, then checked to be ours (``app_id``, ``seller_id``).
        """
        fields, message = decode_form(body)
        get = fields.get
        sign = get("sign")
        if not sign:
            raise SignatureError("alipay: the notification is not signed")
        sign_type = get("sign_type")
        if sign_type and sign_type != self._sign_type:
            raise SignatureError(
                f"alipay: the notification says sign_type {_shown(sign_type)}, "
                f"configured {self._sign_type}"
            )
        try:
            rsa_verify(self._verify_key, message, sign, self._hash)
        except SignatureError as exc:
            raise SignatureError(f"alipay: notification {exc.message}") from None
        if get("app_id") != self._app_id or (
            self._seller_id is not None and get("seller_id") != self._seller_id
        ):
            self._check_ours(fields)  # raises, saying which
        return self._notification(fields, body)

    def _check_ours(self, fields: Mapping[str, str]) -> None:
        app_id = fields.get("app_id")
        if app_id != self._app_id:
            raise NotificationRejected(
                f"alipay: the notification is for app_id {_shown(app_id)}, not {self._app_id}"
            )
        if self._seller_id is not None and fields.get("seller_id") != self._seller_id:
            raise NotificationRejected(
                f"alipay: the notification is for seller_id {_shown(fields.get('seller_id'))}, "
                f"not {self._seller_id}"
            )

    def _notification(self, fields: dict[str, str], body: bytes) -> Notification:
        """Build the Notification from verified fields (hot path: no re-validation)."""
        get = fields.get
        notify_id = get("notify_id")
        out_trade_no = get("out_trade_no")
        if not notify_id or not out_trade_no:
            raise NotificationRejected(
                "alipay: the notification lacks notify_id or out_trade_no",
                code=ErrorCode.INVALID_REQUEST,
            )
        _check_identifiers(fields, "notification")
        kinds = _NOTIFY_KINDS.get(get("trade_status", ""))
        if kinds is None:
            raise NotificationRejected(
                f"alipay: unknown trade_status {_shown(get('trade_status'))}",
                code=ErrorCode.INVALID_REQUEST,
            )
        amount = _cny(get("total_amount", ""), self._max_minor)
        if not amount.minor:
            # Alipay has no trade of 0.00: a signed zero is not a payment of anything.
            raise AmountError("alipay: the notification's total_amount is zero")
        refund_fee = get("refund_fee")
        kind, status = kinds[1 if refund_fee else 0]
        refunded_total = out_refund_no = None
        if refund_fee and kind is NotificationKind.REFUND:
            # refund_fee is the trade's running total, not this refund's amount.
            refunded_total = _cny(refund_fee, self._max_minor)
            out_refund_no = get("out_biz_no") or None
        when = get(_EVENT_TIME[kind]) or get("notify_time")
        try:
            occurred_at = parse_time(when) if when else None
        except ValueError:  # unreadable: not worth a resend loop
            occurred_at = None
        return Notification.model_construct(
            channel=self.name,
            kind=kind,
            out_trade_no=out_trade_no,
            channel_trade_id=get("trade_no") or None,
            amount=amount,
            status=status,
            event_key=f"alipay:{self._app_id}:{notify_id}",
            refund_amount=None,
            refunded_total=refunded_total,
            out_refund_no=out_refund_no,
            occurred_at=occurred_at,
            merchant_id=get("seller_id") or None,
            after_deadline=False,
            raw=fields,
            raw_body=body,
        )

    def ack(self, ok: bool, message: str = "") -> Ack:
        """``success`` (Alipay stops resending) or ``fail`` (it resends, up to 8 times in ~25 h)."""
        return self._acks[bool(ok)]

    def parse_return(self, params: Mapping[str, str]) -> ReturnInfo:
        """Verify the browser's return to ``return_url`` (query parameters, decoded).

        Verified like a notification. It is never proof of payment: a buyer can
        replay it, and it may arrive before (or without) the payment. Deliver on
        the notification or a query.
        """
        fields = {str(k): str(v) for k, v in params.items()}
        sign = fields.get("sign")
        if not sign:
            raise SignatureError("alipay: the return is not signed")
        sign_type = fields.get("sign_type")
        if sign_type and sign_type != self._sign_type:
            raise SignatureError(
                f"alipay: the return says sign_type {_shown(sign_type)}, "
                f"configured {self._sign_type}"
            )
        charset = fields.get("charset") or "utf-8"
        message = canonical_query(fields, exclude=("sign", "sign_type"))
        try:
            encoded = message.encode(charset)
        except (LookupError, UnicodeEncodeError):
            raise SignatureError("alipay: the return's charset cannot encode it") from None
        try:
            rsa_verify(self._verify_key, encoded, sign, self._hash)
        except SignatureError as exc:
            raise SignatureError(f"alipay: return {exc.message}") from None
        self._check_ours(fields)
        out_trade_no = fields.get("out_trade_no")
        if not out_trade_no:
            raise NotificationRejected(
                "alipay: the return lacks out_trade_no", code=ErrorCode.INVALID_REQUEST
            )
        _check_identifiers(fields, "return")
        return ReturnInfo(
            channel=self.name,
            out_trade_no=out_trade_no,
            channel_trade_id=fields.get("trade_no") or None,
            amount=self._optional_money(fields, "total_amount"),
            raw=fields,
        )


def _validated(name: str, config: Mapping[str, Any]) -> AlipayConfig:
    """An AlipayConfig, or a ConfigurationError naming settings (never their values)."""
    return validated(AlipayConfig, config, f"channel {name!r}")


def _check_identifiers(fields: Mapping[str, str], what: str) -> None:
    """Refuse an identifier outside its grammar (absent or empty ones pass)."""
    for name, grammar in _IDENTIFIERS:
        value = fields.get(name)
        if value and not grammar.fullmatch(value):
            raise NotificationRejected(
                f"alipay: the {what}'s {name} is not a valid identifier "
                f"({len(value)} characters: {_shown(value)})",
                code=ErrorCode.INVALID_REQUEST,
            )


def _royalty_type(kind: ReceiverKind) -> str:
    found = _ROYALTY_TYPES.get(kind)
    if found is None:
        raise InvalidRequestError(f"alipay royalty takes no {kind.value} receivers")
    return found


def _request_no(value: object) -> str:
    """``out_request_no`` / ``out_biz_no``: 1-32 letters, digits or ``_`` (Alipay's rule)."""
    if not isinstance(value, str) or not _REQUEST_NO.fullmatch(value):
        raise InvalidRequestError("request number: must be 1-32 ASCII letters, digits or '_'")
    return value


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@functools.lru_cache(maxsize=1024)
def _cny(text: str, max_minor: int) -> Money:
    """:meth:`Money.parse` in CNY, remembered: a card shop sells a handful of
    denominations, so the same few amount strings come back all day. Errors
    are not cached (they raise)."""
    return Money.parse(text, "CNY", max_minor=max_minor)
