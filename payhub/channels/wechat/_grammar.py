"""What WeChat Pay's identifiers and amounts may look like, from its APIv3 reference.

Every value a WeChat message hands to payhub (and so to the store) is held to
these before use: a NUL, a control character, whitespace or a value longer than
WeChat allows is WeChat's (or a forger's) fault, refused for good, never a
retryable error that makes WeChat resend forever.

========================  ===============================================
``out_trade_no``          6-32 of ``0-9 A-Z a-z _ - | *`` when payhub
                          creates an order; read back at 1-32 (below)
``out_refund_no``         1-64 of ``0-9 A-Z a-z _ - | * @``
``transaction_id``        1-32 letters and digits (in practice 28 digits)
``refund_id``             1-32 letters and digits (in practice 29 digits)
``mchid``, ``appid``      1-32 of ``0-9 A-Z a-z _ -``
notification ``id``       1-36 of ``0-9 A-Z a-z _ -``
payer ``openid``          1-128 of ``0-9 A-Z a-z _ -``
amounts (fen)             JSON integers up to 2**31 - 1 (:data:`MAX_MINOR`)
========================  ===============================================

An order number payhub reads back is held to WeChat's character set and
maximum length but not to its minimum of six: that minimum is a rule for
creating orders (see :func:`order_number_problem`), and refusing a genuine,
signed notification for an older, shorter number would only make WeChat
resend it for a day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from payhub.errors import PayhubError

from ._errors import shown

__all__ = [
    "MAX_MINOR",
    "OUT_REFUND_NO",
    "OUT_TRADE_NO",
    "checked_id",
    "optional_id",
    "order_number_problem",
]

#: WeChat Pay's ``amount.total`` is a 32-bit signed integer of fen: WeChat's own
#: SDK (wechatpay-java, generated from the API definition) holds it in a Java
#: ``Integer``, and no larger amount can be sent. 21,474,836.47 yuan.
MAX_MINOR: Final = 2**31 - 1

_ORDER_CHARS: Final = r"0-9A-Za-z_\-|*"
_ORDER_NEW_RE: Final = re.compile(rf"[{_ORDER_CHARS}]{{6,32}}", re.ASCII)

OUT_TRADE_NO: Final = re.compile(rf"[{_ORDER_CHARS}]{{1,32}}", re.ASCII)
OUT_REFUND_NO: Final = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}", re.ASCII)
TRANSACTION_ID: Final = re.compile(r"[0-9A-Za-z]{1,32}", re.ASCII)
REFUND_ID: Final = TRANSACTION_ID
MERCHANT_ID: Final = re.compile(r"[0-9A-Za-z_\-]{1,32}", re.ASCII)
NOTIFICATION_ID: Final = re.compile(r"[0-9A-Za-z_\-]{1,36}", re.ASCII)
OPENID: Final = re.compile(r"[0-9A-Za-z_\-]{1,128}", re.ASCII)


def order_number_problem(out_trade_no: str) -> str | None:
    """Why WeChat Pay would refuse ``out_trade_no`` for a new order, or None."""
    if _ORDER_NEW_RE.fullmatch(out_trade_no) is not None:
        return None
    if not 6 <= len(out_trade_no) <= 32:
        return (
            f"WeChat Pay order numbers are 6-32 characters; {shown(out_trade_no)} "
            f"has {len(out_trade_no)}"
        )
    return (
        f"WeChat Pay order numbers hold only ASCII letters, digits, '_', '-', '|' "
        f"and '*'; {shown(out_trade_no)} does not"
    )


def checked_id(
    data: Mapping[str, Any],
    key: str,
    grammar: re.Pattern[str],
    what: str,
    error: type[PayhubError],
) -> str:
    """``data[key]``, which must be a string matching ``grammar``; else a
    non-retryable ``error`` naming the field (the value only shortened)."""
    value = data.get(key)
    if type(value) is str and grammar.fullmatch(value) is not None:
        return value
    if value is None or value == "":
        raise error(f"wechat: {what} has no {key}", retryable=False)
    raise error(f"wechat: {what} has a malformed {key} {shown(value, 40)}", retryable=False)


def optional_id(
    data: Mapping[str, Any],
    key: str,
    grammar: re.Pattern[str],
    what: str,
    error: type[PayhubError],
) -> str | None:
    """As :func:`checked_id`, but an absent or empty value is None."""
    value = data.get(key)
    if value is None or value == "":
        return None
    return checked_id(data, key, grammar, what, error)
