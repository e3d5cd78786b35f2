"""ECMA-376 agile encryption of an OOXML package, streamed ([MS-OFFCRYPTO] 2.3.4.10-15).

What Excel writes for "Encrypt with Password": AES-256-CBC, SHA-512, the
password hashed 100,000 times. The package is encrypted in 4096-byte segments,
each with its own IV (the first 16 bytes of SHA-512(keyData salt + the
segment's index, 32-bit little-endian)), the last one zero-padded to the AES
block; the stream starts with the plain size (64-bit little-endian). An HMAC-
SHA-512 over the whole stream, with a random key, goes encrypted into the
``EncryptionInfo`` XML so that a reader can tell a damaged file.

The plain file is read and the ciphertext written a segment batch at a time,
the HMAC updated as it goes: memory stays the same whatever the file's size.
The container around the streams is :mod:`payhub.reports._cfb`'s.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Callable
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from payhub.errors import ReportError
from payhub.reports._cfb import Stream, Write

__all__ = ["AgileEncryptor", "data_spaces"]

SEGMENT = 4096
_BLOCK = 16
_SALT = 16
_KEY = 32  # AES-256
_HASH = 64  # SHA-512
_CHUNK = 16 * SEGMENT
#: the block keys of [MS-OFFCRYPTO] 2.3.4.11 and 2.3.4.14
_VERIFIER_INPUT = bytes.fromhex("fea7d2763b4b9e79")
_VERIFIER_VALUE = bytes.fromhex("d7aa0f6d3061344e")
_KEY_VALUE = bytes.fromhex("146e0be7abacd0d6")
_HMAC_KEY = bytes.fromhex("5fb2ad010cb9e1f6")
_HMAC_VALUE = bytes.fromhex("a0677f02b22c8433")


def _sha512(*parts: bytes) -> bytes:
    # hashlib (the standard library's OpenSSL binding): the password's 100,000
    # chained hashes take half the time they take through cryptography's Hash
    return hashlib.sha512(b"".join(parts)).digest()


def _aes_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class AgileEncryptor:
    """One encryption of one package with ``password``: keys and salts are drawn here.

    Use :meth:`streams` to get the container's streams; the ``EncryptedPackage``
    one must be filled before the ``EncryptionInfo`` one (it carries the HMAC),
    which :func:`payhub.reports._cfb.write_compound` does when they are listed
    in that order.
    """

    def __init__(self, password: str, *, spin_count: int = 100_000) -> None:
        self._spin_count = spin_count
        self._password_salt = os.urandom(_SALT)
        self._key_salt = os.urandom(_SALT)  # keyData's salt: segment IVs, HMAC IVs
        self._secret = os.urandom(_KEY)
        self._hmac_key = os.urandom(_HASH)
        self._hmac_value: bytes | None = None
        # [MS-OFFCRYPTO] 2.3.4.11: H0 = H(salt + password), Hn = H(n + Hn-1), then
        # one key per purpose: H(Hfinal + block key), cut to 256 bits
        digest = _sha512(self._password_salt, password.encode("utf-16-le"))
        for n in range(spin_count):
            digest = _sha512(struct.pack("<I", n), digest)
        key_for = {
            b: _sha512(digest, b)[:_KEY] for b in (_VERIFIER_INPUT, _VERIFIER_VALUE, _KEY_VALUE)
        }
        verifier = os.urandom(_SALT)
        iv = self._password_salt
        self._verifier_input = _aes_cbc(key_for[_VERIFIER_INPUT], iv, verifier)
        self._verifier_value = _aes_cbc(key_for[_VERIFIER_VALUE], iv, _sha512(verifier))
        self._key_value = _aes_cbc(key_for[_KEY_VALUE], iv, self._secret)

    @staticmethod
    def package_size(plain_size: int) -> int:
        """The ``EncryptedPackage`` stream's size for a package of ``plain_size`` bytes."""
        return 8 + -(-plain_size // _BLOCK) * _BLOCK

    def encrypt(self, plain: BinaryIO, plain_size: int, write: Write) -> None:
        """Read ``plain_size`` bytes from ``plain`` and ``write`` the ``EncryptedPackage``
        stream, keeping its HMAC for :meth:`encryption_info`.

        ``plain`` is a buffered binary file (``Path.open("rb")``): its ``read(n)``
        gives ``n`` bytes until the end, so segments line up with chunks.
        """
        mac = hmac.HMAC(self._hmac_key, hashes.SHA512())

        def emit(data: bytes) -> None:
            mac.update(data)
            write(data)

        emit(struct.pack("<Q", plain_size))
        index = read = 0
        while chunk := plain.read(_CHUNK):
            if read % SEGMENT:  # a short read before the end: segments would not line up
                raise ReportError("the workbook could not be read in whole segments")
            read += len(chunk)
            if read > plain_size:
                break
            out = bytearray()
            for offset in range(0, len(chunk), SEGMENT):
                segment = chunk[offset : offset + SEGMENT]
                segment += bytes(-len(segment) % _BLOCK)
                iv = _sha512(self._key_salt, struct.pack("<I", index))[:_BLOCK]
                out += _aes_cbc(self._secret, iv, segment)
                index += 1
            emit(bytes(out))
        if read != plain_size:
            raise ReportError(
                f"the workbook changed while being encrypted ({read} bytes, not {plain_size})"
            )
        self._hmac_value = mac.finalize()

    def encryption_info(self) -> bytes:
        """The ``EncryptionInfo`` stream: version 4.4, flags 0x40, then the XML descriptor."""
        if self._hmac_value is None:
            raise RuntimeError("encryption_info() before encrypt()")
        return self._info(self._hmac_value)

    def info_size(self) -> int:
        """The ``EncryptionInfo`` stream's size, known before the package is encrypted."""
        return len(self._info(bytes(_HASH)))

    def _info(self, hmac_value: bytes) -> bytes:
        iv_key = _sha512(self._key_salt, _HMAC_KEY)[:_BLOCK]
        iv_value = _sha512(self._key_salt, _HMAC_VALUE)[:_BLOCK]
        cipher = (
            'saltSize="16" blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" '
            'cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512"'
        )
        xml = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
            '<encryption xmlns="http://schemas.microsoft.com/office/2006/encryption" '
            'xmlns:p="http://schemas.microsoft.com/office/2006/keyEncryptor/password" '
            'xmlns:c="http://schemas.microsoft.com/office/2006/keyEncryptor/certificate">'
            f'<keyData {cipher} saltValue="{_b64(self._key_salt)}"/>'
            "<dataIntegrity"
            f' encryptedHmacKey="{_b64(_aes_cbc(self._secret, iv_key, self._hmac_key))}"'
            f' encryptedHmacValue="{_b64(_aes_cbc(self._secret, iv_value, hmac_value))}"/>'
            "<keyEncryptors>"
            '<keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
            f'<p:encryptedKey spinCount="{self._spin_count}" {cipher}'
            f' saltValue="{_b64(self._password_salt)}"'
            f' encryptedVerifierHashInput="{_b64(self._verifier_input)}"'
            f' encryptedVerifierHashValue="{_b64(self._verifier_value)}"'
            f' encryptedKeyValue="{_b64(self._key_value)}"/>'
            "</keyEncryptor></keyEncryptors></encryption>"
        )
        return struct.pack("<HHI", 4, 4, 0x40) + xml.encode("utf-8")

    def streams(self, plain: BinaryIO, plain_size: int) -> list[Stream]:
        """The streams of the encrypted file: package, info, then the data spaces."""
        package = Stream(
            ("EncryptedPackage",),
            self.package_size(plain_size),
            lambda write: self.encrypt(plain, plain_size, write),
        )

        def info(write: Write) -> None:  # called after the package: the HMAC is known
            write(self.encryption_info())

        return [package, Stream(("EncryptionInfo",), self.info_size(), info), *data_spaces()]


