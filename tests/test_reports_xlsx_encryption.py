"""Encrypted XLSX: payhub's streaming ECMA-376 agile writer, checked by independent readers.

msoffcrypto-tool decrypts what payhub writes (password checked, HMAC verified)
and olefile, in its strictest mode, reads the compound file; an Excel-written
encrypted workbook from msoffcrypto-tool's test suite (fixtures/office/SOURCES.md)
is the reference for the reading side and for the streams Excel expects.
"""

from __future__ import annotations

import io
import os
import tracemalloc
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path

import msoffcrypto
import olefile
import openpyxl
import pytest
import xlsxwriter

from payhub.errors import ReportError
from payhub.reports._agile import AgileEncryptor, data_spaces
from payhub.reports._cfb import Stream, Write, write_compound
from payhub.reports._crypto import decrypt_xlsx, encrypt_xlsx

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "office"
EXCEL_PASSWORD = "Password1234_"  # fixtures/office/SOURCES.md
PASSWORD = "Tr0ub4dor&3-报表"
DATA_SPACES = [
    ["\x06DataSpaces", "DataSpaceInfo", "StrongEncryptionDataSpace"],
    ["\x06DataSpaces", "DataSpaceMap"],
    ["\x06DataSpaces", "TransformInfo", "StrongEncryptionTransform", "\x06Primary"],
    ["\x06DataSpaces", "Version"],
]


def strict(path: Path) -> olefile.OleFileIO:
    """olefile raising on anything it finds even potentially wrong."""
    return olefile.OleFileIO(str(path), raise_defects=olefile.DEFECT_POTENTIAL)


def msoffcrypto_decrypt(path: Path, password: str) -> bytes:
    """Decrypt with msoffcrypto-tool, the password verified and the HMAC checked."""
    out = io.BytesIO()
    with path.open("rb") as handle:
        office = msoffcrypto.OfficeFile(handle)
        assert (office.format, office.type) == ("ooxml", "agile")
        office.load_key(password=password, verify_password=True)
        office.decrypt(out, verify_integrity=True)
    return out.getvalue()


def zip_of_size(path: Path, size: int) -> bytes:
    """A zip of exactly ``size`` bytes of random content (msoffcrypto-tool only
    accepts a decryption that gives a zip); 22 bytes is an empty zip."""
    with zipfile.ZipFile(path, "w") as archive:
        if size != 22:  # 30 + 46 header bytes, 1 + 1 for the name, 22 of end record
            archive.writestr("r", os.urandom(size - 100))
    data = path.read_bytes()
    assert len(data) == size
    return data


# -- the reading side and Excel's reference -------------------------------------------------


def test_an_excel_encrypted_workbook_is_decrypted_and_a_wrong_password_refused() -> None:
    sealed = FIXTURES / "example_password.xlsx"
    assert decrypt_xlsx(sealed, EXCEL_PASSWORD) == (FIXTURES / "example.xlsx").read_bytes()
    with pytest.raises(ReportError, match="wrong password"):
        decrypt_xlsx(sealed, "password1234_")


def test_the_data_space_streams_are_excels_byte_for_byte() -> None:
    excel = strict(FIXTURES / "example_password.xlsx")
    for stream in data_spaces():
        written = bytearray()
        stream.fill(written.extend)
        assert len(written) == stream.size
        assert bytes(written) == excel.openstream(list(stream.path)).read(), stream.path


def test_the_encryption_info_has_excels_shape(tmp_path: Path) -> None:
    plain = tmp_path / "plain.xlsx"
    zip_of_size(plain, 5000)
    encrypt_xlsx(plain, tmp_path / "sealed.xlsx", PASSWORD)
    ours = strict(tmp_path / "sealed.xlsx").openstream("EncryptionInfo").read()
    excel = strict(FIXTURES / "example_password.xlsx").openstream("EncryptionInfo").read()
    assert ours[:8] == excel[:8] == b"\x04\x00\x04\x00\x40\x00\x00\x00"  # agile, 4.4
    assert len(ours) == len(excel) == 1289

    def shape(info: bytes) -> Iterator[tuple[str, dict[str, str]]]:
        for element in ET.fromstring(info[8:]).iter():
            # every attribute but the random values (salts, encrypted keys, HMAC)
            yield (
                element.tag,
                {k: v for k, v in element.attrib.items() if not k.startswith(("salt", "encrypted"))}
                | {"keys": ",".join(sorted(element.attrib))},
            )

    assert list(shape(ours)) == list(shape(excel))
    assert b'spinCount="100000"' in ours
    assert b'cipherAlgorithm="AES"' in ours
    assert b'hashAlgorithm="SHA512"' in ours


