"""UnionPay's side of the sandbox: ACP 5.1.0 (``signMethod=01``) on the online gateway.

:class:`UnionPaySimulator` holds no Flask: the views hand it the raw request
body of ``/gateway/api/<endpoint>.do`` and send back the :class:`UnionPayReply`
it returns. The wire format is built in :mod:`payhub_sandbox.unionpay._wire`
from PROTOCOLS.md, never through ``payhub.channels``.

Transactions are identified as ACP does: by ``merId`` + ``orderId`` (+ the
original ``txnTime`` for a query). A consume is a :class:`~payhub_sandbox.Trade`
whose ``trade_no`` is its ``queryId``; a refund (``04``) or an undo (``31``) has
its own ``orderId`` and ``queryId`` and is a :class:`~payhub_sandbox.Refund`
of the consume named by ``origQryId``.

The simulator is put together from one class per job, each building on the
state and jobs below it:

==================  =============================================================
``_base``           the store, the PKI and its faults, merchants, numbering
``_notify``         back and front notifications, a consume's fields
``_consume``        consumes, paying, expiry, ``queryTrans.do``
``_back``           refunds and undos (``backTransReq.do``, the portal)
``_gateway``        the endpoints: checks, signature, dispatch
==================  =============================================================
"""

from __future__ import annotations

from payhub_sandbox.unionpay._answers import (
    ENDPOINTS,
    RESP_MESSAGES,
    UnionPayMerchant,
    UnionPayReply,
    unionpay_orig_resp_code,
)
from payhub_sandbox.unionpay._gateway import UnionPayGateway
from payhub_sandbox.unionpay._notify import UNIONPAY_RETRY_DELAYS

__all__ = [
    "ENDPOINTS",
    "RESP_MESSAGES",
    "UNIONPAY_RETRY_DELAYS",
    "UnionPayMerchant",
    "UnionPayReply",
    "UnionPaySimulator",
    "unionpay_orig_resp_code",
]


class UnionPaySimulator(UnionPayGateway):
    """UnionPay's state and behaviour; every public method is thread-safe.

    ``sandbox.unionpay`` (:class:`~payhub_sandbox.unionpay._channel.UnionPayChannel`)
    offers the common verbs over it; the gateway views call :meth:`handle`.
    """
