"""The facade: :class:`PayHub` (sync) and :class:`AsyncPayHub` (async).

One module per job, each holding its decisions once and its short I/O loop
twice (a plain function and its ``*_async`` twin, kept in step by
``tests/test_hub_twins.py``):

- ``_config``: building from configuration (channels, handlers, routing)
- ``_paying``: paying with failover (the payment plan, recording attempts)
- ``_refunds``: refunds, incl. refunds of duplicate payments
- ``_notifications``: verify, apply once, deliver events, ack
- ``_recovery``: ``query``, ``close_trade``, ``sync_*``, ``check_return``
- ``_events``: running handlers, dispatching the outbox
- ``_anomalies``: finding, listing and resolving anomalies

:class:`BaseHub` (``_base``) holds the state both hubs share; ``_sync`` and
``_async`` hold the hubs, one line per operation, and their I/O primitives
(``_run_flow``, ``_call_store``, ``_call_router``, ``_dispatch_after_commit``).

>>> hub = PayHub.from_config({"channels": {"alipay": {"type": "alipay", ...}}})
... # doctest: +SKIP
>>> result = hub.pay(PaymentRequest(...))  # doctest: +SKIP
"""

from payhub.hub._async import AsyncPayHub
from payhub.hub._base import BaseHub
from payhub.hub._config import build_channels
from payhub.hub._network import DEFAULT_TIMEOUT, map_network_errors
from payhub.hub._notifications import NotificationOutcome
from payhub.hub._recovery import SyncReport
from payhub.hub._sync import PayHub

__all__ = [
    "DEFAULT_TIMEOUT",
    "AsyncPayHub",
    "BaseHub",
    "NotificationOutcome",
    "PayHub",
    "SyncReport",
    "build_channels",
    "map_network_errors",
]
