"""Encrypted files: OOXML agile encryption for XLSX, AES-256 zip for CSV.

* An XLSX is encrypted the way Excel itself does when a password is set
  ("Encrypt with Password"): ECMA-376 agile encryption (AES-256, SHA-512) in an
  OLE compound file, written streaming by :mod:`payhub.reports._agile` and
  :mod:`payhub.reports._cfb` with ``cryptography``, in memory that does not grow
  with the file. Excel and WPS open it and ask for the password; reading one
  back (:func:`decrypt_xlsx`) is ``msoffcrypto-tool``'s.
* CSV files go into a zip whose members are AES-256 encrypted (WinZip's AE-2,
  by ``pyzipper``). 7-Zip, WinRAR, WinZip and Bandizip open it; the zip
  "traditional" encryption is not used (it is broken), and macOS Archive
  Utility cannot open AES zips.

The password is passed in, used, and never written anywhere else: not to a
log, not to the run record, not to an exception message.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

from payhub.errors import ConfigurationError, ReportError

__all__ = ["aes_zip", "decrypt_xlsx", "encrypt_xlsx", "plain_zip", "read_aes_zip"]


def _need(module: str, extra: str) -> ConfigurationError:
    return ConfigurationError(
        f"reports: encrypted output needs {module}: pip install 'payhub-cn[{extra}]'"
    )


def encrypt_xlsx(source: Path, target: Path, password: str) -> None:
    """Write ``source`` (a plain XLSX) to ``target`` encrypted with ``password``.

    Streamed: the workbook is read, encrypted and written a few segments at a
    time, so memory does not grow with its size. A workbook over 2 GiB (the
    limit of a version 3 compound file's stream) is a :class:`ReportError`:
    export it in parts.
    """
    # cryptography is a core dependency; imported here to keep `import payhub` light
    from payhub.reports._agile import AgileEncryptor  # noqa: PLC0415
    from payhub.reports._cfb import MAX_STREAM_SIZE, write_compound  # noqa: PLC0415

    size = source.stat().st_size
    if AgileEncryptor.package_size(size) > MAX_STREAM_SIZE:
        raise ReportError(
            f"{source.name} is too large to encrypt as one workbook ({size} bytes): use parts"
        )
    encryptor = AgileEncryptor(password)
    with source.open("rb") as plain, target.open("wb") as out:
        write_compound(out, encryptor.streams(plain, size))


def decrypt_xlsx(source: Path, password: str) -> bytes:
    """The plain XLSX inside an encrypted one; a wrong password is a :class:`ReportError`."""
    try:
        import msoffcrypto  # noqa: PLC0415
        from msoffcrypto.exceptions import (  # noqa: PLC0415
            DecryptionError,
            FileFormatError,
            InvalidKeyError,
        )
    except ImportError:
        raise _need("msoffcrypto-tool", "secure-export") from None
    out = io.BytesIO()
    try:
        with source.open("rb") as handle:
            office = msoffcrypto.OfficeFile(handle)
            if not office.is_encrypted():
                raise ReportError(f"{source.name} is not encrypted")
            office.load_key(password=password, verify_password=True)
            office.decrypt(out)
    except (InvalidKeyError, DecryptionError):
        raise ReportError(f"wrong password for {source.name}") from None
    except FileFormatError:
        raise ReportError(f"{source.name} is not an encrypted Office file") from None
    return out.getvalue()


def aes_zip(target: Path, members: Sequence[tuple[str, Path]], password: str) -> None:
    """A zip of ``members`` (name in the archive, file), each AES-256 encrypted."""
    try:
        import pyzipper  # noqa: PLC0415 - optional extra
    except ImportError:
        raise _need("pyzipper", "secure-export") from None
    with pyzipper.AESZipFile(
        target, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as archive:
        archive.setpassword(password.encode("utf-8"))
        archive.setencryption(pyzipper.WZ_AES, nbits=256)
        for name, path in members:
            archive.write(path, name)


def read_aes_zip(source: Path, password: str) -> dict[str, bytes]:
    """Every member of an AES zip, decrypted; a wrong password is a :class:`ReportError`."""
    try:
        import pyzipper  # noqa: PLC0415
    except ImportError:
        raise _need("pyzipper", "secure-export") from None
    try:
        with pyzipper.AESZipFile(source) as archive:
            archive.setpassword(password.encode("utf-8"))
            return {name: archive.read(name) for name in archive.namelist()}
    except RuntimeError as exc:  # pyzipper's "Bad password for file"
        if "password" in str(exc).lower():
            raise ReportError(f"wrong password for {source.name}") from None
        raise ReportError(f"cannot read {source.name}: not an encrypted zip") from None
    except zipfile.BadZipFile:
        raise ReportError(f"{source.name} is not a zip file") from None


def plain_zip(target: Path, members: Sequence[tuple[str, Path]], *, compress: bool) -> None:
    """A zip of ``members`` without encryption (parts of a large export)."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(target, "w", compression=method, allowZip64=True) as archive:
        for name, path in members:
            archive.write(path, name)
