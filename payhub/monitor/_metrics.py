"""Prometheus metrics (the optional extra ``payhub-cn[metrics]``: prometheus-client).

Gauges of the backlog (what ``payhub health`` checks) are read from the store
when Prometheus scrapes; the notification latency histogram and outcome
counter are observed in ``hub.handle_notification`` once :func:`instrument`
was called on the hub. ``payhub metrics`` serves them; an adapter can serve
:func:`exposition` from a view instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from payhub.errors import ConfigurationError, PayhubError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from payhub.monitor._health import HealthConfig
    from payhub.store import Store

__all__ = ["Metrics", "exposition"]


def _client() -> Any:
    try:
        import prometheus_client  # noqa: PLC0415 - an optional dependency
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigurationError(
            "metrics need prometheus-client: pip install 'payhub-cn[metrics]'"
        ) from None
    return prometheus_client


class Metrics:
    """payhub's metrics in one registry (a fresh one by default)."""

    def __init__(
        self,
        store: Store | None = None,
        health: HealthConfig | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        pc = _client()
        self.registry = registry if registry is not None else pc.CollectorRegistry()
        self.notification_seconds = pc.Histogram(
            "payhub_notification_seconds",
            "Time to handle one notification (verify, apply, ack), by channel.",
            ["channel"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.notifications = pc.Counter(
            "payhub_notifications",
            "Notifications handled, by channel and whether they were acked.",
            ["channel", "acked"],
            registry=self.registry,
        )
        if store is not None:
            self.registry.register(_BacklogCollector(pc, store, health))

    def observe_notification(self, channel: str, seconds: float, acked: bool) -> None:
        self.notification_seconds.labels(channel).observe(seconds)
        self.notifications.labels(channel, "true" if acked else "false").inc()

    def instrument(self, hub: Any) -> None:
        """Observe every ``hub.handle_notification`` of this hub (sync or async)."""
        inner = hub.handle_notification
        metrics = self
        if getattr(inner, "__code__", None) is not None and inner.__code__.co_flags & 0x80:

            async def handle_async(channel: str, headers: Any, body: bytes) -> Any:
                start = time.perf_counter()
                outcome = await inner(channel, headers, body)
                metrics.observe_notification(channel, time.perf_counter() - start, outcome.ack.ok)
                return outcome

            hub.handle_notification = handle_async
            return

        def handle(channel: str, headers: Any, body: bytes) -> Any:
            start = time.perf_counter()
            outcome = inner(channel, headers, body)
            metrics.observe_notification(channel, time.perf_counter() - start, outcome.ack.ok)
            return outcome

        hub.handle_notification = handle

    def exposition(self) -> tuple[bytes, str]:
        """(body, content type) of the text format Prometheus scrapes."""
        pc = _client()
        return pc.generate_latest(self.registry), str(pc.CONTENT_TYPE_LATEST)


def exposition(metrics: Metrics) -> tuple[bytes, str]:
    """For an adapter's view: ``body, content_type = exposition(metrics)``."""
    return metrics.exposition()


class _BacklogCollector:
    """Reads the backlog when scraped; a store that cannot be read sets
    ``payhub_store_up`` to 0 instead of failing the scrape."""

    def __init__(self, pc: Any, store: Store, health: HealthConfig | None) -> None:
        from payhub.monitor._health import HealthConfig  # noqa: PLC0415

        self._pc = pc
        self._store = store
        self._health = health or HealthConfig()

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily as gauge  # noqa: PLC0415
        c = self._health
        try:
            b = self._store.backlog(
                pending_after=timedelta(seconds=c.pending_after),
                undelivered_after=timedelta(seconds=c.undelivered_after),
                refused_window=timedelta(seconds=c.refused_window),
            )
        except PayhubError:
            yield gauge("payhub_store_up", "1 if the store answered this scrape.", value=0)
            return
        yield gauge("payhub_store_up", "1 if the store answered this scrape.", value=1)
        values = {
            "payhub_pending_payments": ("Payments pending past the health threshold.", b.pending),
            "payhub_undelivered_events": ("Outbox events undelivered past the threshold.",
                                          b.undelivered),
            "payhub_refused_notifications": ("Notifications held, not credited, in the window.",
                                             b.refused),
            "payhub_open_anomalies": ("Open anomalies.", b.open_anomalies),
            "payhub_reviews_waiting": ("Paid payments waiting for risk review.",
                                       b.reviews_waiting),
            "payhub_oldest_undelivered_event_seconds": ("Age of the oldest undelivered event.",
                                                        b.undelivered_oldest or 0),
            "payhub_oldest_pending_payment_seconds": ("Age of the oldest pending payment.",
                                                      b.pending_oldest or 0),
        }
        for name, (doc, value) in values.items():
            yield gauge(name, doc, value=value)
