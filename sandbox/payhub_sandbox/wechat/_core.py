"""What every part of the WeChat simulator shares: the trade store and its lock, the
clock, the notification scheduler, the registered merchants and the number sequence."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from payhub_sandbox._clock import CHINA_TZ, Clock
from payhub_sandbox._errors import UnknownMerchantError
from payhub_sandbox._state import TradeStore
from payhub_sandbox.delivery._scheduler import DeliveryScheduler
from payhub_sandbox.wechat._merchants import WechatMerchant

__all__ = ["CHANNEL", "WechatCore"]

CHANNEL: Final = "wechat"


@dataclass
class WechatCore:
    """The shared state; ``lock`` (the store's) guards all of it."""

    store: TradeStore
    scheduler: DeliveryScheduler
    clock: Clock
    time_factor: float
    merchants: dict[str, WechatMerchant] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"{secrets.randbelow(1_000_000):06d}")
    serial: int = 0

    @property
    def lock(self) -> threading.RLock:
        return self.store.lock

    def now(self) -> datetime:
        return self.clock.now()

    def merchant(self, mch_id: str) -> WechatMerchant:
        with self.lock:
            try:
                return self.merchants[mch_id]
            except KeyError:
                raise UnknownMerchantError(
                    f"no WeChat Pay merchant {mch_id!r} is registered"
                ) from None

    def number(self, head: str, width: int) -> str:
        """A new WeChat number: ``head``, the process prefix, today (Asia/Shanghai), a
        ``width``-digit serial (``4200…`` transactions, ``5030…`` refunds)."""
        with self.lock:
            self.serial += 1
            serial = self.serial
        return f"{head}{self.prefix}{self.now().astimezone(CHINA_TZ):%Y%m%d}{serial:0{width}d}"