def _text(value: str) -> bytes:
    """UNICODE-LP-P4 ([MS-OFFCRYPTO] 2.1.2): byte length, UTF-16LE, padded to 4 bytes."""
    data = value.encode("utf-16-le")
    return struct.pack("<I", len(data)) + data + bytes(-len(data) % 4)


def _const(data: bytes) -> Callable[[Write], None]:
    def fill(write: Write) -> None:
        write(data)

    return fill


def data_spaces() -> list[Stream]:
    """The ``\\x06DataSpaces`` storage of [MS-OFFCRYPTO] 2.1 that says the package
    is encrypted by the "StrongEncryptionTransform" (version 1.0 everywhere)."""
    versions = struct.pack("<HHHHHH", 1, 0, 1, 0, 1, 0)  # reader, updater, writer
    version = _text("Microsoft.Container.DataSpaces") + versions
    entry = (
        struct.pack("<II", 1, 0)  # one reference component, a stream:
        + _text("EncryptedPackage")
        + _text("StrongEncryptionDataSpace")
    )
    space_map = struct.pack("<III", 8, 1, 4 + len(entry)) + entry
    definition = struct.pack("<II", 8, 1) + _text("StrongEncryptionTransform")
    transform_id = _text("{FF9A3F03-56EF-4613-BDD5-5A41C1D07246}")
    primary = (
        struct.pack("<II", 8 + len(transform_id), 1)  # header length, type 1: password
        + transform_id
        + _text("Microsoft.Container.EncryptionTransform")
        + versions
        # EncryptionTransformInfo: empty name, block size 0, cipher mode 0, reserved 4
        + struct.pack("<IIII", 0, 0, 0, 4)
    )
    root = "\x06DataSpaces"
    return [
        Stream((root, "Version"), len(version), _const(version)),
        Stream((root, "DataSpaceMap"), len(space_map), _const(space_map)),
        Stream(
            (root, "DataSpaceInfo", "StrongEncryptionDataSpace"),
            len(definition),
            _const(definition),
        ),
        Stream(
            (root, "TransformInfo", "StrongEncryptionTransform", "\x06Primary"),
            len(primary),
            _const(primary),
        ),
    ]
