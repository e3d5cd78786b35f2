"""WeChat Pay's signatures: the merchant's ``Authorization`` header, the
platform's ``Wechatpay-*`` headers, and the platform's verification keys.

Responses and notifications are signed over ``TIMESTAMP\\nNONCE\\nBODY\\n``
with the raw body; the headers are checked before any RSA work (present
exactly once, not a ``WECHATPAY/SIGNTEST/`` probe, a timestamp in seconds
within 300 s of now).

The platform's keys come in two modes. In public-key mode there is one key,
named by its ``PUB_KEY_ID_…``. In certificate mode the keys are the platform
certificates, by upper-hex serial; every unexpired one is kept (a rotation
overlaps two serials), and downloads are throttled by :class:`PlatformKeyring`:

* a *scheduled* download when the last one is ``interval`` old (or, while no
  certificate is known at all, a minute old: the bootstrap must be able to
  recover from a failed attempt);
* an *on-demand* download when an unknown serial arrives, at most once per
  ``interval`` however many times and however many unknown serials arrive.
"""

from __future__ import annotations

import binascii
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payhub.errors import SignatureError
from payhub.signing import rsa_sign

__all__ = [
    "AUTH_SCHEME",
    "PROBE_PREFIX",
    "TIMESTAMP_TOLERANCE",
    "PlatformKey",
    "PlatformKeyring",
    "SignedHeaders",
    "authorization",
    "read_signed_headers",
    "verify_signed",
]

AUTH_SCHEME: Final = "WECHATPAY2-SHA256-RSA2048"
PROBE_PREFIX: Final = "WECHATPAY/SIGNTEST/"
TIMESTAMP_TOLERANCE: Final = 300  # seconds, either way
BOOTSTRAP_RETRY: Final = 60.0  # seconds between download attempts while nothing is known

_PADDING: Final = padding.PKCS1v15()
_SHA256: Final = hashes.SHA256()


#: The ``Wechatpay-*`` headers of a signed response or notification: timestamp,
#: nonce and signature as the raw bytes received (the message is rebuilt from
#: exactly these), and the serial. A plain tuple: this is the hot path.
SignedHeaders: TypeAlias = tuple[bytes, bytes, bytes, str]

# One pass over the raw headers finds them all and catches repeats: five
# ``Headers.get_list`` calls would each walk and lower-case every header again
# (2-3x the time, and this runs for every notification and response).
_WANTED: Final = frozenset(
    {
        b"wechatpay-timestamp",
        b"wechatpay-nonce",
        b"wechatpay-signature",
        b"wechatpay-serial",
        b"wechatpay-signature-type",
    }
)
_PROBE: Final = PROBE_PREFIX.encode("ascii")
_SCHEME: Final = AUTH_SCHEME.encode("ascii")


def _display(name: bytes) -> str:
    return "-".join(part.capitalize() for part in name.decode("ascii").split("-"))


def read_signed_headers(headers: httpx.Headers, now: float) -> SignedHeaders:
    """Check the ``Wechatpay-*`` headers (no RSA yet) and return them.

    Raises :class:`SignatureError` for a missing, repeated or empty header, a
    signature probe, a signature type other than ``WECHATPAY2-SHA256-RSA2048``
    and a timestamp that is not seconds or is more than 300 s from ``now``.
    """
    found: dict[bytes, bytes] = {}
    for name, value in headers.raw:
        lowered = name.lower()
        if lowered in _WANTED:
            if lowered in found:
                raise SignatureError(f"header {_display(lowered)} is repeated")
            found[lowered] = value
    get = found.get
    signature = get(b"wechatpay-signature")
    timestamp = get(b"wechatpay-timestamp")
    nonce = get(b"wechatpay-nonce")
    serial = get(b"wechatpay-serial")
    if not (signature and timestamp and nonce and serial):
        for name in (b"wechatpay-signature", b"wechatpay-timestamp", b"wechatpay-nonce"):
            if not get(name):
                raise SignatureError(
                    f"header {_display(name)} is {'empty' if name in found else 'missing'}"
                )
        raise SignatureError(f"header Wechatpay-Serial is {'empty' if serial else 'missing'}")
    if signature.startswith(_PROBE):
        raise SignatureError("signature probe (WECHATPAY/SIGNTEST/) rejected")
    # Seconds: ASCII digits (bytes.isdigit is ASCII-only), no leading zero, at
    # most 10 digits; a 13-digit millisecond timestamp is named as such.
    if not timestamp.isdigit() or timestamp[0] == 0x30 or len(timestamp) > 10:
        if timestamp.isdigit() and len(timestamp) == 13 and timestamp[0] != 0x30:
            raise SignatureError("Wechatpay-Timestamp is in milliseconds, not seconds")
        raise SignatureError("Wechatpay-Timestamp is not a number of seconds")
    skew = int(timestamp) - now
    if skew > TIMESTAMP_TOLERANCE or skew < -TIMESTAMP_TOLERANCE:
        raise SignatureError(
            f"Wechatpay-Timestamp is {abs(int(skew))} s "
            f"{'ahead of' if skew > 0 else 'behind'} the clock (tolerance 300 s)"
        )
    kind = get(b"wechatpay-signature-type")
    if kind is not None and kind != _SCHEME:
        raise SignatureError("Wechatpay-Signature-Type is not WECHATPAY2-SHA256-RSA2048")
    try:
        return timestamp, nonce, signature, serial.decode("ascii")
    except UnicodeDecodeError:
        raise SignatureError("Wechatpay-Serial is not ASCII") from None


