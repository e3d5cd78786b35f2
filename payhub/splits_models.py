"""Typed models of the channels' split (分账) and transfer (转账) operations.

A split moves part of a settled payment from the merchant to receivers bound
beforehand (Alipay royalty, WeChat Pay profit sharing); a transfer pays money
out of the merchant's balance to a person's account (Alipay
``alipay.fund.trans.uni.transfer``, WeChat Pay's merchant transfer bills).

Requests forbid unknown fields and are immutable; every amount is a
:class:`~payhub.money.Money` in integer minor units. Results keep what the
channel sent in ``raw``. Every money-moving request carries the shop's own
idempotency number: sending the same number again is the same operation, so an
unknown outcome is settled by a query under that number, never by a new one.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from payhub.models import PositiveMoney
from payhub.money import Money

__all__ = [
    "ReceiverBinding",
    "ReceiverKind",
    "SplitLine",
    "SplitLineResult",
    "SplitNotice",
    "SplitReceiver",
    "SplitRequest",
    "SplitResult",
    "SplitReturnRequest",
    "SplitReturnResult",
    "SplitStatus",
    "TransferRequest",
    "TransferResult",
    "TransferStatus",
]

#: The strictest grammar both channels accept for the shop's numbers
#: (Alipay ``out_request_no``: letters, digits and ``_``, at most 32 characters).
_REQUEST_NO = re.compile(r"[A-Za-z0-9_]{1,32}", re.ASCII)


def _request_no(value: str) -> str:
    if not _REQUEST_NO.fullmatch(value):
        raise ValueError("must be 1-32 ASCII letters, digits or '_'")
    return value


RequestNo = Annotated[str, AfterValidator(_request_no)]

_REQUEST = ConfigDict(extra="forbid", frozen=True)
_PARSED = ConfigDict(extra="forbid", frozen=True)


class ReceiverKind(enum.StrEnum):
    """What a receiver's ``account`` names (each channel maps it to its own word)."""

    #: Alipay ``userId`` (2088 + 12 digits) / WeChat ``MERCHANT_ID``
    USER_ID = "user_id"
    #: Alipay ``loginName`` (the login e-mail or phone number)
    LOGIN_NAME = "login_name"
    #: Alipay ``openId`` / WeChat ``PERSONAL_OPENID`` (the user's openid under the appid)
    OPENID = "openid"
    #: WeChat ``MERCHANT_ID``: another merchant number
    MERCHANT = "merchant"


class ReceiverBinding(BaseModel):
    """A receiver to bind (or unbind) before splits may go to it."""

    model_config = _REQUEST

    kind: ReceiverKind
    account: str = Field(min_length=1, max_length=64)
    #: The receiver's real name (a person) or the merchant's full name. Alipay
    #: checks it when given (required for ``loginName``); WeChat requires it for
    #: a merchant and encrypts it on the wire. Never logged.
    name: str | None = Field(default=None, max_length=1024, repr=False)
    #: WeChat ``relation_type`` (``SERVICE_PROVIDER``, ``STORE``, ``STAFF``,
    #: ``PARTNER``, ``DISTRIBUTOR``, ``USER``, ``SUPPLIER``, ``CUSTOM`` …).
    relation_type: str | None = None
    memo: str | None = Field(default=None, max_length=256)


class SplitLine(BaseModel):
    """One receiver's share of a split."""

    model_config = _REQUEST

    kind: ReceiverKind
    account: str = Field(min_length=1, max_length=64)
    amount: PositiveMoney
    description: str = Field(min_length=1, max_length=80)
    #: Checked against the account by the channel when given (never logged).
    name: str | None = Field(default=None, max_length=1024, repr=False)


class SplitReceiver(BaseModel):
    """Where a receiver of ``hub.split`` is paid at the channel: the split plan
    names receivers by ledger party, this says which account each one is."""

    model_config = _REQUEST

    kind: ReceiverKind
    account: str = Field(min_length=1, max_length=64)
    #: Checked by the channel when given (never logged nor stored).
    name: str | None = Field(default=None, max_length=1024, repr=False)


class SplitRequest(BaseModel):
    """Split a settled payment among bound receivers.

    ``out_request_no`` is Alipay's ``out_request_no`` / WeChat's ``out_order_no``.
    ``finish`` ends the payment's splitting: Alipay ``royalty_finish`` (the rest
    is settled to the merchant), WeChat ``unfreeze_unsplit``.
    """

    model_config = _REQUEST

    out_request_no: RequestNo
    #: The channel's trade id of the payment (Alipay ``trade_no``, WeChat
    #: ``transaction_id``).
    channel_trade_id: str = Field(min_length=1, max_length=64)
    lines: tuple[SplitLine, ...] = Field(min_length=1, max_length=50)
    finish: bool = False