# -- round trips through independent readers ------------------------------------------------

#: plain sizes around the 4096-byte segment, the mini-stream cutoff (an encrypted
#: package below 4096 bytes lives in the mini stream: plain <= 4080), one FAT
#: sector's 128 sectors (64 KB), and DIFAT (past 109 FAT sectors, ~7 MB; two
#: DIFAT sectors past 236, ~15.5 MB)
SIZES = [22, 100, 4080, 4081, 4095, 4096, 4097, 8192, 8193, 60912, 60928, 7_500_000, 16_000_000]


@pytest.mark.parametrize("size", SIZES)
def test_msoffcrypto_and_olefile_read_what_is_written(tmp_path: Path, size: int) -> None:
    plain, sealed = tmp_path / "plain.xlsx", tmp_path / "sealed.xlsx"
    data = zip_of_size(plain, size)
    encrypt_xlsx(plain, sealed, PASSWORD)
    assert msoffcrypto_decrypt(sealed, PASSWORD) == data
    ole = strict(sealed)
    assert sorted(ole.listdir()) == sorted([["EncryptedPackage"], ["EncryptionInfo"], *DATA_SPACES])
    package = ole.get_size("EncryptedPackage")
    assert package == 8 + -(-size // 16) * 16  # size prefix, then whole AES blocks
    assert ole.openstream("EncryptedPackage").read(8) == size.to_bytes(8, "little")
    if size == 60912:  # 128 sectors: one FAT sector exactly full
        assert (ole.num_fat_sectors, ole.num_difat_sectors) == (1, 0)
    if size == 60928:
        assert (ole.num_fat_sectors, ole.num_difat_sectors) == (2, 0)
    if size == 7_500_000:
        assert ole.num_fat_sectors > 109
        assert ole.num_difat_sectors == 1
    if size == 16_000_000:
        assert ole.num_difat_sectors == 2


def test_a_wrong_password_is_refused(tmp_path: Path) -> None:
    plain, sealed = tmp_path / "plain.xlsx", tmp_path / "sealed.xlsx"
    zip_of_size(plain, 9000)
    encrypt_xlsx(plain, sealed, PASSWORD)
    with pytest.raises(ReportError, match="wrong password"):
        decrypt_xlsx(sealed, PASSWORD + " ")
    with sealed.open("rb") as handle:
        office = msoffcrypto.OfficeFile(handle)
        with pytest.raises(msoffcrypto.exceptions.InvalidKeyError):
            office.load_key(password="wrong", verify_password=True)


def test_a_damaged_package_fails_the_integrity_check(tmp_path: Path) -> None:
    plain, sealed = tmp_path / "plain.xlsx", tmp_path / "sealed.xlsx"
    zip_of_size(plain, 9000)
    encrypt_xlsx(plain, sealed, PASSWORD)
    damaged = bytearray(sealed.read_bytes())
    start = strict(sealed).direntries[1]  # EncryptedPackage, written right after Root
    assert start.name == "EncryptedPackage"
    damaged[512 * (1 + start.isectStart) + 100] ^= 1
    sealed.write_bytes(bytes(damaged))
    with pytest.raises(msoffcrypto.exceptions.InvalidKeyError, match="integrity"):
        msoffcrypto_decrypt(sealed, PASSWORD)


def test_a_real_workbook_round_trips_and_excels_reader_sees_its_cells(tmp_path: Path) -> None:
    plain, sealed = tmp_path / "plain.xlsx", tmp_path / "sealed.xlsx"
    with xlsxwriter.Workbook(str(plain), {"constant_memory": True}) as book:
        sheet = book.add_worksheet("余额明细")
        sheet.write_row(0, 0, ["流水号", "金额"])
        for row in range(1, 3001):
            sheet.write_string(row, 0, f"B{row:012d}")
            sheet.write_number(row, 1, row / 100)
    encrypt_xlsx(plain, sealed, PASSWORD)
    assert decrypt_xlsx(sealed, PASSWORD) == plain.read_bytes()
    book = openpyxl.load_workbook(io.BytesIO(decrypt_xlsx(sealed, PASSWORD)), read_only=True)
    rows = list(book["余额明细"].iter_rows(values_only=True))
    assert rows[0] == ("流水号", "金额")
    assert rows[3000] == ("B000000003000", 30)


def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    def peak(size: int) -> int:
        plain, sealed = tmp_path / f"plain-{size}.xlsx", tmp_path / f"sealed-{size}.xlsx"
        zip_of_size(plain, size)
        tracemalloc.start()
        try:
            encrypt_xlsx(plain, sealed, PASSWORD)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(5000)  # imports out of the way
    small, big = peak(200_000), peak(12_000_000)
    # a few 64 KB chunks and one FAT sector at a time, whatever the size
    assert big < 512 * 1024
    assert big < small + 64 * 1024


# -- the compound-file writer on its own ----------------------------------------------------


def _const(path: tuple[str, ...], data: bytes) -> Stream:
    def fill(write: Write) -> None:
        write(data[: len(data) // 2])
        write(data[len(data) // 2 :])

    return Stream(path, len(data), fill)


def _cfb_less(a: str, b: str) -> bool:
    """[MS-CFB] 2.6.4: shorter names first, then by upper-cased code points."""
    return (len(a), a.upper()) < (len(b), b.upper())


def test_a_compound_file_with_many_siblings_reads_back_and_its_trees_are_red_black(
    tmp_path: Path,
) -> None:
    contents = {
        ("Root10", f"s{n:02d}" * (1 + n % 3)): os.urandom([0, 1, 63, 64, 4095, 4096, 5000][n % 7])
        for n in range(23)
    } | {("Big",): os.urandom(70_000), ("a",): b"x", ("Root10", "Inner", "deep"): b"yy"}
    streams = [_const(name, data) for name, data in contents.items()]
    path = tmp_path / "many.cfb"
    with path.open("wb") as out:
        write_compound(out, streams)
    ole = strict(path)
    for name, data in contents.items():
        assert ole.openstream(list(name)).read() == data, name
    assert len(ole.listdir()) == len(contents)
    storages = [
        e for e in ole.direntries if e is not None and e.entry_type == olefile.STGTY_STORAGE
    ]
    assert {e.name for e in storages} == {"Root10", "Inner"}
    assert all((e.isectStart, e.size) == (0, 0) for e in storages)  # [MS-CFB] 2.6.3

    def black_height(sid: int, parent_red: bool, low: str | None, high: str | None) -> int:
        if sid == olefile.NOSTREAM:
            return 1
        entry = ole.direntries[sid]
        red = entry.color == 0  # [MS-CFB] 2.6.1: 0 red, 1 black
        assert not (red and parent_red), entry.name
        assert low is None or _cfb_less(low, entry.name), entry.name
        assert high is None or _cfb_less(entry.name, high), entry.name
        left = black_height(entry.sid_left, red, low, entry.name)
        right = black_height(entry.sid_right, red, entry.name, high)
        assert left == right, entry.name
        if entry.sid_child != olefile.NOSTREAM:
            black_height(entry.sid_child, False, None, None)
        return left + (0 if red else 1)

    black_height(ole.root.sid_child, False, None, None)


def test_a_stream_that_does_not_write_its_declared_size_is_refused(tmp_path: Path) -> None:
    short = Stream(("short",), 10, lambda write: write(b"123"))
    with (tmp_path / "x.cfb").open("wb") as out, pytest.raises(ValueError, match="3 bytes"):
        write_compound(out, [short])


def test_a_workbook_past_the_containers_stream_limit_is_refused_before_writing(
    tmp_path: Path,
) -> None:
    plain, sealed = tmp_path / "plain.xlsx", tmp_path / "sealed.xlsx"
    with plain.open("wb") as handle:  # sparse: 2 GiB of nothing on disk
        handle.truncate(0x80000000)
    with pytest.raises(ReportError, match="too large to encrypt as one workbook"):
        encrypt_xlsx(plain, sealed, PASSWORD)
    assert not sealed.exists()


def test_a_workbook_that_changes_while_being_encrypted_is_an_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain.xlsx"
    zip_of_size(plain, 9000)
    encryptor = AgileEncryptor(PASSWORD)
    with plain.open("rb") as source, (tmp_path / "sealed.xlsx").open("wb") as out:
        # sized before it grew by a byte: what a writer still appending would cause
        streams = encryptor.streams(source, 8999)
        with pytest.raises(ReportError, match="changed while being encrypted"):
            write_compound(out, streams)


def test_a_source_giving_short_reads_is_refused_rather_than_misaligned(tmp_path: Path) -> None:
    class Trickle(io.BytesIO):  # an unbuffered pipe's behaviour: 1,000 bytes a read
        def read(self, size: int | None = -1) -> bytes:
            return super().read(1000)

    data = zip_of_size(tmp_path / "plain.xlsx", 9000)
    with (tmp_path / "sealed.xlsx").open("wb") as out:
        streams = AgileEncryptor(PASSWORD).streams(Trickle(data), len(data))
        with pytest.raises(ReportError, match="whole segments"):
            write_compound(out, streams)
