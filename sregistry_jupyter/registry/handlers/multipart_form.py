"""A streaming parser of ``multipart/form-data`` request bodies.

sregistry-cli uploads images (several GB) as a form, so the body is parsed as it arrives: small fields are
kept (with caps), the file part is handed on in pieces as they come, and no more than one boundary's
length is held back. Malformed forms are refused with InvalidInput.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import collapse_rfc2231_value
from typing import Protocol

from ..errors import InvalidInput

BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-]")
MAX_PART_HEADERS = 8192
MAX_PREAMBLE = 8192
MAX_PADDING = 64
FORM_OVERHEAD = 1 << 20


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None


class PartSink(Protocol):
    def begin_part(self, part: Part) -> None: ...

    def part_data(self, data: bytes) -> None: ...

    def end_part(self) -> None: ...


def boundary_of(content_type: str) -> str:
    """The boundary of a ``multipart/form-data`` Content-Type; InvalidInput for anything else."""
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    if message.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise InvalidInput("send the upload as multipart/form-data with a boundary")
    if not BOUNDARY_RE.fullmatch(boundary):
        raise InvalidInput("invalid multipart boundary")
    return boundary


def parse_part_headers(block: bytes) -> Part:
    message = HeaderParser().parsestr(block.decode("utf-8", "replace") + "\r\n\r\n")
    name = message.get_param("name", header="content-disposition")
    if message.get_content_disposition() != "form-data" or name is None:
        raise InvalidInput("every multipart part needs Content-Disposition: form-data with a name")
    return Part(collapse_rfc2231_value(name), message.get_filename())


class MultipartReader:
    """An incremental ``multipart/form-data`` parser (RFC 7578) fed with chunks of any size.

    Part bodies are handed to the sink as they arrive, holding back only what could be the start of a
    boundary, so a file part of any size passes through in constant memory. Preamble, part headers and
    boundary padding are capped; the epilogue after the closing boundary is ignored.
    """

    def __init__(self, boundary: str, sink: PartSink) -> None:
        self.delimiter = b"\r\n--" + boundary.encode("ascii")
        self.sink = sink
        self.buffer = bytearray(b"\r\n")
        self.step = self._preamble
        self.skipped = 0
        self.complete = False

    def feed(self, data: bytes) -> None:
        if self.complete:
            return
        self.buffer += data
        while self.step():
            pass

    def close(self) -> None:
        if not self.complete:
            raise InvalidInput("the multipart body is truncated: its closing boundary is missing")

    def _emit(self, length: int) -> None:
        with memoryview(self.buffer) as view:
            data = bytes(view[:length])
        del self.buffer[:length]
        self.sink.part_data(data)

    def _preamble(self) -> bool:
        index = self.buffer.find(self.delimiter)
        keep = len(self.delimiter) - 1
        if index < 0:
            if len(self.buffer) > keep:
                self.skipped += len(self.buffer) - keep
                del self.buffer[:-keep]
            if self.skipped > MAX_PREAMBLE:
                raise InvalidInput("the body does not start with the multipart boundary")
            return False
        del self.buffer[: index + len(self.delimiter)]
        self.step = self._after_delimiter
        return True

    def _after_delimiter(self) -> bool:
        if len(self.buffer) < 2:
            return False
        if self.buffer.startswith(b"--"):
            self.complete = True
            self.buffer.clear()
            return False
        end = self.buffer.find(b"\r\n")
        if end < 0 and len(self.buffer) <= MAX_PADDING:
            return False
        if end < 0 or self.buffer[:end].strip(b" \t"):
            raise InvalidInput("malformed multipart boundary line")
        del self.buffer[: end + 2]
        self.step = self._headers
        return True

    def _headers(self) -> bool:
        if self.buffer.startswith(b"\r\n"):
            end, consumed = 0, 2
        else:
            end = self.buffer.find(b"\r\n\r\n")
            consumed = end + 4
        if end < 0 or end > MAX_PART_HEADERS:
            if len(self.buffer) > MAX_PART_HEADERS:
                raise InvalidInput(f"the headers of a multipart part exceed {MAX_PART_HEADERS} bytes")
            return False
        block = bytes(self.buffer[:end])
        del self.buffer[:consumed]
        self.sink.begin_part(parse_part_headers(block))
        self.step = self._body
        return True

    def _body(self) -> bool:
        index = self.buffer.find(self.delimiter)
        if index < 0:
            keep = len(self.delimiter) - 1
            if len(self.buffer) > keep:
                self._emit(len(self.buffer) - keep)
            return False
        if index:
            self._emit(index)
        del self.buffer[: len(self.delimiter)]
        self.sink.end_part()
        self.step = self._after_delimiter
        return True
