"""The state every part of the UnionPay simulator shares: the store, the PKI and
the certificate fault in force, registered merchants, and numbering."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from payhub.errors import ConfigurationError
from payhub.signing import load_certificate
from payhub_sandbox._clock import CHINA_TZ, Clock
from payhub_sandbox._errors import (
    InvalidInputError,
    TradeNotFoundError,
    UnknownMerchantError,
)
from payhub_sandbox._state import Trade, TradeStore
from payhub_sandbox.delivery._scheduler import DeliveryScheduler
from payhub_sandbox.unionpay._answers import (
    CHANNEL,
    Txn,
    UnionPayMerchant,
    check_mer_id,
)
from payhub_sandbox.unionpay._pki import (
    PlatformSigner,
    UnionPayPKI,
    merchant_pfx,
    new_rsa_key,
)
from payhub_sandbox.unionpay._wire import (
    render_body,
    sign_fields,
)

__all__ = ["UnionPayBase"]


class UnionPayBase:
    """UnionPay's state and what every job uses; every public method is thread-safe."""

    def __init__(
        self,
        *,
        store: TradeStore,
        scheduler: DeliveryScheduler,
        clock: Clock,
        time_factor: float,
        pki: UnionPayPKI | None = None,
    ) -> None:
        self._store = store
        self._lock: threading.RLock = store.lock
        self._scheduler = scheduler
        self._clock = clock
        self._time_factor = time_factor
        self._pki = pki
        self._merchants: dict[str, UnionPayMerchant] = {}
        self._txns: dict[tuple[str, str], Txn] = {}
        self._fault: str | None = None
        self._prefix = f"{secrets.randbelow(1000):03d}"
        self._serial = 0

    @property
    def pki(self) -> UnionPayPKI:
        """The PKI; generated on first use (three RSA keys) unless one was given."""
        with self._lock:
            if self._pki is None:
                self._pki = UnionPayPKI.generate(now=self._clock.now())
            return self._pki

    @property
    def root_cert_pem(self) -> str:
        return self.pki.root_cert_pem

    @property
    def middle_cert_pem(self) -> str:
        return self.pki.middle_cert_pem

    @property
    def fault(self) -> str | None:
        with self._lock:
            return self._fault

    def set_fault(self, kind: str | None) -> str | None:
        """Sign from now on with a faulty certificate (see ``FAULT_KINDS``); None: the good one."""
        if kind is not None:
            self.pki.fault_signer(kind)  # validates the kind, and makes the signer now
        with self._lock:
            self._fault = kind
        return kind

    def _signer(self) -> PlatformSigner:
        pki = self.pki
        with self._lock:
            fault = self._fault
        if fault is None:
            return pki.platform
        return pki.fault_signer(fault)

    def _signed_body(self, fields: Mapping[str, str]) -> bytes:
        return render_body(sign_fields(fields, self._signer()))

    def add_merchant(
        self, mer_id: str, certificate: x509.Certificate | str | bytes
    ) -> UnionPayMerchant:
        """Register a merchant's signing certificate (PEM, DER or loaded); ``certId``
        is its serial number in decimal. Certificates already registered stay."""
        check_mer_id(mer_id)
        if not isinstance(certificate, x509.Certificate):
            try:
                certificate = load_certificate(certificate)
            except (ConfigurationError, UnicodeEncodeError) as exc:
                raise InvalidInputError(f"certificate: {exc}") from None
        if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
            raise InvalidInputError("certificate: needs an RSA key (signMethod 01)")
        with self._lock:
            earlier = self._merchants.get(mer_id)
            certs = dict(earlier.certificates) if earlier is not None else {}
            certs[str(certificate.serial_number)] = certificate
            merchant = UnionPayMerchant(mer_id, certs)
            self._merchants[mer_id] = merchant
        return merchant

    def issue_merchant(
        self, mer_id: str, password: str, *, key: rsa.RSAPrivateKey | None = None
    ) -> tuple[bytes, x509.Certificate]:
        """Issue a merchant signing certificate from the middle CA, register it, and
        return it with its PKCS#12 file (key + certificate, ``password``-protected)."""
        check_mer_id(mer_id)
        if not isinstance(password, str):
            raise InvalidInputError("password must be a string")
        private = key if key is not None else new_rsa_key()
        with self._lock:
            taken = frozenset(
                int(cert_id) for m in self._merchants.values() for cert_id in m.certificates
            )
        cert = self.pki.issue_merchant_cert(
            mer_id, private.public_key(), now=self._clock.now(), taken=taken
        )
        pfx = merchant_pfx(private, cert, password, name=f"{mer_id} sign")
        self.add_merchant(mer_id, cert)
        return pfx, cert

    def merchant(self, mer_id: str) -> UnionPayMerchant:
        with self._lock:
            try:
                return self._merchants[mer_id]
            except KeyError:
                raise UnknownMerchantError(
                    f"no UnionPay merchant {mer_id!r} is registered"
                ) from None

    def merchants(self) -> list[UnionPayMerchant]:
        with self._lock:
            return list(self._merchants.values())

    def trade(self, mer_id: str, order_id: str) -> Trade:
        trade = self._store.find(CHANNEL, mer_id, out_trade_no=order_id)
        if trade is None:
            raise TradeNotFoundError(f"no UnionPay order {order_id!r} for merchant {mer_id!r}")
        return trade

    def trade_by_no(self, trade_no: str) -> Trade:
        trade = self._store.get(trade_no)
        if trade is None or trade.channel != CHANNEL:
            raise TradeNotFoundError(f"no UnionPay trade {trade_no!r}")
        return trade

    def _next(self) -> int:
        self._serial += 1
        return self._serial

    def _new_query_id(self, now: datetime) -> str:
        """21 digits, as UnionPay's ``queryId``."""
        return f"{now.astimezone(CHINA_TZ):%y%m%d%H%M%S}{self._prefix}{self._next() % 10**6:06d}"

    def _new_tn(self, now: datetime) -> str:
        """21 digits, as UnionPay's ``tn``."""
        return f"{now.astimezone(CHINA_TZ):%Y%m%d%H%M%S}{self._prefix}{self._next() % 10**4:04d}"
