"""Alipay's error codes and sub-codes, mapped to payhub's unified :class:`ErrorCode`.

Alipay answers ``code`` (``10000`` success, ``20000`` service unavailable,
``40001`` missing argument, ``40002`` invalid argument, ``40004`` business
failure, ``40006`` insufficient permissions) and, on failure, a ``sub_code``
that says what went wrong (``ACQ.TRADE_NOT_EXIST``, ``isv.invalid-signature``).
The sub-code is looked up first, then a wildcard (``isv.missing-*``), then the
code; whatever is unknown is a non-retryable ``CHANNEL_ERROR``.

This table is the one the error-code manual in ``docs/`` is generated from.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from payhub.errors import ErrorCode

__all__ = ["ALIPAY_ERROR_CODES", "SUCCESS_CODE", "map_error_code"]

SUCCESS_CODE: Final = "10000"

_E = ErrorCode

#: Alipay ``code`` / ``sub_code`` (``*`` ends a prefix) → payhub's unified code.
#: ``retryable`` follows from the unified code (see :class:`payhub.errors.ErrorCode`).
ALIPAY_ERROR_CODES: Final[Mapping[str, ErrorCode]] = MappingProxyType(
    {
        # -- codes ---------------------------------------------------------
        "20000": _E.CHANNEL_UNAVAILABLE,  # service unavailable
        "20001": _E.PERMISSION_DENIED,  # insufficient token permission
        "40001": _E.INVALID_REQUEST,  # missing argument
        "40002": _E.INVALID_REQUEST,  # invalid argument
        "40004": _E.CHANNEL_ERROR,  # business failure: see the sub-code
        "40006": _E.PERMISSION_DENIED,  # insufficient permissions
        # -- gateway sub-codes ----------------------------------------------
        "isp.unknow-error": _E.CHANNEL_UNAVAILABLE,
        "aop.unknow-error": _E.CHANNEL_UNAVAILABLE,
        "isv.missing-*": _E.INVALID_REQUEST,
        "isv.invalid-signature": _E.SIGNATURE_INVALID,
        "isv.invalid-signature-type": _E.SIGNATURE_INVALID,
        "isv.invalid-app-id": _E.CONFIGURATION,
        "isv.invalid-timestamp": _E.INVALID_REQUEST,
        "isv.invalid-*": _E.INVALID_REQUEST,
        "isv.insufficient-isv-permissions": _E.PERMISSION_DENIED,
        "isv.insufficient-user-permissions": _E.PERMISSION_DENIED,
        # -- trade (ACQ) sub-codes ------------------------------------------
        "ACQ.SYSTEM_ERROR": _E.CHANNEL_UNAVAILABLE,
        "aop.ACQ.SYSTEM_ERROR": _E.CHANNEL_UNAVAILABLE,
        "ACQ.INVALID_PARAMETER": _E.INVALID_REQUEST,
        "ACQ.EXIST_FORBIDDEN_WORD": _E.INVALID_REQUEST,
        "ACQ.ACCESS_FORBIDDEN": _E.PERMISSION_DENIED,
        "ACQ.PARTNER_ERROR": _E.CONFIGURATION,
        "ACQ.TRADE_NOT_EXIST": _E.TRADE_NOT_FOUND,
        "ACQ.TRADE_HAS_SUCCESS": _E.TRADE_ALREADY_PAID,
        "ACQ.TRADE_HAS_CLOSE": _E.TRADE_CLOSED,
        "ACQ.TRADE_HAS_FINISHED": _E.TRADE_FINISHED,
        "ACQ.CONTEXT_INCONSISTENT": _E.ORDER_NUMBER_USED,
        "ACQ.DISCORDANT_REPEAT_REQUEST": _E.ORDER_NUMBER_USED,
        "ACQ.TOTAL_FEE_EXCEED": _E.REFUND_EXCEEDS_PAID,
        "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": _E.REFUND_EXCEEDS_PAID,
        "ACQ.REASON_TRADE_REFUND_FEE_ERR": _E.REFUND_EXCEEDS_PAID,
        "ACQ.REFUND_FEE_ERROR": _E.INVALID_AMOUNT,
        "ACQ.SELLER_BALANCE_NOT_ENOUGH": _E.INSUFFICIENT_BALANCE,
        "ACQ.BUYER_SELLER_EQUAL": _E.BUYER_ERROR,
        "ACQ.BUYER_BALANCE_NOT_ENOUGH": _E.BUYER_ERROR,
        "ACQ.BUYER_ENABLE_STATUS_FORBID": _E.BUYER_ERROR,
        "ACQ.TRADE_BUYER_NOT_MATCH": _E.BUYER_ERROR,
        # -- royalty (alipay.trade.royalty.relation.*, alipay.trade.order.settle)
        "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR": _E.INVALID_SPLIT,
        "ACQ.ROYALTY_RECEIVER_INVALID": _E.RECEIVER_NOT_BOUND,
        "ACQ.USER_NOT_EXIST": _E.INVALID_REQUEST,
        "ACQ.PRODUCT_UNSIGN": _E.PERMISSION_DENIED,
        # -- transfers (alipay.fund.trans.uni.transfer / common.query) -----
        "SYSTEM_ERROR": _E.CHANNEL_UNAVAILABLE,
        "PAYER_BALANCE_NOT_ENOUGH": _E.INSUFFICIENT_BALANCE,
        "PAYMENT_INFO_INCONSISTENCY": _E.ORDER_NUMBER_USED,
        "PAYEE_NOT_EXIST": _E.INVALID_REQUEST,
        "PAYEE_USER_INFO_ERROR": _E.PAYEE_NAME_MISMATCH,
        "EXCEED_LIMIT_SM_AMOUNT": _E.INVALID_AMOUNT,
        "ORDER_NOT_EXIST": _E.TRADE_NOT_FOUND,
    }
)

_PREFIXES: Final = tuple(
    (key[:-1], code) for key, code in ALIPAY_ERROR_CODES.items() if key.endswith("*")
)


def map_error_code(code: str | None, sub_code: str | None) -> ErrorCode:
    """The unified code of an Alipay failure: sub-code, then wildcard, then code."""
    if sub_code:
        exact = ALIPAY_ERROR_CODES.get(sub_code)
        if exact is not None and not sub_code.endswith("*"):
            return exact
        for prefix, mapped in _PREFIXES:
            if sub_code.startswith(prefix):
                return mapped
    if code:
        return ALIPAY_ERROR_CODES.get(code, ErrorCode.CHANNEL_ERROR)
    return ErrorCode.CHANNEL_ERROR
