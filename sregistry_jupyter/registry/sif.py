"""Read the metadata of a SIF (Singularity Image Format) file without trusting it.

The registry shows, on each image's page, what a pushed SIF says about itself: its architecture,
its partitions, its definition file, its labels and whether it carries signatures. This module
decodes the SIF global header and descriptor table to get those facts, in pure Python so that no
Singularity/Apptainer binary or Go toolchain is needed on the server.

The layout follows the reference implementation (github.com/sylabs/sif/v2/pkg/sif): structures are
written with Go's ``encoding/binary`` in little-endian order, which packs fields back to back with
no alignment padding and stores a ``bool`` as one byte.

Anyone may push bytes to the registry, so every field read from the file is hostile until checked:
counts and sizes are capped, offsets are checked before use, reads stay inside the file when its
size is known, text is decoded leniently, and malformed input yields ``None`` or a partial result
rather than an exception. Labels are kept only when they form a JSON object that survives being
stored as JSON again (no NaN/Infinity, no NUL characters, no lone surrogates).
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from collections.abc import Callable
from typing import Any

ReadAt = Callable[[int, int], bytes]

MAX_DESCRIPTORS = 1024
MAX_TEXT_OBJECT_SIZE = 256 * 1024

_INT64_MAX = 2**63 - 1

_MAGIC = b"SIF_MAGIC\x00"

# header: LaunchScript [32]byte, Magic [10]byte, Version [3]byte, Arch [3]byte, ID [16]byte,
# CreatedAt, ModifiedAt, DescriptorsFree, DescriptorsTotal, DescriptorsOffset, DescriptorsSize,
# DataOffset, DataSize int64.
_HEADER = struct.Struct("<32s10s3s3s16s8q")

# rawDescriptor: DataType int32, Used bool, ID, GroupID, LinkedID uint32, Offset, Size,
# SizeWithPadding, CreatedAt, ModifiedAt, UID, GID int64, Name [128]byte, Extra [384]byte.
_DESCRIPTOR = struct.Struct("<iBIII7q128s384s")

# partition (inside Extra): Fstype int32, Parttype int32, Arch [3]byte.
_PARTITION = struct.Struct("<ii3s")

_DATA_DEFFILE = 0x4001
_DATA_LABELS = 0x4003
_DATA_PARTITION = 0x4004
_DATA_SIGNATURE = 0x4005

_DATA_TYPE_NAMES = {
    0x4001: "Def.FILE",
    0x4002: "Env.Vars",
    0x4003: "JSON.Labels",
    0x4004: "FS",
    0x4005: "Signature",
    0x4006: "JSON.Generic",
    0x4007: "Generic/Raw",
    0x4008: "Cryptographic Message",
    0x4009: "SBOM",
}

_FS_TYPE_NAMES = {
    1: "Squashfs",
    2: "Ext3",
    3: "Archive",
    4: "Raw",
    5: "Encrypted squashfs",
}

_PART_PRIMARY_SYSTEM = 2

_PART_TYPE_NAMES = {
    1: "System",
    _PART_PRIMARY_SYSTEM: "Primary System",
    3: "Data",
    4: "Overlay",
}

_ARCH_NAMES = {
    b"01\x00": "386",
    b"02\x00": "amd64",
    b"03\x00": "arm",
    b"04\x00": "arm64",
    b"05\x00": "ppc64",
    b"06\x00": "ppc64le",
    b"07\x00": "mips",
    b"08\x00": "mipsle",
    b"09\x00": "mips64",
    b"10\x00": "mips64le",
    b"11\x00": "s390x",
    b"12\x00": "riscv64",
}

UNKNOWN_ARCH = "unknown"


class _Reader:
    """Reads through ``read_at`` without ever asking for bytes outside ``[0, size)``.

    Offsets and lengths come from the untrusted file, so they are clamped here once rather than
    at every call site. When the file size is unknown, reads still stay within the int64 range a
    SIF can address.
    """

    def __init__(self, read_at: ReadAt, size: int | None) -> None:
        self._read_at = read_at
        self._end = _INT64_MAX if size is None else max(0, min(size, _INT64_MAX))

    def read(self, offset: int, length: int) -> bytes:
        """Return at most ``length`` bytes at ``offset``; ``b""`` for an impossible range."""
        if offset < 0 or length <= 0 or offset >= self._end:
            return b""
        length = min(length, self._end - offset)
        data = self._read_at(offset, length)
        if not isinstance(data, bytes | bytearray | memoryview):
            return b""
        return bytes(data[:length])

    def read_untrusted(self, offset: int, length: int) -> bytes:
        """Like :meth:`read`, for ranges named by the file: storage refusing them means "absent".

        A hostile offset can be one the storage cannot seek to (a plain file raises ``OSError``
        past the filesystem's maximum size) when the caller did not give the file size.
        """
        try:
            return self.read(offset, length)
        except (OSError, ValueError, OverflowError):
            return b""


def _cstring(raw: bytes) -> str:
    """Decode a fixed-size, NUL-padded field as Go's ``TrimRight(..., "\\x00")`` would, leniently."""
    return _clean_text(raw.rstrip(b"\x00"))


def _clean_text(raw: bytes) -> str:
    """Decode bytes as UTF-8 text that any JSON column or database text type will accept."""
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _clean_str(value: str) -> str:
    """Make a string from parsed JSON storable: no NUL characters and no lone surrogates."""
    return value.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "\ufffd")