def verify_signed(key: rsa.RSAPublicKey, signed: SignedHeaders, body: bytes) -> None:
    """Verify ``Wechatpay-Signature`` over ``TIMESTAMP\\nNONCE\\nBODY\\n`` (raw body)."""
    timestamp, nonce, signature, _ = signed
    try:
        # strict_mode: the same refusals as b64decode(validate=True), in C.
        raw = binascii.a2b_base64(signature, strict_mode=True)
    except (binascii.Error, ValueError):
        raise SignatureError("Wechatpay-Signature is not valid base64") from None
    try:
        key.verify(raw, b"%s\n%s\n%s\n" % (timestamp, nonce, body), _PADDING, _SHA256)
    except InvalidSignature:
        raise SignatureError("Wechatpay-Signature does not verify") from None


def authorization(
    key: rsa.RSAPrivateKey,
    *,
    mch_id: str,
    serial_no: str,
    method: str,
    path: bytes,
    timestamp: str,
    nonce: str,
    body: bytes,
) -> str:
    """The ``Authorization`` header over ``METHOD\\nPATH?QUERY\\nTS\\nNONCE\\nBODY\\n``.

    ``path`` is the raw path with its query, exactly as sent; ``body`` the exact
    bytes sent (empty for a GET).
    """
    message = b"%s\n%s\n%s\n%s\n%s\n" % (
        method.encode("ascii"),
        path,
        timestamp.encode("ascii"),
        nonce.encode("ascii"),
        body,
    )
    signature = rsa_sign(key, message)
    return (
        f'{AUTH_SCHEME} mchid="{mch_id}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


@dataclass(frozen=True, slots=True)
class PlatformKey:
    """One verification key of the platform and the window it may be used in."""

    serial: str
    key: rsa.RSAPublicKey
    not_before: float = float("-inf")
    not_after: float = float("inf")


class PlatformKeyring:
    """The platform's verification keys, by serial, and the download throttle.

    Thread-safe: the key map is replaced, never mutated, and every decision to
    download is taken (and recorded) under a lock, so concurrent flows never
    download twice for the same reason.
    """

    def __init__(self, *, static: PlatformKey | None = None, interval: float = 43200.0) -> None:
        self.static = static is not None
        self._keys: Mapping[str, PlatformKey] = {static.serial: static} if static else {}
        self._interval = interval
        self._lock = threading.Lock()
        self._attempted_at: float | None = None
        self._on_demand_at: float | None = None

    @property
    def serials(self) -> list[str]:
        return sorted(self._keys)

    def lookup(self, serial: str, now: float) -> rsa.RSAPublicKey | None:
        """The key of ``serial`` if it is known and within its validity at ``now``."""
        entry = self._keys.get(serial)
        if entry is None or not entry.not_before <= now < entry.not_after:
            return None
        return entry.key

    def newest(self, now: float) -> PlatformKey | None:
        """The valid key that became valid last: the one to encrypt with."""
        valid = [k for k in self._keys.values() if k.not_before <= now < k.not_after]
        return max(valid, key=lambda k: (k.not_before, k.serial), default=None)

    def _elapsed(self, since: float | None, now: float, period: float) -> bool:
        # abs(): a clock set back by more than a period must not stall downloads forever.
        return since is None or abs(now - since) >= period

    def claim_download(self, now: float, *, unknown_serial: bool = False) -> bool:
        """Decide whether to download the certificates now, and record the decision.

        ``unknown_serial=False`` asks for the scheduled download, ``True`` for an
        on-demand one (a response or notification named a serial not known).
        """
        if self.static:
            return False
        with self._lock:
            period = self._interval if self._keys else min(self._interval, BOOTSTRAP_RETRY)
            if self._elapsed(self._attempted_at, now, period) or (
                unknown_serial and self._elapsed(self._on_demand_at, now, self._interval)
            ):
                self._attempted_at = now
                if unknown_serial:
                    self._on_demand_at = now
                return True
            return False

    def merge(self, fresh: Mapping[str, PlatformKey], now: float) -> None:
        """Add downloaded keys; keep every other key that has not expired."""
        with self._lock:
            kept = {s: k for s, k in self._keys.items() if now < k.not_after}
            kept.update(fresh)
            self._keys = kept
