"""Encrypted files: OOXML agile encryption for XLSX, AES-256 zip for CSV.

* An XLSX is encrypted the way Excel itself does when a password is set
  ("Encrypt with Password"): ECMA-376 agile encryption, by ``msoffcrypto-tool``.
  Excel and WPS open it and ask for the password.
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
    """Write ``source`` (a plain XLSX) to ``target`` encrypted with ``password``."""
    try:
        from msoffcrypto.format.ooxml import OOXMLFile  # noqa: PLC0415 - optional extra
    except ImportError:
        raise _need("msoffcrypto-tool", "secure-export") from None
    with source.open("rb") as plain, target.open("wb") as out:
        OOXMLFile(plain).encrypt(password, out)


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
