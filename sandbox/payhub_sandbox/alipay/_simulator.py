"""Alipay's side of the sandbox: merchants, gateway methods, notifications,
browser returns and bill links.

:class:`AlipaySimulator` holds no Flask: the gateway view hands it the merged
request parameters and sends back the :class:`GatewayReply` it returns. The
wire format is built in :mod:`payhub_sandbox.alipay._wire` from PROTOCOLS.md,
never through ``payhub.channels``.

The simulator is put together from one class per job, each building on the
state and jobs below it:

==================  =============================================================
``_base``           the store, the platform key, registered apps, trade lookups
``_notify``         notifications and signed return URLs
``_trades``         creating, querying, closing and paying trades
``_refunds``        refunds (gateway and portal) and the refund query
``_bill_links``     bill download links and bill zips
``_gateway``        ``gateway.do``: checks, signature, dispatch
==================  =============================================================
"""

from __future__ import annotations

from payhub_sandbox.alipay._answers import GatewayReply
from payhub_sandbox.alipay._gateway import AlipayGateway
from payhub_sandbox.alipay._merchants import (
    DEFAULT_BUYER_ID,
    DEFAULT_FEE_RATE,
    AlipayMerchant,
    alipay_trade_status,
    make_merchant,
)
from payhub_sandbox.alipay._notify import ALIPAY_RETRY_DELAYS

__all__ = [
    "ALIPAY_RETRY_DELAYS",
    "DEFAULT_BUYER_ID",
    "DEFAULT_FEE_RATE",
    "AlipayMerchant",
    "AlipaySimulator",
    "GatewayReply",
    "alipay_trade_status",
    "make_merchant",
]


class AlipaySimulator(AlipayGateway):
    """Alipay's state and behaviour; every public method is thread-safe.

    ``sandbox.alipay`` (:class:`~payhub_sandbox.alipay._channel.AlipayChannel`)
    offers the common verbs over it; the gateway view calls :meth:`handle`.
    """
