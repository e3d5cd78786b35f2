"""The UnionPay ACP 5.1.0 channel (online gateway, ``signMethod=01``).

Every operation is a sans-I/O flow (see :mod:`payhub.channels._base`); the
browser consume needs no I/O and returns at once. The flows never sleep: a
query that finds the trade's state unknown (``03``/``04``/``05``) returns
``PENDING`` with the code in ``raw``, and :meth:`UnionPayChannel.query_until_final`
repeats the call on the back-off schedule :data:`QUERY_BACKOFF`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import IO, Any, ClassVar, Final, Self, TypeVar
from urllib.parse import unquote_plus, urlencode

import httpx
from cryptography import x509
from pydantic import ValidationError

from payhub.channels._base import Channel, Flow
from payhub.channels._bills import BillLine, BillStream
from payhub.channels._splitting import NoSplits
from payhub.channels.unionpay._bill import decode_file_content, iter_zm_bill, parse_zm_bill
from payhub.channels.unionpay._codes import RESP_CODES, SUCCESS, UNKNOWN_STATE, resp_code
from payhub.channels.unionpay._config import UnionPayConfig, validate_config
from payhub.channels.unionpay._crypto import AcpSigner, AcpVerifier
from payhub.channels.unionpay._form import render_form
from payhub.channels.unionpay._grammar import parse_acp_body
from payhub.errors import (
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
)
from payhub.money import Money
from payhub.signing import load_certificate, load_pkcs12
from payhub.tz import SHANGHAI

__all__ = ["QUERY_BACKOFF", "SHANGHAI", "UnionPayChannel"]

logger = logging.getLogger("payhub.channels.unionpay")

#: Seconds to wait before each repeated query while the state is unknown (ACP's advice).
QUERY_BACKOFF: Final[tuple[float, ...]] = (1, 2, 4, 8, 16, 32)

VERSION: Final = "5.1.0"
CURRENCY_CODE: Final = "156"  # CNY
PATH_FRONT: Final = "/gateway/api/frontTransReq.do"
PATH_APP: Final = "/gateway/api/appTransReq.do"
PATH_BACK: Final = "/gateway/api/backTransReq.do"
PATH_QUERY: Final = "/gateway/api/queryTrans.do"

#: ACP ``orderId``: 8-40 ASCII letters or digits (no ``-`` or ``_``).
_ORDER_ID_RE: Final = re.compile(r"[0-9A-Za-z]{8,40}", re.ASCII)
#: ACP ``queryId`` / ``origQryId``: UnionPay's trade number, up to 21 letters or digits.
_QUERY_ID_RE: Final = re.compile(r"[0-9A-Za-z]{1,21}", re.ASCII)
_TXN_TIME_RE: Final = re.compile(r"[0-9]{14}", re.ASCII)
_TXN_TIME_FORMAT: Final = "%Y%m%d%H%M%S"
_MAX_TXN_AMT: Final = 999_999_999_999  # txnAmt is at most 12 digits of fen
_REMEMBERED_TXN_TIMES: Final = 10_000
_FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded;charset=UTF-8"

_R = TypeVar("_R", PaymentQueryResult, RefundResult)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class UnionPayChannel(Channel, NoSplits):
    """One UnionPay merchant account (``merId``).

    >>> channel = UnionPayChannel(config, name="unionpay")  # doctest: +SKIP
    >>> hub = PayHub(channels=[channel])  # doctest: +SKIP

    ``clock`` (returning an aware ``datetime``) decides ``txnTime`` and the
    moment certificates must be valid at; tests inject a fixed one.
    """

    kind: ClassVar[str] = "unionpay"
    methods: ClassVar[frozenset[PayMethod]] = frozenset(
        {PayMethod.PAGE, PayMethod.WAP, PayMethod.APP}
    )
    currencies: frozenset[str] = frozenset({"CNY"})

    def __init__(
        self,
        config: UnionPayConfig | Mapping[str, Any],
        *,
        name: str = "unionpay",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(name)
        self.config = validate_config(config)
        self._clock = clock or _utc_now
        password = self.config.sign_cert_password.get() or None
        key, certificate, _ = load_pkcs12(self.config.sign_cert.get(), password)
        self._signer = AcpSigner(key, certificate)
        self._verifier = AcpVerifier(
            root=_trust_anchor(self.config.root_cert, "root_cert"),
            middle=_trust_anchor(self.config.middle_cert, "middle_cert"),
            expected_cn=self.config.expected_cn,
            clock=self._now,
            cache_size=self.config.cert_cache_size,
        )
        self._txn_times: OrderedDict[str, str] = OrderedDict()
        self._txn_lock = threading.Lock()

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> Self:
        return cls(validate_config(config), name=name)

    def max_amount_minor(self) -> int:
        """``txnAmt`` is at most 12 digits of fen: 999,999,999,999."""
        return _MAX_TXN_AMT

    def order_number_problem(self, out_trade_no: str) -> str | None:
        """ACP's ``orderId`` rule: 8-40 ASCII letters or digits, no ``-`` or ``_``."""
        if _ORDER_ID_RE.fullmatch(out_trade_no) is None:
            return (
                f"{self.name!r} needs an order number (orderId) of 8-40 ASCII letters "
                "or digits, without '-' or '_'"
            )
        return None

    @property
    def cert_id(self) -> str:
        """``certId``: the serial number of the merchant signing certificate, in decimal."""
        return self._signer.cert_id

    @property
    def verifier(self) -> AcpVerifier:
        return self._verifier

    # -- payments -----------------------------------------------------------

    def pay(self, request: PaymentRequest) -> Flow[PaymentResult]:
        """Browser consume (PAGE: channelType 07, WAP: 08) or app consume (APP → ``tn``)."""
        if not self.supports(request.method, request.amount.currency):
            raise InvalidRequestError(
                f"unionpay takes {', '.join(sorted(m.value for m in self.methods))} in CNY, "
                f"not {request.method.value} in {request.amount.currency}"
            )
        order_id = _order_id(request.out_trade_no, "out_trade_no")
        mobile = request.method in (PayMethod.WAP, PayMethod.APP)
        fields = self._fields("01", "01", "000201", order_id, channel_type="08" if mobile else "07")
        fields |= {
            "txnAmt": _txn_amt(request.amount),
            "currencyCode": CURRENCY_CODE,
            "backUrl": self._back_url(request.notify_url),
        }
        if request.expires_at is not None:
            fields["payTimeout"] = request.expires_at.astimezone(SHANGHAI).strftime(
                _TXN_TIME_FORMAT
            )
        self._remember_txn_time(order_id, fields["txnTime"])
        if request.method is PayMethod.APP:
            return self._app_pay(request, fields)
        fields["frontUrl"] = request.return_url or self.config.front_url or ""
        return self._front_pay(request, self._signer.sign(fields))

    def _front_pay(self, request: PaymentRequest, signed: dict[str, str]) -> Flow[PaymentResult]:
        action = self.config.gateway + PATH_FRONT
        return PaymentResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            kind=ResultKind.FORM,
            form_html=render_form(action, signed),
            raw={"action": action, "fields": signed},
            channel_context={"txnTime": signed["txnTime"]},
        )
        yield  # a flow that needs no I/O: this makes the function a generator

    def _app_pay(self, request: PaymentRequest, fields: dict[str, str]) -> Flow[PaymentResult]:
        signed = self._signer.sign(fields)
        answer = yield from self._exchange(PATH_APP, signed, "app consume")
        if answer["respCode"] != SUCCESS:
            raise self._error(answer, "app consume")
        tn = answer.get("tn", "")
        if not tn:
            raise ProtocolError("unionpay app consume: the answer has no tn")
        return PaymentResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            kind=ResultKind.APP,
            app_params={"tn": tn},
            raw={"fields": signed, "answer": answer},
            channel_context={"txnTime": signed["txnTime"]},
        )

    def query(
        self,
        out_trade_no: str,
        *,
        context: Mapping[str, str] | None = None,
        txn_time: str | datetime | None = None,
    ) -> Flow[PaymentQueryResult]:
        """Query a consume by ``orderId``; ``origRespCode`` is the trade's result.

        ACP identifies the trade by ``orderId`` *and the original* ``txnTime``:
        ``txn_time`` when given, else ``context["txnTime"]`` (the
        ``PaymentResult.channel_context`` of ``pay``, which the hub passes from
        its store), else the time remembered by this process's ``pay``, else now.
        """
        order_id = _order_id(out_trade_no, "out_trade_no")
        if txn_time is None and context:
            txn_time = context.get("txnTime")
        fields = self._query_fields(order_id, txn_time)
        return self._query(out_trade_no, fields)

    def _query(self, out_trade_no: str, fields: dict[str, str]) -> Flow[PaymentQueryResult]:
        answer = yield from self._exchange(PATH_QUERY, self._signer.sign(fields), "query")
        code = answer["respCode"]
        if code in UNKNOWN_STATE:
            return self._query_result(out_trade_no, PaymentStatus.PENDING, answer)
        if code != SUCCESS:
            raise self._error(answer, "query")
        orig = answer.get("origRespCode", "")
        if not orig:
            raise ProtocolError("unionpay query: the answer has no origRespCode")
        if orig == SUCCESS:
            status = PaymentStatus.PAID
        elif orig in RESP_CODES and orig not in UNKNOWN_STATE:
            status = PaymentStatus.FAILED
        else:  # unknown state, or a code payhub does not know: not final
            status = PaymentStatus.PENDING
        return self._query_result(out_trade_no, status, answer)

    def _query_result(
        self, out_trade_no: str, status: PaymentStatus, answer: dict[str, str]
    ) -> PaymentQueryResult:
        amount = answer.get("txnAmt", "")
        paid = status is PaymentStatus.PAID and bool(answer.get("txnTime"))
        return PaymentQueryResult(
            channel=self.name,
            out_trade_no=out_trade_no,
            status=status,
            amount=_money(amount) if amount else None,
            channel_trade_id=answer.get("queryId") or None,
            paid_at=_parse_txn_time(answer["txnTime"]) if paid else None,
            raw=answer,
        )

    def close(self, out_trade_no: str) -> Flow[None]:
        """UnionPay has no "close": raises :class:`InvalidRequestError` at once."""
        raise InvalidRequestError(
            "unionpay has no close operation: an unpaid trade expires at its payTimeout; "
            "cancel a paid one the same day with undo(), or refund() it later"
        )

    # -- refunds and undo -----------------------------------------------------

    def refund(
        self,
        request: RefundRequest,
        *,
        orig_qry_id: str | None = None,
        orig_txn_time: str | datetime | None = None,
    ) -> Flow[RefundResult]:
        """Refund (txnType 04) with its own ``orderId`` = ``out_refund_no``.

        ACP needs the payment's ``queryId`` (``origQryId``). Without
        ``orig_qry_id`` the flow first queries the payment (see :meth:`query`
        for ``orig_txn_time``; without it, ``request.payment_context["txnTime"]``
        is used) and refunds only a PAID one. A ``00`` answer
        means *accepted*: the result is PENDING until the notification or
        :meth:`refund_query` says otherwise.
        """
        _order_id(request.out_trade_no, "out_trade_no")
        refund_id = _order_id(request.out_refund_no, "out_refund_no")
        if request.total is not None and request.amount > request.total:
            raise InvalidRequestError(
                "unionpay refund: the amount exceeds the payment's total",
                code=ErrorCode.REFUND_EXCEEDS_PAID,
            )
        fields = self._fields("04", "00", "000201", refund_id, channel_type="07")
        fields |= {
            "txnAmt": _txn_amt(request.amount),
            "currencyCode": CURRENCY_CODE,
            "backUrl": self._back_url(request.notify_url),
        }
        fixed = request.refund_context.get("txnTime")
        if fixed is not None:
            # The hub fixed it before the first send: a retry is the same transaction.
            fields["txnTime"] = self._original_txn_time(refund_id, fixed) or fixed
        self._remember_txn_time(refund_id, fields["txnTime"])
        lookup = None
        if orig_qry_id is None:
            if orig_txn_time is None:
                orig_txn_time = request.payment_context.get("txnTime")
            lookup = self._query_fields(request.out_trade_no, orig_txn_time)
        return self._back_trans(
            "refund",
            out_trade_no=request.out_trade_no,
            out_refund_no=refund_id,
            amount=request.amount,
            fields=fields,
            orig_qry_id=orig_qry_id,
            lookup=lookup,
        )

    def undo(
        self,
        out_trade_no: str,
        orig_qry_id: str,
        amount: Money,
        *,
        out_undo_no: str,
        notify_url: str | None = None,
    ) -> Flow[RefundResult]:
        """Cancel a consume the same day (txnType 31): the whole ``amount``, by ``queryId``.

        ``out_undo_no`` is the undo's own ``orderId`` (it is reported as the
        result's ``out_refund_no``). After the day's cut-off UnionPay refuses
        (respCode 39 or similar): refund instead.
        """
        _order_id(out_trade_no, "out_trade_no")
        undo_id = _order_id(out_undo_no, "out_undo_no")
        if not orig_qry_id:
            raise InvalidRequestError("unionpay undo: orig_qry_id is required")
        fields = self._fields("31", "00", "000201", undo_id, channel_type="07")
        fields |= {
            "txnAmt": _txn_amt(amount),
            "currencyCode": CURRENCY_CODE,
            "backUrl": self._back_url(notify_url),
        }
        self._remember_txn_time(undo_id, fields["txnTime"])
        return self._back_trans(
            "undo",
            out_trade_no=out_trade_no,
            out_refund_no=undo_id,
            amount=amount,
            fields=fields,
            orig_qry_id=orig_qry_id,
            lookup=None,
        )

    def _back_trans(
        self,
        what: str,
        *,
        out_trade_no: str,
        out_refund_no: str,
        amount: Money,
        fields: dict[str, str],
        orig_qry_id: str | None,
        lookup: dict[str, str] | None,
    ) -> Flow[RefundResult]:
        if orig_qry_id is None:
            payment = yield from self._query(out_trade_no, lookup or {})
            if payment.status is not PaymentStatus.PAID or not payment.channel_trade_id:
                raise InvalidRequestError(
                    f"unionpay {what}: trade {out_trade_no} is {payment.status.value}, not paid"
                )
            orig_qry_id = payment.channel_trade_id
        # txnTime is taken when the request is built; the lookup above takes milliseconds.
        answer = yield from self._exchange(
            PATH_BACK, self._signer.sign(fields | {"origQryId": orig_qry_id}), what
        )
        code = answer["respCode"]
        if code != SUCCESS and code not in UNKNOWN_STATE:
            raise self._error(answer, what)
        return RefundResult(
            channel=self.name,
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            status=RefundStatus.PENDING,  # 00 = accepted; the result comes later
            amount=amount,
            channel_trade_id=orig_qry_id,
            channel_refund_id=answer.get("queryId") or None,
            raw=answer,
        )

    def refund_query(
        self, request: RefundQueryRequest, *, txn_time: str | datetime | None = None
    ) -> Flow[RefundResult]:
        """Query a refund (or undo) by its own ``orderId``; ``txn_time`` as in :meth:`query`.

        Without ``txn_time``, ``request.refund_context["txnTime"]`` (which a hub
        with a store keeps), then the one this process remembers, then now.
        """
        _order_id(request.out_trade_no, "out_trade_no")
        refund_id = _order_id(request.out_refund_no, "out_refund_no")
        if txn_time is None:
            txn_time = request.refund_context.get("txnTime")
        return self._refund_query(request, self._query_fields(refund_id, txn_time))

    def refund_context(self, request: RefundRequest) -> dict[str, str]:
        """``{"txnTime": …}``, now: ACP finds the refund again only by its
        ``orderId`` *and* this ``txnTime``, and a resend with the same
        ``orderId`` and ``txnTime`` is the same transaction."""
        return {"txnTime": self._now().astimezone(SHANGHAI).strftime(_TXN_TIME_FORMAT)}

    def _refund_query(
        self, request: RefundQueryRequest, fields: dict[str, str]
    ) -> Flow[RefundResult]:
        answer = yield from self._exchange(PATH_QUERY, self._signer.sign(fields), "refund query")
        code, orig = answer["respCode"], answer.get("origRespCode", "")
        if code in UNKNOWN_STATE:
            status = RefundStatus.PENDING
        elif code == "34":
            status = RefundStatus.NOT_FOUND
        elif code != SUCCESS:
            raise self._error(answer, "refund query")
        elif orig == SUCCESS:
            status = RefundStatus.SUCCEEDED
        elif orig in RESP_CODES and orig not in UNKNOWN_STATE:
            status = RefundStatus.FAILED
        else:
            status = RefundStatus.PENDING
        amount = answer.get("txnAmt", "")
        return RefundResult(
            channel=self.name,
            out_trade_no=request.out_trade_no,
            out_refund_no=request.out_refund_no,
            status=status,
            amount=_money(amount) if amount else None,
            channel_trade_id=answer.get("origQryId") or None,
            channel_refund_id=answer.get("queryId") or None,
            raw=answer,
        )

    # -- waiting out unknown states (the flows never sleep) -------------------

    @staticmethod
    def is_state_unknown(result: PaymentQueryResult | RefundResult) -> bool:
        """True if UnionPay answered ``03``/``04``/``05`` (for the query or the trade)."""
        return (
            result.raw.get("respCode") in UNKNOWN_STATE
            or result.raw.get("origRespCode") in UNKNOWN_STATE
        )

    def query_until_final(
        self,
        call: Callable[[], _R],
        *,
        schedule: Sequence[float] = QUERY_BACKOFF,
        sleep: Callable[[float], object] = time.sleep,
    ) -> _R:
        """Repeat ``call`` while the answer's state is unknown, sleeping ``schedule[i]``
        seconds before the i-th repetition; return the last answer.

        >>> channel.query_until_final(lambda: hub.query("unionpay", "ORDER0001"))
        ... # doctest: +SKIP
        """
        result = call()
        for delay in schedule:
            if not self.is_state_unknown(result):
                break
            sleep(delay)
            result = call()
        return result

    async def aquery_until_final(
        self,
        call: Callable[[], Awaitable[_R]],
        *,
        schedule: Sequence[float] = QUERY_BACKOFF,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> _R:
        """:meth:`query_until_final` for :class:`~payhub.client.AsyncPayHub`."""
        result = await call()
        for delay in schedule:
            if not self.is_state_unknown(result):
                break
            await sleep(delay)
            result = await call()
        return result

    # -- notifications and returns (pure) -------------------------------------

    def parse_notification(self, headers: httpx.Headers, body: bytes) -> Notification:
        """Verify a ``backUrl`` notification (form POST, UTF-8) and parse it."""
        fields = _parse_form(body)
        self._verifier.verify(fields)
        self._check_merchant(fields, "notification")
        try:
            return self._notification(fields, bytes(body))
        except ValidationError:
            raise ProtocolError("unionpay notification: fields of the wrong shape") from None

    def _notification(self, fields: dict[str, str], body: bytes) -> Notification:
        txn_type, code = _required(fields, "txnType"), _required(fields, "respCode")
        order_id = _identifier(fields, "orderId", _ORDER_ID_RE)
        query_id = _identifier(fields, "queryId", _QUERY_ID_RE)
        if "origQryId" in fields:
            _identifier(fields, "origQryId", _QUERY_ID_RE)
        if fields.get("currencyCode", CURRENCY_CODE) != CURRENCY_CODE:
            raise NotificationRejected("unionpay notification: currency is not CNY (156)")
        amount = _money(_required(fields, "txnAmt"))
        if amount.minor == 0:
            # ACP amounts are 1 fen or more: a zero payment or refund proves nothing.
            raise ProtocolError("unionpay notification: txnAmt is 0; no trade is for nothing")
        occurred_at = _parse_txn_time(_required(fields, "txnTime"))
        if txn_type not in ("01", "04", "31"):
            raise NotificationRejected(f"unionpay notification: txnType {txn_type!r} not handled")
        if code != SUCCESS and (code in UNKNOWN_STATE or code not in RESP_CODES):
            raise NotificationRejected(
                f"unionpay notification: respCode {code!r} is not a final result; query the trade"
            )
        common: dict[str, Any] = {
            "channel": self.name,
            "amount": amount,
            "event_key": f"unionpay:{fields['merId']}:{query_id}:{txn_type}",
            "occurred_at": occurred_at,
            "merchant_id": fields["merId"],
            "raw": fields,
            "raw_body": body,
            "out_trade_no": order_id,
        }
        if txn_type == "01":
            ok = code == SUCCESS
            return Notification(
                kind=NotificationKind.PAYMENT if ok else NotificationKind.CLOSED,
                status=PaymentStatus.PAID if ok else PaymentStatus.FAILED,
                channel_trade_id=query_id,
                **common,
            )
        # A refund (04) or undo (31) notification names its own orderId and the
        # payment's queryId (origQryId); it does not carry the payment's orderId.
        if code != SUCCESS:
            kind, status = NotificationKind.REFUND_FAILED, PaymentStatus.PAID
        else:
            kind = NotificationKind.REFUND
            status = PaymentStatus.REFUNDED if txn_type == "04" else PaymentStatus.CLOSED
        return Notification(
            kind=kind,
            status=status,
            channel_trade_id=fields.get("origQryId") or None,
            refund_amount=amount,
            out_refund_no=order_id,
            **{**common, "amount": None},  # the payment's total is not in the message
        )

    def ack(self, ok: bool, message: str = "") -> Ack:
        """HTTP 200 acknowledges; anything else makes UnionPay send the notification again."""
        if ok:
            return Ack(status_code=200, body=b"ok", content_type="text/plain", ok=True)
        return Ack(status_code=500, body=b"fail", content_type="text/plain", ok=False)

    def parse_return(self, params: Mapping[str, str]) -> ReturnInfo:
        """Verify the browser return to ``frontUrl`` (signed like a notification)."""
        fields = dict(params)
        self._verifier.verify(fields)
        self._check_merchant(fields, "return")
        amount = fields.get("txnAmt", "")
        return ReturnInfo(
            channel=self.name,
            out_trade_no=_required(fields, "orderId"),
            channel_trade_id=fields.get("queryId") or None,
            amount=_money(amount) if amount else None,
            raw=fields,
        )

    # -- the wire -------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.utcoffset() is None:
            raise ConfigurationError("unionpay: the clock must return an aware datetime")
        return now

    def _fields(
        self, txn_type: str, sub_type: str, biz_type: str, order_id: str, *, channel_type: str
    ) -> dict[str, str]:
        return {
            "version": VERSION,
            "encoding": "UTF-8",
            "signMethod": "01",
            "txnType": txn_type,
            "txnSubType": sub_type,
            "bizType": biz_type,
            "channelType": channel_type,
            "accessType": "0",
            "merId": self.config.mer_id,
            "orderId": order_id,
            "txnTime": self._now().astimezone(SHANGHAI).strftime(_TXN_TIME_FORMAT),
        }

    def _query_fields(self, order_id: str, txn_time: str | datetime | None) -> dict[str, str]:
        fields = self._fields("00", "00", "000000", order_id, channel_type="")
        fields["txnTime"] = self._original_txn_time(order_id, txn_time) or fields["txnTime"]
        return fields

    def _back_url(self, override: str | None) -> str:
        url = override or self.config.back_url
        if not url:
            raise InvalidRequestError(
                "unionpay needs a backUrl: set back_url in the configuration or notify_url"
            )
        return url

    def _remember_txn_time(self, order_id: str, txn_time: str) -> None:
        with self._txn_lock:
            self._txn_times[order_id] = txn_time
            self._txn_times.move_to_end(order_id)
            while len(self._txn_times) > _REMEMBERED_TXN_TIMES:
                self._txn_times.popitem(last=False)

    def _original_txn_time(self, order_id: str, given: str | datetime | None) -> str | None:
        if isinstance(given, datetime):
            if given.utcoffset() is None:
                raise InvalidRequestError("txn_time must be timezone-aware")
            return given.astimezone(SHANGHAI).strftime(_TXN_TIME_FORMAT)
        if given is not None:
            if _TXN_TIME_RE.fullmatch(given) is None:
                raise InvalidRequestError("txn_time must be 14 digits, yyyyMMddHHmmss")
            return given
        with self._txn_lock:
            remembered = self._txn_times.get(order_id)
        if remembered is None:
            logger.info("unionpay: txnTime of %s unknown to this process; using now", order_id)
        return remembered

    # -- the reconciliation file --------------------------------------------------

    def download_bill(self, bill_date: date) -> Flow[list[BillRecord]]:
        """The day's ZM reconciliation file (``fileTransfer``, txnType 76), parsed."""
        content = yield from self._bill_zip(bill_date)
        return parse_zm_bill(
            content, channel=self.name, bill_date=bill_date, max_minor=_MAX_TXN_AMT
        )

    def stream_bill(self, bill_date: date) -> Flow[BillStream]:
        """The day's ZM file as a :class:`BillStream`: the zip kept in a temporary
        file, the ZM member read one line at a time."""
        content = yield from self._bill_zip(bill_date)

        def read(file: IO[bytes]) -> Iterator[BillLine]:
            return iter_zm_bill(file, bill_date=bill_date, max_minor=_MAX_TXN_AMT)

        return BillStream.spool(content, read, channel=self.name, bill_date=bill_date)

    def _bill_zip(self, bill_date: date) -> Flow[bytes]:
        """``fileTransfer`` of the settlement day ``bill_date`` (``settleDate`` MMDD):
        ``fileContent`` is the zip, DEFLATE-compressed (zlib) and base64-encoded."""
        if not isinstance(bill_date, date) or isinstance(bill_date, datetime):
            raise InvalidRequestError("bill_date must be a date")
        fields = {
            "version": VERSION,
            "encoding": "UTF-8",
            "signMethod": "01",
            "txnType": "76",
            "txnSubType": "01",
            "bizType": "000000",
            "accessType": "0",
            "fileType": "00",
            "merId": self.config.mer_id,
            "settleDate": f"{bill_date:%m%d}",
            "txnTime": self._now().astimezone(SHANGHAI).strftime(_TXN_TIME_FORMAT),
        }
        response = yield httpx.Request(
            "POST",
            self.config.file_transfer_url,
            content=urlencode(sorted(self._signer.sign(fields).items())).encode("ascii"),
            headers={"Content-Type": _FORM_CONTENT_TYPE},
        )
        answer = self._answer(response, fields, "fileTransfer")
        if answer["respCode"] != SUCCESS:
            raise self._error(answer, "fileTransfer")
        return decode_file_content(answer.get("fileContent", ""))

    def _exchange(self, path: str, signed: dict[str, str], what: str) -> Flow[dict[str, str]]:
        """POST signed fields as a form; the answer, parsed and verified."""
        response = yield httpx.Request(
            "POST",
            self.config.gateway + path,
            content=urlencode(sorted(signed.items())).encode("ascii"),
            headers={"Content-Type": _FORM_CONTENT_TYPE},
        )
        return self._answer(response, signed, what)

    def _answer(
        self, response: httpx.Response, sent: Mapping[str, str], what: str
    ) -> dict[str, str]:
        """Parse and verify a synchronous answer; check it is about what was sent."""
        status = response.status_code
        if status >= 500:
            raise ChannelError(
                f"unionpay {what}: HTTP {status}",
                channel=self.name,
                code=ErrorCode.CHANNEL_UNAVAILABLE,
                http_status=status,
            )
        if status != 200:
            raise ProtocolError(f"unionpay {what}: unexpected HTTP {status}")
        body = response.content
        if not body.strip() or body.lstrip().startswith(b"<"):
            raise ProtocolError(f"unionpay {what}: the answer is empty or an HTML page")
        fields = parse_acp_body(body)
        if not fields.get("respCode"):
            raise ProtocolError(f"unionpay {what}: the answer has no respCode")
        if not fields.get("signature"):
            raise _unsigned(what, fields)
        self._verifier.verify(fields)
        if fields.get("merId", sent["merId"]) != sent["merId"]:
            raise ProtocolError(f"unionpay {what}: the answer names another merchant")
        if fields.get("orderId", sent.get("orderId")) != sent.get("orderId"):
            raise ProtocolError(f"unionpay {what}: the answer names another orderId")
        for name in ("queryId", "origQryId"):
            if fields.get(name):  # what the hub stores as the trade's or refund's id
                _identifier(fields, name, _QUERY_ID_RE)
        return fields

    def _error(self, answer: Mapping[str, str], what: str) -> ChannelError:
        code = answer.get("respCode", "")
        row = resp_code(code)
        return ChannelError(
            f"unionpay {what}: respCode {code} ({row.meaning})",
            channel=self.name,
            channel_code=code,
            channel_message=answer.get("respMsg") or None,
            code=row.error or ErrorCode.CHANNEL_ERROR,
            retryable=row.retryable,
            request_id=answer.get("queryId") or None,
        )

    def _check_merchant(self, fields: Mapping[str, str], what: str) -> None:
        if fields.get("merId") != self.config.mer_id:
            raise NotificationRejected(f"unionpay {what}: merId is not this merchant's")


def _unsigned(what: str, fields: Mapping[str, str]) -> SignatureError:
    """An unsigned answer proves nothing; its code is shown only to help diagnosis."""
    code = fields.get("respCode", "")[:8]
    message = fields.get("respMsg", "")[:80]
    return SignatureError(
        f"unionpay {what}: the answer is unsigned (unverified respCode {code!r}, "
        f"respMsg {message!r})"
    )


def _trust_anchor(pem: bytes, setting: str) -> x509.Certificate:
    try:
        return load_certificate(pem)
    except ConfigurationError:
        raise ConfigurationError(f"unionpay {setting}: not a readable X.509 certificate") from None


def _order_id(value: str, name: str) -> str:
    if not isinstance(value, str) or _ORDER_ID_RE.fullmatch(value) is None:
        raise InvalidRequestError(f"unionpay {name} (orderId) must be 8-40 ASCII letters or digits")
    return value


def _txn_amt(amount: Money) -> str:
    if amount.currency != "CNY":
        raise InvalidRequestError(f"unionpay takes CNY only, not {amount.currency}")
    if not 0 < amount.minor <= _MAX_TXN_AMT:
        raise InvalidRequestError("unionpay txnAmt must be 1 to 999999999999 fen")
    return str(amount.minor)


def _money(text: str) -> Money:
    return Money.parse_minor(text, "CNY", max_minor=_MAX_TXN_AMT)


def _parse_txn_time(text: str) -> datetime:
    if _TXN_TIME_RE.fullmatch(text) is None:
        raise ProtocolError("unionpay: txnTime is not yyyyMMddHHmmss")
    try:  # slicing: strptime costs more than the rest of a notification's parsing
        return datetime(
            int(text[0:4]), int(text[4:6]), int(text[6:8]),
            int(text[8:10]), int(text[10:12]), int(text[12:14]), tzinfo=SHANGHAI,
        )
    except ValueError:
        raise ProtocolError("unionpay: txnTime is not a valid date and time") from None


def _identifier(fields: Mapping[str, str], name: str, grammar: re.Pattern[str]) -> str:
    """A required identifier, checked against ACP's grammar before it goes anywhere."""
    value = _required(fields, name)
    if grammar.fullmatch(value) is None:
        raise ProtocolError(f"unionpay: {name} does not follow ACP's grammar")
    return value


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise ProtocolError(f"unionpay: the message has no {name}")
    return value


def _parse_form(body: bytes) -> dict[str, str]:
    """A form-urlencoded UTF-8 body; a repeated field is refused (which value was signed?)."""
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("unionpay notification: not a UTF-8 form body") from None
    if not text:
        raise ProtocolError("unionpay notification: empty body")
    fields: dict[str, str] = {}
    for pair in text.split("&"):
        key, eq, value = pair.partition("=")
        if not eq:
            raise ProtocolError("unionpay notification: not a UTF-8 form body")
        key, value = _form_unquote(key), _form_unquote(value)
        if key in fields:
            raise ProtocolError(f"unionpay notification: field {key[:40]!r} appears twice")
        fields[key] = value
    encoding = fields.get("encoding", "UTF-8").upper().replace("-", "")
    if encoding != "UTF8":
        raise ProtocolError("unionpay notification: only encoding=UTF-8 is supported")
    return fields


def _form_unquote(text: str) -> str:
    if "%" not in text and "+" not in text:
        return text  # the common case, and most of the fields: nothing to decode
    try:
        return unquote_plus(text, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ProtocolError("unionpay notification: not a UTF-8 form body") from None
