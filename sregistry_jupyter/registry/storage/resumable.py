"""A SHA-256 whose state can be saved and resumed in another process.

A multipart upload's parts may reach different registry processes; to verify the whole file's digest
without reading the assembled object back, the running hash travels with the upload: each part resumes
the state the previous part left. ``hashlib`` cannot export its state, so this drives OpenSSL's
``SHA256_CTX`` (a plain structure declared in ``<openssl/sha.h>``) through ctypes: the same assembly
code as ``hashlib``, and ctypes releases the GIL for each call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


class _Context(ctypes.Structure):
    _fields_ = [
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    ]


STATE_SIZE = ctypes.sizeof(_Context)


@functools.cache
def _libcrypto() -> ctypes.CDLL:
    path = ctypes.util.find_library("crypto")
    if path is None:
        raise RuntimeError("OpenSSL's libcrypto is needed for resumable SHA-256 and was not found")
    lib = ctypes.CDLL(path)
    context = ctypes.POINTER(_Context)
    lib.SHA256_Init.argtypes = [context]
    lib.SHA256_Update.argtypes = [context, ctypes.c_char_p, ctypes.c_size_t]
    lib.SHA256_Final.argtypes = [ctypes.c_char_p, context]
    return lib


class ResumableSHA256:
    """``update`` and ``hexdigest`` as in hashlib, plus ``state()`` / ``from_state()`` to carry it on."""

    def __init__(self) -> None:
        self._context = _Context()
        _libcrypto().SHA256_Init(ctypes.byref(self._context))

    @classmethod
    def from_state(cls, state: bytes) -> ResumableSHA256:
        if len(state) != STATE_SIZE:
            raise ValueError("not a saved SHA-256 state")
        hasher = cls.__new__(cls)
        hasher._context = _Context.from_buffer_copy(state)
        return hasher

    def state(self) -> bytes:
        return bytes(self._context)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        chunk = data if isinstance(data, bytes) else bytes(data)
        _libcrypto().SHA256_Update(ctypes.byref(self._context), chunk, len(chunk))

    def hexdigest(self) -> str:
        """The digest of everything so far; the hasher itself is left as it was."""
        copy = _Context.from_buffer_copy(bytes(self._context))
        out = ctypes.create_string_buffer(32)
        _libcrypto().SHA256_Final(out, ctypes.byref(copy))
        return out.raw.hex()
