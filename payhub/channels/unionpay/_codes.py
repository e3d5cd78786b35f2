"""UnionPay ACP ``respCode`` values and what payhub makes of them.

One table serves the code (which error to raise, whether a retry can help)
and the documentation (docs/channels/unionpay.md lists the same rows; a test
keeps the two in step). A code missing from the table is kept as the channel's
code on a non-retryable :class:`~payhub.errors.ChannelError` of
``ErrorCode.CHANNEL_ERROR``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from payhub.errors import ErrorCode

__all__ = ["RESP_CODES", "SUCCESS", "UNKNOWN_STATE", "RespCode", "resp_code"]

SUCCESS: Final = "00"
#: "state unknown": the trade may or may not have happened; query again later.
UNKNOWN_STATE: Final = frozenset({"03", "04", "05"})


@dataclass(frozen=True)
class RespCode:
    """One row of the table: the ACP code, its meaning, payhub's unified code."""

    code: str
    meaning: str  #: what ACP 5.1.0 says the code means (in English)
    error: ErrorCode | None  #: None for success
    retryable: bool

    @property
    def is_success(self) -> bool:
        return self.error is None

    @property
    def is_unknown_state(self) -> bool:
        return self.code in UNKNOWN_STATE


def _rows(*rows: tuple[str, str, ErrorCode | None, bool]) -> Mapping[str, RespCode]:
    return MappingProxyType({code: RespCode(code, m, e, r) for code, m, e, r in rows})


_E = ErrorCode

#: respCode → unified code and retryable flag. ``00`` is success; ``03``/``04``/
#: ``05`` leave the trade's state unknown (query it, backing off); ``01``,
#: ``02`` and ``06`` are system-side failures a retry may cure; ``1x`` are
#: malformed requests; ``3x`` business refusals; ``6x`` the buyer's card.
RESP_CODES: Final[Mapping[str, RespCode]] = _rows(
    ("00", "success", None, False),
    ("01", "transaction failed (system error; ask 95516)", _E.CHANNEL_UNAVAILABLE, True),
    ("02", "system not open or temporarily closed", _E.CHANNEL_UNAVAILABLE, True),
    ("03", "communication timed out: query the trade", _E.TIMEOUT, True),
    ("04", "trade state unknown: query the trade", _E.TIMEOUT, True),
    ("05", "accepted, result not known yet: query the trade later", _E.TIMEOUT, True),
    ("06", "system busy", _E.CHANNEL_UNAVAILABLE, True),
    ("10", "malformed message", _E.INVALID_REQUEST, False),
    ("11", "signature verification failed at UnionPay (certificate?)", _E.INVALID_REQUEST, False),
    ("12", "duplicate transaction: the orderId was used", _E.ORDER_NUMBER_USED, False),
    ("13", "a required field is missing", _E.INVALID_REQUEST, False),
    ("14", "malformed batch file", _E.INVALID_REQUEST, False),
    ("30", "transaction declined: try another card", _E.BUYER_ERROR, False),
    ("31", "merchant status incorrect", _E.PERMISSION_DENIED, False),
    ("32", "no permission for this transaction", _E.PERMISSION_DENIED, False),
    ("33", "amount exceeds the limit", _E.INVALID_AMOUNT, False),
    ("34", "no such transaction", _E.TRADE_NOT_FOUND, False),
    ("35", "original transaction missing or in the wrong state", _E.TRADE_NOT_FOUND, False),
    ("36", "does not match the original transaction", _E.INVALID_REQUEST, False),
    ("37", "too many queries or too frequent", _E.RATE_LIMITED, True),
    ("38", "refused by UnionPay risk control", _E.CHANNEL_ERROR, False),
    ("39", "outside the accepted time window (undo after cut-off?)", _E.CHANNEL_ERROR, False),
    ("60", "declined by the issuing bank", _E.BUYER_ERROR, False),
    ("61", "invalid card number", _E.BUYER_ERROR, False),
    ("62", "the issuer does not support this merchant", _E.BUYER_ERROR, False),
    ("63", "card status incorrect", _E.BUYER_ERROR, False),
    ("64", "insufficient balance on the card", _E.BUYER_ERROR, False),
    ("65", "wrong PIN, expiry date or CVN2", _E.BUYER_ERROR, False),
    ("66", "cardholder identity or phone number wrong", _E.BUYER_ERROR, False),
    ("67", "too many PIN attempts", _E.BUYER_ERROR, False),
    ("68", "the card does not support this service", _E.BUYER_ERROR, False),
    ("69", "the buyer's input timed out", _E.BUYER_ERROR, False),
    ("71", "one-time password or SMS code wrong", _E.BUYER_ERROR, False),
    ("99", "general error", _E.CHANNEL_ERROR, False),
)

_UNLISTED = RespCode("", "not in payhub's table", ErrorCode.CHANNEL_ERROR, False)


def resp_code(code: str) -> RespCode:
    """The table row of ``code``; an unlisted code is a non-retryable channel error."""
    row = RESP_CODES.get(code)
    if row is None:
        return RespCode(code, _UNLISTED.meaning, _UNLISTED.error, _UNLISTED.retryable)
    return row
