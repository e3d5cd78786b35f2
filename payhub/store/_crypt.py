"""Buyer data encrypted field by field (AES-256-GCM), with a keyed hash for lookups.

What payhub stores of a buyer is in the inbox: a notification's raw body and
its parsed copy carry the payer's id at the channel (Alipay ``buyer_id`` /
``buyer_open_id``, ``buyer_logon_id``; WeChat ``openid``), sometimes a masked
phone or name. With keys configured both are stored encrypted:

* ``raw_body``: ``nonce (12 bytes) || ciphertext || tag (16 bytes)``;
* ``payload``: ``{"ct": base64(nonce || ciphertext || tag)}`` of its JSON;
* ``key_id``: the key that encrypted them (NULL: stored in clear);
* ``buyer_hash``: HMAC-SHA256 (hex) of the payer's id, to find a buyer's
  notifications by equality without decrypting anything.

The associated data binds a ciphertext to its row and column
(``payhub_notifications/<column>/<channel>/<event_key>``): moved to another
row it does not decrypt. New rows are encrypted with the current key; any
configured key decrypts; ``payhub db rotate-keys`` re-encrypts older rows
with the current one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payhub.config import resolve_secret
from payhub.errors import ConfigurationError, SignatureError, StoreError
from payhub.signing import aes_gcm_decrypt, aes_gcm_encrypt

__all__ = ["FieldKeys", "payer_id"]

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}", re.ASCII)
_NONCE = 12


def _key_bytes(value: object, name: str) -> bytes:
    text = resolve_secret(value, name).get_text().strip()
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise ConfigurationError(f"{name}: not base64") from None
    if len(raw) != 32:
        raise ConfigurationError(f"{name}: must be 32 bytes (base64 of 32 random bytes)")
    return raw


@dataclass(frozen=True, repr=False)
class FieldKeys:
    """The data keys (id → 32 bytes), the current one's id, and the lookup-hash key.

    >>> FieldKeys.from_config({  # doctest: +SKIP
    ...     "current": "2026-12",
    ...     "keys": {"2026-12": {"$env": "PAYHUB_KEY_2026_12"}, "2026-06": {"$env": "OLD"}},
    ...     "hash_key": {"$env": "PAYHUB_HASH_KEY"},
    ... })
    """

    keys: Mapping[str, bytes]
    current: str
    hash_key: bytes

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ConfigurationError("store.encryption: 'current' must name one of 'keys'")
        for kid, key in self.keys.items():
            if not _KEY_ID.fullmatch(kid) or len(key) != 32:
                raise ConfigurationError(
                    "store.encryption: key ids are 1-16 of A-Z a-z 0-9 _ -, keys 32 bytes"
                )
        if len(self.hash_key) < 32:
            raise ConfigurationError("store.encryption: hash_key must be at least 32 bytes")

    def __repr__(self) -> str:
        return f"<FieldKeys current={self.current} ids={sorted(self.keys)}>"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FieldKeys:
        """``{"current": id, "keys": {id: base64 key or reference}, "hash_key": ...}``."""
        if not isinstance(config, Mapping) or not isinstance(config.get("keys"), Mapping):
            raise ConfigurationError("store.encryption: needs 'keys', 'current' and 'hash_key'")
        keys = {
            str(kid): _key_bytes(value, f"store.encryption.keys.{kid}")
            for kid, value in config["keys"].items()
        }
        if "hash_key" not in config:
            raise ConfigurationError("store.encryption: needs a 'hash_key'")
        return cls(keys, str(config.get("current")), _key_bytes(config["hash_key"], "hash_key"))

    # -- fields ----------------------------------------------------------------

    @staticmethod
    def _aad(column: str, channel: str, event_key: str) -> bytes:
        return f"payhub_notifications/{column}/{channel}/{event_key}".encode()

    def _key(self, key_id: str) -> bytes:
        key = self.keys.get(key_id)
        if key is None:
            raise StoreError(f"store: no configured key {key_id!r} decrypts this row")
        return key

    def seal(self, data: bytes, column: str, channel: str, event_key: str) -> bytes:
        nonce = os.urandom(_NONCE)
        sealed = aes_gcm_encrypt(
            self.keys[self.current], nonce, self._aad(column, channel, event_key), data
        )
        return nonce + base64.b64decode(sealed)

    def open(self, data: bytes, key_id: str, column: str, channel: str, event_key: str) -> bytes:
        try:
            return aes_gcm_decrypt(
                self._key(key_id),
                data[:_NONCE],
                self._aad(column, channel, event_key),
                base64.b64encode(data[_NONCE:]).decode(),
            )
        except SignatureError:
            raise StoreError(
                f"store: {column} of notification {channel}/{event_key} fails authentication "
                f"with key {key_id!r}"
            ) from None

    def seal_json(self, value: Any, channel: str, event_key: str) -> dict[str, str]:
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        sealed = self.seal(data, "payload", channel, event_key)
        return {"ct": base64.b64encode(sealed).decode()}

    def open_json(self, value: Any, key_id: str, channel: str, event_key: str) -> Any:
        sealed = base64.b64decode(str(value["ct"]))
        return json.loads(self.open(sealed, key_id, "payload", channel, event_key))

    def lookup_hash(self, value: str) -> str:
        """HMAC-SHA256 (hex) of ``value``: equal values, equal hashes; nothing else learnt."""
        return hmac.new(self.hash_key, value.encode(), hashlib.sha256).hexdigest()


def payer_id(raw: Mapping[str, Any]) -> str | None:
    """The payer's id at the channel in a parsed notification, if it names one."""
    for name in ("buyer_id", "buyer_open_id", "openid"):
        value = raw.get(name)
        if isinstance(value, str) and value:
            return value
    payer = raw.get("payer")
    if isinstance(payer, Mapping):
        value = payer.get("openid") or payer.get("sp_openid") or payer.get("sub_openid")
        if isinstance(value, str) and value:
            return value
    return None


def sealed_row(
    keys: FieldKeys | None, channel: str, event_key: str, raw_body: bytes, raw: Mapping[str, Any]
) -> dict[str, Any]:
    """The inbox row's raw_body, key_id and buyer_hash, sealed if keys are configured."""
    if keys is None:
        return {"raw_body": raw_body, "key_id": None, "buyer_hash": None}
    payer = payer_id(raw)
    return {
        "raw_body": keys.seal(raw_body, "raw_body", channel, event_key),
        "key_id": keys.current,
        "buyer_hash": None if payer is None else keys.lookup_hash(payer),
    }


def opened_body(keys: FieldKeys | None, row: Mapping[Any, Any]) -> bytes:
    """A stored row's raw_body in clear."""
    body = bytes(row["raw_body"])
    if row["key_id"] is None:
        return body
    if keys is None:
        raise StoreError("store: this notification is encrypted and no key is configured")
    return keys.open(body, row["key_id"], "raw_body", row["channel"], row["event_key"])


def opened_payload(keys: FieldKeys | None, row: Mapping[Any, Any]) -> Any:
    payload = row["payload"]
    if row["key_id"] is None or payload is None:
        return payload
    if keys is None:
        raise StoreError("store: this notification is encrypted and no key is configured")
    return keys.open_json(payload, row["key_id"], row["channel"], row["event_key"])
