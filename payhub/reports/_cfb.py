"""A streaming writer of Compound File Binary containers ([MS-CFB], version 3).

An encrypted workbook is such a container (an "OLE file") holding the encrypted
package and a few small streams. Everything about the layout follows from the
streams' sizes, which are known before any content is written: the FAT, DIFAT,
MiniFAT and directory are written first, then every stream's content exactly
once, in one pass, so a multi-gigabyte stream never has to be held in memory.

Layout, in file order (512-byte sectors after the 512-byte header):

* DIFAT sectors (only past 109 FAT sectors, about 7 MB of content), then the
  FAT sectors, the MiniFAT, the directory;
* each stream of 4096 bytes or more in its own run of contiguous sectors;
* the mini stream (the root entry's stream, contiguous too) holding the
  streams below 4096 bytes, in 64-byte mini sectors.

Each storage's children form a red-black tree (balanced, the bottom level red
when it is not full), ordered the way [MS-CFB] compares names: shorter first,
then by upper-cased code points. Timestamps are left zero (the spec allows it);
a storage's start sector and size are zero, an empty stream starts at ENDOFCHAIN.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

__all__ = ["MAX_STREAM_SIZE", "MINI_STREAM_CUTOFF", "Stream", "write_compound"]

SECTOR = 512
MINI_SECTOR = 64
MINI_STREAM_CUTOFF = 4096
#: a version 3 file's stream sizes: [MS-CFB] 2.6.3 caps them at 0x80000000
MAX_STREAM_SIZE = 0x80000000
_IDS_PER_SECTOR = SECTOR // 4
_DIFAT_IN_HEADER = 109
_DIFSECT, _FATSECT, _ENDOFCHAIN, _FREESECT = 0xFFFFFFFC, 0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFF
_NOSTREAM = 0xFFFFFFFF
_SIGNATURE = bytes.fromhex("d0cf11e0a1b11ae1")
_STORAGE, _STREAM, _ROOT = 1, 2, 5
_RED, _BLACK = 0, 1

#: something that takes bytes: a file's ``write``
Write = Callable[[bytes], object]


@dataclass(frozen=True)
class Stream:
    """A stream of ``size`` bytes at ``path`` (storage names, then the stream's name).

    ``fill`` is called once with a ``write`` function and must pass it exactly
    ``size`` bytes, in as many calls as it likes.
    """

    path: tuple[str, ...]
    size: int
    fill: Callable[[Write], None]


@dataclass
class _Entry:
    name: str
    kind: int
    stream: Stream | None = None
    children: list[_Entry] = field(default_factory=list)
    sid: int = 0
    left: int = _NOSTREAM
    right: int = _NOSTREAM
    child: int = _NOSTREAM
    color: int = _BLACK
    start: int = _ENDOFCHAIN
    size: int = 0


def _blocks(size: int, block: int) -> int:
    return -(-size // block)


def _sort_key(entry: _Entry) -> tuple[int, str]:
    return len(entry.name.encode("utf-16-le")), entry.name.upper()


def _tree(entries: list[_Entry], depth: int, red_depth: int) -> int:
    """Link sorted siblings into a balanced binary tree; the root's id.

    A middle split keeps every level full but the deepest (``red_depth``), whose
    nodes are red: each path down has the same number of black nodes, and no red
    node has a red child, so it is a red-black tree.
    """
    if not entries:
        return _NOSTREAM
    middle = (len(entries) - 1) // 2
    node = entries[middle]
    node.color = _RED if depth == red_depth else _BLACK
    node.left = _tree(entries[:middle], depth + 1, red_depth)
    node.right = _tree(entries[middle + 1 :], depth + 1, red_depth)
    return node.sid


def _directory(streams: Sequence[Stream]) -> list[_Entry]:
    """The directory entries, the root first, siblings linked and children set."""
    root = _Entry("Root Entry", _ROOT)
    entries = [root]
    for stream in streams:
        parent = root
        for depth, name in enumerate(stream.path):
            last = depth == len(stream.path) - 1
            if not 0 < len(name) <= 31 or any(c in name for c in "/\\:!"):
                raise ValueError(f"invalid compound-file name {name!r}")
            found = next((e for e in parent.children if e.name.upper() == name.upper()), None)
            if found is not None and (last or found.kind != _STORAGE):
                raise ValueError(f"duplicate compound-file entry {'/'.join(stream.path)!r}")
            if found is None:
                found = _Entry(name, _STREAM if last else _STORAGE, stream if last else None)
                found.sid = len(entries)
                entries.append(found)
                parent.children.append(found)
            parent = found
    for entry in entries:
        siblings = sorted(entry.children, key=_sort_key)
        full_levels = (len(siblings) + 1).bit_length() - 1
        entry.child = _tree(siblings, 0, full_levels)
    return entries


def _pack_entry(entry: _Entry | None) -> bytes:
    if entry is None:  # an unused slot
        return (
            bytes(64 + 2 + 2)
            + struct.pack("<III", _NOSTREAM, _NOSTREAM, _NOSTREAM)
            + bytes(16 + 4 + 8 + 8 + 4 + 8)
        )
    name = entry.name.encode("utf-16-le") + b"\0\0"
    return (
        name.ljust(64, b"\0")
        + struct.pack("<HBB", len(name), entry.kind, entry.color)
        + struct.pack("<III", entry.left, entry.right, entry.child)
        + bytes(16 + 4 + 8 + 8)  # CLSID, state bits, creation and modification time
        + struct.pack("<IQ", entry.start, entry.size)
    )


def _chain(start: int, length: int) -> Iterator[int]:
    """The FAT (or MiniFAT) entries of ``length`` contiguous sectors from ``start``."""
    if length:
        yield from range(start + 1, start + length)
        yield _ENDOFCHAIN


def _sectors(ids: Iterator[int], per: int = _IDS_PER_SECTOR) -> Iterator[bytes]:
    """``ids`` packed ``per`` a sector, the last sector filled with free entries."""
    while batch := list(itertools.islice(ids, per)):
        batch += [_FREESECT] * (per - len(batch))
        yield struct.pack(f"<{per}I", *batch)


class _Counted:
    """A ``write`` that counts, so a stream's ``fill`` is held to its size."""

    def __init__(self, write: Write) -> None:
        self._write = write
        self.count = 0

    def __call__(self, data: bytes) -> None:
        self.count += len(data)
        self._write(data)


def write_compound(out: BinaryIO, streams: Sequence[Stream]) -> None:
    """Write a compound file holding ``streams`` to ``out``, front to back.

    Streams of 4096 bytes or more are written first, in the order given, then the
    smaller ones (the mini stream), in the order given: a stream's ``fill`` is
    called after that of every stream before it in ``streams`` that is larger or
    equally small, so a small stream listed last can hold something computed
    while the others were written (a digest of them, say). No seeking: ``out``
    may be a pipe.
    """
    entries = _directory(streams)
    big = [e for e in entries if e.stream is not None and e.stream.size >= MINI_STREAM_CUTOFF]
    small = [e for e in entries if e.stream is not None and e.stream.size < MINI_STREAM_CUTOFF]
    for entry in entries[1:]:
        if entry.kind == _STORAGE:
            entry.start = 0  # [MS-CFB] 2.6.3: a storage's start sector is all zeroes
    for entry in big + small:
        assert entry.stream is not None
        if entry.stream.size > MAX_STREAM_SIZE:
            raise ValueError(f"stream {entry.name!r} exceeds {MAX_STREAM_SIZE} bytes")
        entry.size = entry.stream.size

    mini_sectors = 0
    for entry in small:
        if entry.size:
            entry.start = mini_sectors
            mini_sectors += _blocks(entry.size, MINI_SECTOR)
        else:
            entry.start = _ENDOFCHAIN
    minifat = _blocks(mini_sectors, _IDS_PER_SECTOR)
    mini_stream = _blocks(mini_sectors * MINI_SECTOR, SECTOR)
    directory = _blocks(len(entries), SECTOR // 128)
    content = minifat + directory + mini_stream + sum(_blocks(e.size, SECTOR) for e in big)
    fat = difat = 0
    while True:  # the FAT covers itself and the DIFAT: iterate to the fixed point
        need_fat = _blocks(difat + fat + content, _IDS_PER_SECTOR)
        need_difat = _blocks(max(0, need_fat - _DIFAT_IN_HEADER), _IDS_PER_SECTOR - 1)
        if (need_fat, need_difat) == (fat, difat):
            break
        fat, difat = need_fat, need_difat

    first_fat = difat
    first_minifat = first_fat + fat
    first_directory = first_minifat + minifat
    position = first_directory + directory
    for entry in big:
        entry.start = position
        position += _blocks(entry.size, SECTOR)
    root = entries[0]
    root.start = position if mini_sectors else _ENDOFCHAIN
    root.size = mini_sectors * MINI_SECTOR

    fat_ids = list(range(first_fat, first_fat + fat))
    out.write(
        _SIGNATURE
        + bytes(16)  # CLSID
        + struct.pack("<HHHHH", 0x003E, 3, 0xFFFE, 9, 6)  # minor, major, byte order, shifts
        + bytes(6)
        + struct.pack(
            "<IIIIIIIII",
            0,  # directory sectors: always 0 in version 3
            fat,
            first_directory,
            0,  # transaction signature
            MINI_STREAM_CUTOFF,
            first_minifat if minifat else _ENDOFCHAIN,
            minifat,
            0 if difat else _ENDOFCHAIN,
            difat,
        )
        + struct.pack(
            f"<{_DIFAT_IN_HEADER}I",
            *(fat_ids[:_DIFAT_IN_HEADER] + [_FREESECT] * (_DIFAT_IN_HEADER - len(fat_ids))),
        )
    )
    # DIFAT sectors: 127 FAT sector ids each, then the next DIFAT sector's
    rest = fat_ids[_DIFAT_IN_HEADER:]
    for n in range(difat):
        ids = rest[n * (_IDS_PER_SECTOR - 1) : (n + 1) * (_IDS_PER_SECTOR - 1)]
        ids += [_FREESECT] * (_IDS_PER_SECTOR - 1 - len(ids))
        following = n + 1 if n + 1 < difat else _ENDOFCHAIN
        out.write(struct.pack(f"<{_IDS_PER_SECTOR}I", *ids, following))
    chains = itertools.chain(
        itertools.repeat(_DIFSECT, difat),
        itertools.repeat(_FATSECT, fat),
        _chain(first_minifat, minifat),
        _chain(first_directory, directory),
        *(_chain(e.start, _blocks(e.size, SECTOR)) for e in big),
        _chain(root.start, mini_stream),
    )
    for sector in _sectors(chains):
        out.write(sector)
    mini_chains = itertools.chain(
        *(_chain(e.start, _blocks(e.size, MINI_SECTOR)) for e in small if e.size)
    )
    for sector in _sectors(mini_chains):
        out.write(sector)
    slots = directory * (SECTOR // 128)
    for sid in range(slots):
        out.write(_pack_entry(entries[sid] if sid < len(entries) else None))

    for entry, unit in [(e, SECTOR) for e in big] + [(e, MINI_SECTOR) for e in small]:
        assert entry.stream is not None
        counted = _Counted(out.write)
        entry.stream.fill(counted)
        if counted.count != entry.size:
            raise ValueError(
                f"stream {entry.name!r}: {counted.count} bytes written, {entry.size} declared"
            )
        out.write(bytes(-entry.size % unit))
    out.write(bytes(-(mini_sectors * MINI_SECTOR) % SECTOR))