class SplitStatus(enum.StrEnum):
    PROCESSING = "processing"  #: accepted, outcome not final: query again
    SUCCEEDED = "succeeded"  #: every line reached its receiver
    FAILED = "failed"  #: refused or closed: nothing (more) moved
    PARTIAL = "partial"  #: final, but some lines failed (their money stayed)
    NOT_FOUND = "not_found"  #: the channel knows no such request


class SplitLineResult(BaseModel):
    model_config = _PARSED

    kind: str
    account: str
    amount: Money
    status: SplitStatus
    fail_reason: str | None = None
    channel_detail_id: str | None = None


class SplitResult(BaseModel):
    model_config = _PARSED

    channel: str
    out_request_no: str
    status: SplitStatus
    channel_trade_id: str | None = None
    #: Alipay ``settle_no`` / WeChat ``order_id``
    channel_split_id: str | None = None
    lines: tuple[SplitLineResult, ...] = ()
    raw: dict[str, Any] = Field(default_factory=dict)


class SplitReturnRequest(BaseModel):
    """Take back (回退) part of a split from a merchant receiver (WeChat Pay)."""

    model_config = _REQUEST

    out_return_no: RequestNo
    out_request_no: RequestNo  #: the split's ``out_order_no``
    return_merchant: str = Field(pattern=r"^[0-9]{1,32}$")
    amount: PositiveMoney
    description: str = Field(min_length=1, max_length=80)


class SplitReturnResult(BaseModel):
    model_config = _PARSED

    channel: str
    out_return_no: str
    out_request_no: str
    status: SplitStatus
    amount: Money | None = None
    channel_return_id: str | None = None
    fail_reason: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class TransferRequest(BaseModel):
    """Pay money from the merchant's balance to a person's account.

    Alipay: ``out_biz_no``, payee by ``kind`` (``ALIPAY_USER_ID``,
    ``ALIPAY_LOGON_ID``, ``ALIPAY_OPEN_ID``); ``name`` is required with a login
    name. WeChat: ``out_bill_no``, payee by openid; ``name`` (encrypted on the
    wire) is required from 2,000 CNY on; ``scene_id`` (``transfer_scene_id``)
    and the scene's report infos are required.
    """

    model_config = _REQUEST

    out_transfer_no: RequestNo
    kind: ReceiverKind
    account: str = Field(min_length=1, max_length=64)
    amount: PositiveMoney
    remark: str = Field(min_length=1, max_length=32)
    name: str | None = Field(default=None, max_length=1024, repr=False)
    #: Alipay ``order_title``
    title: str | None = Field(default=None, max_length=128)
    #: WeChat ``transfer_scene_id`` (e.g. ``1000`` 现金营销, ``1005`` 佣金报酬)
    scene_id: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    #: WeChat ``transfer_scene_report_infos``: (info_type, info_content) pairs
    scene_report: tuple[tuple[str, str], ...] = ()
    #: WeChat ``user_recv_perception`` (what the user sees, e.g. ``现金奖励``)
    perception: str | None = None
    notify_url: str | None = None


class TransferStatus(enum.StrEnum):
    PROCESSING = "processing"  #: accepted or in progress: query again
    WAIT_USER_CONFIRM = "wait_user_confirm"  #: WeChat: the user must confirm in WeChat
    SUCCEEDED = "succeeded"  #: the money reached the payee
    FAILED = "failed"  #: refused or returned: the money is back with the merchant
    CANCELLED = "cancelled"  #: WeChat: cancelled before the user confirmed
    NOT_FOUND = "not_found"  #: the channel knows no such transfer


class TransferResult(BaseModel):
    model_config = _PARSED

    channel: str
    out_transfer_no: str
    status: TransferStatus
    amount: Money | None = None
    #: Alipay ``order_id`` / WeChat ``transfer_bill_no``
    channel_transfer_id: str | None = None
    #: WeChat ``package_info``: passed to the mini program / JSAPI confirm page
    package_info: str | None = None
    fail_reason: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class SplitNotice(BaseModel):
    """A verified notification about a split or a transfer (not a payment).

    ``kind`` ``split``: a receiver of the split ``number`` (the shop's
    out_order_no) got its money (WeChat ``PROFITSHARING``); the hub settles the
    split by query. ``transfer``: a transfer reached its final state (WeChat
    ``MCHTRANSFER.BILL.FINISHED``); ``transfer`` holds it, applied as is.
    """

    model_config = _PARSED

    channel: str
    kind: str = Field(pattern=r"^(split|transfer)$")
    number: str
    event_key: str
    channel_trade_id: str | None = None
    transfer: TransferResult | None = None
