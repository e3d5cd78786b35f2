"""Compatibility shim: the hub moved to :mod:`payhub.hub` (one module per job).

``payhub.client`` keeps re-exporting the names it offered so that existing
imports keep working; it emits no warning. New code imports from ``payhub``
(or ``payhub.hub``).
"""

from payhub.hub import (
    DEFAULT_TIMEOUT,
    AsyncPayHub,
    BaseHub,
    NotificationOutcome,
    PayHub,
    SyncReport,
    build_channels,
    map_network_errors,
)

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
