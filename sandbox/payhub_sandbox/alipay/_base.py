"""The state every part of the Alipay simulator shares: the trade store, the
platform key, the registered apps, and finding trades."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import date, datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from payhub_sandbox._clock import CHINA_TZ, Clock
from payhub_sandbox._errors import (
    TradeNotFoundError,
    UnknownMerchantError,
)
from payhub_sandbox._splits import SplitBook
from payhub_sandbox._state import Trade, TradeStore
from payhub_sandbox.alipay._certs import AlipayCertificates
from payhub_sandbox.alipay._merchants import (
    CHANNEL,
    AlipayMerchant,
)
from payhub_sandbox.delivery._scheduler import DeliveryScheduler

__all__ = ["AlipayBase", "BillLink"]


@dataclass(frozen=True)
class BillLink:
    """A bill download link: whose bill, which day, until when."""

    app_id: str
    bill_date: date
    expires_at: datetime


class AlipayBase:
    """Alipay's state and the lookups every job uses; every public method is thread-safe."""

    def __init__(
        self,
        *,
        store: TradeStore,
        scheduler: DeliveryScheduler,
        clock: Clock,
        platform_key: rsa.RSAPrivateKey,
        time_factor: float,
        escape_slashes: bool = True,
        bills_ready_immediately: bool = False,
        unscanned_query_waits: bool = False,
        splits: SplitBook | None = None,
    ) -> None:
        self._store = store
        self._lock: threading.RLock = store.lock
        self._scheduler = scheduler
        self._clock = clock
        self._key = platform_key
        self._time_factor = time_factor
        self._escape_slashes = escape_slashes
        self._bills_ready_immediately = bills_ready_immediately
        self._unscanned_waits = unscanned_query_waits
        self._merchants: dict[str, AlipayMerchant] = {}
        self._bill_links: dict[str, BillLink] = {}
        self._prefix = f"{secrets.randbelow(10_000):04d}"
        self._serial = 0
        #: Certificate mode: the sandbox's root and platform certificates.
        self.certificates = AlipayCertificates(platform_key)
        #: Balances, known payees and faults shared with the other channels.
        self.splits = splits if splits is not None else SplitBook(store.lock, time_factor)

    def add_merchant(self, merchant: AlipayMerchant) -> AlipayMerchant:
        """Register (or replace, e.g. after a key rotation) a merchant app."""
        with self._lock:
            self._merchants[merchant.app_id] = merchant
        return merchant

    def merchant(self, app_id: str) -> AlipayMerchant:
        with self._lock:
            try:
                return self._merchants[app_id]
            except KeyError:
                raise UnknownMerchantError(f"no Alipay app {app_id!r} is registered") from None

    def merchants(self) -> list[AlipayMerchant]:
        with self._lock:
            return list(self._merchants.values())

    @property
    def public_key_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def trade(self, app_id: str, out_trade_no: str) -> Trade:
        trade = self._store.find(CHANNEL, app_id, out_trade_no=out_trade_no)
        if trade is None:
            raise TradeNotFoundError(f"no Alipay trade {out_trade_no!r} for app {app_id!r}")
        return trade

    def trade_by_no(self, trade_no: str) -> Trade:
        trade = self._store.get(trade_no)
        if trade is None or trade.channel != CHANNEL:
            raise TradeNotFoundError(f"no Alipay trade {trade_no!r}")
        return trade

    def _new_trade_no(self, now: datetime) -> str:
        self._serial += 1
        return f"{now.astimezone(CHINA_TZ):%Y%m%d}22001{self._prefix}{self._serial:011d}"
