"""Signed checkpoints of the audit chain: an anchor outside the database.

A checkpoint is one JSON line appended to ``checkpoints.jsonl`` in a directory
the database (and its application role) cannot write: ``{"seq", "hash",
"at", "key", "sig"}``, signed with an Ed25519 key the operator keeps apart
from the database. The signed message is the UTF-8 of::

    payhub-checkpoint/1\\n<seq>\\n<hash hex>\\n<at>

Whoever can rewrite the audit tables and the chain head can recompute every
link; they cannot sign a checkpoint. Verification against the checkpoints
detects a chain cut short (shorter than a checkpoint) or rewritten (a
different link at a checkpointed sequence number), and a forged or altered
checkpoint (bad signature). See ``docs/audit.md``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from payhub.errors import ConfigurationError, SignatureError
from payhub.store import Store
from payhub.store._chain import ChainReport

__all__ = [
    "CHECKPOINT_FILE",
    "Checkpoint",
    "generate_keys",
    "load_private_key",
    "load_public_key",
    "read_checkpoints",
    "verify",
    "write_checkpoint",
]

CHECKPOINT_FILE = "checkpoints.jsonl"
_TAG = "payhub-checkpoint/1"


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: at ``at`` the chain's row ``seq`` had link ``hash``."""

    seq: int
    hash: str
    at: str
    key: str
    sig: str

    def message(self) -> bytes:
        return f"{_TAG}\n{self.seq}\n{self.hash}\n{self.at}".encode()


def _fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keys(private_path: Path, public_path: Path) -> str:
    """Write a new Ed25519 key pair (PEM; the private file readable by its owner
    only, never overwritten). Returns the public key's fingerprint."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"{private_path} exists: not overwritten") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public = key.public_key()
    public_path.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return _fingerprint(public)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        why = type(exc).__name__
        raise ConfigurationError(f"{path}: not a readable PEM private key ({why})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        why = type(exc).__name__
        raise ConfigurationError(f"{path}: not a readable PEM public key ({why})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError(f"{path}: not an Ed25519 public key")
    return key


def write_checkpoint(store: Store, directory: Path, key: Ed25519PrivateKey) -> Checkpoint:
    """Sign the chain's head and append it to ``directory/checkpoints.jsonl``
    (opened for appending only, flushed to disk before returning)."""
    head = store.chain_head()
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    unsigned = Checkpoint(head.seq, head.hash, at, _fingerprint(key.public_key()), "")
    sig = base64.b64encode(key.sign(unsigned.message())).decode()
    checkpoint = Checkpoint(unsigned.seq, unsigned.hash, at, unsigned.key, sig)
    line = json.dumps(checkpoint.__dict__, separators=(",", ":")) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / CHECKPOINT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return checkpoint


def _lines(directory: Path) -> Iterator[tuple[int, str]]:
    path = directory / CHECKPOINT_FILE
    try:
        with path.open(encoding="utf-8") as lines:
            yield from enumerate(lines, start=1)
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: no checkpoints there") from None


def read_checkpoints(directory: Path, public: Ed25519PublicKey) -> list[Checkpoint]:
    """Every checkpoint of ``directory``, each signature checked; a forged,
    altered or unreadable line raises :class:`SignatureError` naming it."""
    found: list[Checkpoint] = []
    for number, text in _lines(directory):
        if not text.strip():
            continue
        where = f"{directory / CHECKPOINT_FILE} line {number}"
        try:
            doc = json.loads(text)
            checkpoint = Checkpoint(
                int(doc["seq"]), str(doc["hash"]), str(doc["at"]), str(doc["key"]),
                str(doc["sig"]),
            )
            public.verify(base64.b64decode(checkpoint.sig, validate=True), checkpoint.message())
        except InvalidSignature:
            raise SignatureError(
                f"{where}: the signature does not verify (forged or altered)"
            ) from None
        except (ValueError, KeyError, TypeError):
            raise SignatureError(f"{where}: not a checkpoint") from None
        found.append(checkpoint)
    return found


def verify(
    store: Store, directory: Path | None = None, public: Ed25519PublicKey | None = None
) -> ChainReport:
    """Walk the store's audit chain; with ``directory`` and ``public``, every
    signed checkpoint must verify and match it (docs/audit.md)."""
    expected: dict[int, str] = {}
    read: list[Checkpoint] = []
    if directory is not None:
        if public is None:
            raise ConfigurationError("checkpoints are verified with their public key")
        read = read_checkpoints(directory, public)
        for checkpoint in read:
            if checkpoint.seq == 0:
                continue
            if expected.setdefault(checkpoint.seq, checkpoint.hash) != checkpoint.hash:
                raise SignatureError(
                    f"two signed checkpoints disagree on row {checkpoint.seq}: the key was misused"
                )
    return dataclasses.replace(store.verify_chain(expected), checkpoints=len(read))
