"""Zip archives (``.npz``, ``.keras``) checked before any member is read: one meaning only.

Two readers of an ambiguous archive can see two different models: a scanner that takes the
first of two members named ``config.json`` and a loader that takes the last, or members whose
data overlap (the "zip bomb" layout, where many entries share one compressed stream). Refused
here, with the member named: duplicate names, names outside the format's members, data that
runs past the next entry or the end of the file, local headers that do not match the central
directory, and stored (uncompressed) members whose declared and stored sizes differ.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Callable

_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, 22 bytes, name length, extra length
_LOCAL_SIGNATURE = b"PK\x03\x04"


def check_archive(archive: zipfile.ZipFile, raw, size: int, allowed: Callable[[str], bool],
                  corrupt: Callable[[str], Exception]) -> None:
    """Raise ``corrupt(problem)`` unless every entry of ``archive`` (read from the binary file
    ``raw`` of ``size`` bytes) has a name ``allowed`` accepts, occurs once, and keeps its data
    in its own byte range inside the file."""
    infos = archive.infolist()
    seen: set[str] = set()
    for info in infos:
        if info.filename in seen:
            raise corrupt(f"member {info.filename!r} occurs twice (readers could disagree on "
                          "which one the file holds)")
        seen.add(info.filename)
        if not allowed(info.filename):
            raise corrupt(f"member {info.filename!r} is not part of the format")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise corrupt(f"member {info.filename!r} declares {info.file_size} bytes but "
                          f"stores {info.compress_size}")
    ends = sorted((info.header_offset, _data_end(info, raw, corrupt), info.filename)
                  for info in infos)
    for (start, end, name), following in zip(ends, [*ends[1:], None]):
        limit = following[0] if following else size
        if end > limit:
            what = f"member {following[2]!r}" if following else "the end of the file"
            raise corrupt(f"member {name!r} ({start}..{end}) overlaps {what} at {limit}")


def _data_end(info: zipfile.ZipInfo, raw, corrupt) -> int:
    """Where the data of ``info`` ends, from its local header."""
    raw.seek(info.header_offset)
    header = raw.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size:
        raise corrupt(f"member {info.filename!r}'s header lies past the end of the file")
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    if signature != _LOCAL_SIGNATURE or raw.read(name_length) != info.orig_filename.encode(
            "utf-8" if info.flag_bits & 0x800 else "cp437"):
        raise corrupt(f"member {info.filename!r}'s local header does not match the archive's "
                      "directory")
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length + \
        info.compress_size