def _clean_json(value: Any) -> Any:
    """Apply :func:`_clean_str` to every string (keys included) in a parsed JSON value."""
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, dict):
        return {_clean_str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    return value


def _reject_constant(name: str) -> Any:
    """Refuse NaN and Infinity, which Python's json accepts but strict JSON stores reject."""
    raise ValueError(f"non-standard JSON constant {name}")


def _finite_float(text: str) -> float:
    """Parse a JSON number, refusing ones too large to be finite (``1e400``)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _parse_labels(text: str) -> dict[str, Any] | None:
    """Return the labels JSON object, or None when it is not a well-formed, storable object."""
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        if not isinstance(value, dict):
            return None
        return _clean_json(value)
    except (ValueError, RecursionError):
        return None


def _arch_name(raw: bytes) -> str:
    """Map a SIF architecture code to the Go architecture name, as ``archType.GoArch`` does."""
    return _ARCH_NAMES.get(raw, UNKNOWN_ARCH)


def _parse_header(raw: bytes) -> dict[str, Any] | None:
    """Decode the global header, or return None when ``raw`` is not the start of a SIF."""
    if len(raw) < _HEADER.size:
        return None
    (
        _launch,
        magic,
        version,
        arch,
        image_id,
        created_at,
        modified_at,
        _free,
        total,
        descr_offset,
        descr_size,
        _data_offset,
        _data_size,
    ) = _HEADER.unpack_from(raw)
    if magic != _MAGIC:
        return None
    return {
        "sif_version": _cstring(version),
        "id": str(uuid.UUID(bytes=image_id)),
        "created_at": created_at,
        "modified_at": modified_at,
        "arch": _arch_name(arch),
        "descriptors_total": total,
        "descriptors_offset": descr_offset,
        "descriptors_size": descr_size,
    }


def _descriptor_count(header: dict[str, Any]) -> int:
    """Number of descriptor records to read: what both header fields allow, capped."""
    by_size = max(0, header["descriptors_size"]) // _DESCRIPTOR.size
    return max(0, min(header["descriptors_total"], by_size, MAX_DESCRIPTORS))


def _parse_descriptors(raw: bytes) -> list[dict[str, Any]]:
    """Decode the complete, in-use descriptor records in ``raw`` (unused slots are free space)."""
    descriptors = []
    for start in range(0, len(raw) - _DESCRIPTOR.size + 1, _DESCRIPTOR.size):
        (
            data_type,
            used,
            object_id,
            group_id,
            linked_id,
            offset,
            size,
            _padded,
            created_at,
            _modified_at,
            _uid,
            _gid,
            name,
            extra,
        ) = _DESCRIPTOR.unpack_from(raw, start)
        if not used:
            continue
        descriptors.append(
            {
                "data_type": data_type,
                "id": object_id,
                "group_id": group_id,
                "linked_id": linked_id,
                "offset": offset,
                "size": size,
                "created_at": created_at,
                "name": _cstring(name),
                "extra": extra,
            }
        )
    return descriptors


def _partition_info(descriptor: dict[str, Any]) -> dict[str, Any]:
    """Describe a partition object from the partition record in its descriptor's Extra field."""
    fstype, parttype, arch = _PARTITION.unpack_from(descriptor["extra"])
    return {
        "id": descriptor["id"],
        "name": descriptor["name"],
        "fstype": _FS_TYPE_NAMES.get(fstype, "Unknown"),
        "parttype": _PART_TYPE_NAMES.get(parttype, "Unknown"),
        "primary": parttype == _PART_PRIMARY_SYSTEM,
        "arch": _arch_name(arch),
        "size": max(0, descriptor["size"]),
    }


def _object_info(descriptor: dict[str, Any]) -> dict[str, Any]:
    """Describe any data object for listing: id, type name, name and size."""
    return {
        "id": descriptor["id"],
        "type": _DATA_TYPE_NAMES.get(descriptor["data_type"], "Unknown"),
        "name": descriptor["name"],
        "size": max(0, descriptor["size"]),
    }


def _read_text_object(reader: _Reader, descriptor: dict[str, Any]) -> tuple[str, bool]:
    """Read up to :data:`MAX_TEXT_OBJECT_SIZE` bytes of an object; say whether it was cut short."""
    size = max(0, descriptor["size"])
    wanted = min(size, MAX_TEXT_OBJECT_SIZE)
    data = reader.read_untrusted(descriptor["offset"], wanted)
    return _clean_text(data.rstrip(b"\x00")), len(data) < size


def _first_of_type(descriptors: list[dict[str, Any]], data_type: int) -> dict[str, Any] | None:
    """The first in-use descriptor of ``data_type``, as the SIF tools pick a single object."""
    return next((d for d in descriptors if d["data_type"] == data_type), None)


def _primary_arch(partitions: list[dict[str, Any]], header_arch: str) -> str:
    """Arch of the primary system partition, else of the header (which SIF copies from it)."""
    for partition in partitions:
        if partition["primary"] and partition["arch"] != UNKNOWN_ARCH:
            return partition["arch"]
    return header_arch


def read_sif_metadata(read_at: ReadAt, size: int | None = None) -> dict[str, Any] | None:
    """Return the JSON-serialisable metadata of a SIF, or None when the bytes are not a SIF.

    ``read_at(offset, length)`` returns up to ``length`` bytes at ``offset`` (fewer at the end of
    the file). ``size`` is the file size when known: reads then never go past it, which also keeps
    hostile offsets away from storage that would reject them.

    Errors raised by ``read_at`` when reading the header propagate, since they concern the storage
    rather than the file; errors for ranges taken from the file only make those parts absent.
    """
    reader = _Reader(read_at, size)
    header = _parse_header(reader.read(0, _HEADER.size))
    if header is None:
        return None

    table = reader.read_untrusted(header["descriptors_offset"], _descriptor_count(header) * _DESCRIPTOR.size)
    descriptors = _parse_descriptors(table)
    partitions = [_partition_info(d) for d in descriptors if d["data_type"] == _DATA_PARTITION]
    signatures = sum(1 for d in descriptors if d["data_type"] == _DATA_SIGNATURE)

    metadata: dict[str, Any] = {
        "sif_version": header["sif_version"],
        "id": header["id"],
        "created_at": header["created_at"],
        "modified_at": header["modified_at"],
        "arch": _primary_arch(partitions, header["arch"]),
        "partitions": partitions,
        "deffile": None,
        "deffile_truncated": False,
        "labels": None,
        "labels_truncated": False,
        "signed": signatures > 0,
        "signatures": signatures,
        "objects": [_object_info(d) for d in descriptors],
    }

    deffile = _first_of_type(descriptors, _DATA_DEFFILE)
    if deffile is not None:
        metadata["deffile"], metadata["deffile_truncated"] = _read_text_object(reader, deffile)

    labels = _first_of_type(descriptors, _DATA_LABELS)
    if labels is not None:
        text, truncated = _read_text_object(reader, labels)
        metadata["labels_truncated"] = truncated
        metadata["labels"] = None if truncated else _parse_labels(text)

    return metadata
