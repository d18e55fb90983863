"""The ``metadata_props`` of an ONNX file, read straight from its protobuf bytes.

``import onnx`` alone costs about a second (it pulls in ml_dtypes and protobuf's descriptors), and
opening an onnxruntime session builds the whole graph; a prediction only needs the few metadata
strings at the top level of the ``ModelProto``. This reader walks the top-level fields of the file,
seeking past every field it does not need (the graph with its weights is one such field), so it
reads a few hundred bytes of even a large model. Anything unexpected raises ``ValueError`` and the
caller falls back to the ``onnx`` package.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

_METADATA_PROPS = 14  # ModelProto.metadata_props: repeated StringStringEntryProto {key = 1; value = 2}


def _varint(read) -> int | None:
    shift = result = 0
    while True:
        byte = read(1)
        if not byte:
            if shift == 0:
                return None  # a clean end of the message
            raise ValueError("truncated varint")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(stream: BinaryIO, size: int | None = None):
    """``(field number, wire type, payload or None)`` of a message; LEN payloads other than the ones
    asked for are skipped with a seek (payload ``None``)."""
    end = None if size is None else stream.tell() + size
    while end is None or stream.tell() < end:
        tag = _varint(stream.read)
        if tag is None:
            if end is not None:
                raise ValueError("truncated message")
            return
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _varint(stream.read)
            yield number, wire, None
        elif wire == 1:
            stream.seek(8, 1)
            yield number, wire, None
        elif wire == 5:
            stream.seek(4, 1)
            yield number, wire, None
        elif wire == 2:
            length = _varint(stream.read)
            if length is None:
                raise ValueError("truncated length")
            yield number, wire, length
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if end is not None and stream.tell() > end:
            raise ValueError("field runs past its message")


def read_props(path: str | Path) -> dict[str, str]:
    """``{key: value}`` of the file's ``metadata_props`` (later duplicates win, as in ``onnx``)."""
    props: dict[str, str] = {}
    size = Path(path).stat().st_size
    with open(path, "rb") as stream:
        for number, wire, length in _fields(stream):
            if wire != 2:
                continue
            start = stream.tell()
            if start + length > size:
                raise ValueError("field runs past the end of the file")
            if number == _METADATA_PROPS:
                entry = {1: "", 2: ""}
                for sub, sub_wire, sub_len in _fields(stream, length):
                    if sub_wire == 2:
                        data = stream.read(sub_len)
                        if sub in entry:
                            entry[sub] = data.decode("utf-8")
                props[entry[1]] = entry[2]
            stream.seek(start + length)
    return props
