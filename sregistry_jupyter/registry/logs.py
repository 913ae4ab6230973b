"""The registry's log: its own events and one line per request, as text for people or JSON lines for
log shippers (``RegistryApp.log_format``).

Everything goes through the package logger ``sregistry_jupyter`` (requests through its child
``sregistry_jupyter.access``), so ``--log-level`` governs all of it. A logged path never carries a
secret: capability signatures, share-link tokens and invitation codes are masked, and no header is
ever logged, so neither is ``Authorization``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tornado import web

from .errors import RegistryError

PACKAGE = "sregistry_jupyter"
ACCESS = f"{PACKAGE}.access"
MASK = "***"
FORMATS = ("text", "json")

# Query parameters whose values grant access: capability signatures (ours and S3's), OAuth codes and state.
SECRET_PARAMETERS = frozenset(
    {
        "signature",
        "token",
        "access_token",
        "code",
        "state",
        "password",
        "secret",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    }
)
# Path segments that are secrets themselves; share links keep their public key id (``shr_<key id>_``).
SECRET_PATHS = (
    (re.compile(r"^(/shares/)(shr_[a-z0-9]{12}_)?[^/]+"), rf"\g<1>\g<2>{MASK}"),
    (re.compile(r"^((?:/api/v1)?/invitations/)[^/]+"), rf"\g<1>{MASK}"),
)
SECRET_PREFIXES = ("/shares/", "/invitations/", "/api/v1/invitations/")
ACCESS_FIELDS = ("method", "path", "status", "ms", "user", "remote")
EVENT_FIELDS = ("event",)

log = logging.getLogger(PACKAGE)
access_log = logging.getLogger(ACCESS)


def loggable_path(uri: str) -> str:
    """``uri`` with the values of secret query parameters and secret path segments masked."""
    parts = urlsplit(uri)
    path = parts.path
    if path.startswith(SECRET_PREFIXES):
        for pattern, replacement in SECRET_PATHS:
            path = pattern.sub(replacement, path)
    if not parts.query:
        return path
    query = [
        (name, MASK if name.lower() in SECRET_PARAMETERS else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return f"{path}?{urlencode(query, safe='*/:')}"


def user_of(handler: web.RequestHandler) -> str | None:
    """The name of whoever the request was resolved to, without resolving anyone now."""
    principal = handler.__dict__.get("_principal") or handler.__dict__.get("principal")
    return getattr(principal, "name", None)


def log_request(handler: web.RequestHandler) -> None:
    """Tornado's ``log_function``: one line per finished request."""
    status = handler.get_status()
    request = handler.request
    fields = {
        "method": request.method,
        "path": loggable_path(request.uri or "/"),
        "status": status,
        "ms": round(1000.0 * request.request_time(), 2),
        "user": user_of(handler),
        "remote": request.remote_ip,
    }
    level = logging.ERROR if status >= 500 else logging.INFO
    access_log.log(
        level,
        "%d %s %s %.2fms %s %s",
        status,
        fields["method"],
        fields["path"],
        fields["ms"],
        fields["user"] or "-",
        fields["remote"],
        extra=fields,
    )


def log_handler_exception(handler: web.RequestHandler, exc_info: Any) -> None:
    """What Tornado's ``log_exception`` logs, with the path masked: a refusal in one line, a bug with its trace."""
    error = exc_info[1]
    request = handler.request
    where = f"{request.method} {loggable_path(request.uri or '/')}"
    if isinstance(error, RegistryError):
        log.info("%s -> %s %s", where, error.status, error.message)
    elif isinstance(error, web.HTTPError):
        if error.log_message:
            log.warning("%s -> %d %s", where, error.status_code, error.get_message())
    else:
        log.error("uncaught exception in %s from %s", where, request.remote_ip, exc_info=exc_info)


class TextFormatter(logging.Formatter):
    """``[I 2026-11-26 16:02:03.512 sregistry_jupyter] message``, like Jupyter's servers.

    A busy registry writes thousands of request lines a second: the date and time are formatted once per
    second (``strftime`` is the dearest part of a line), the milliseconds on every line."""

    def __init__(self) -> None:
        super().__init__("[%(levelname).1s %(asctime)s.%(msecs)03d %(name)s] %(message)s", "%Y-%m-%d %H:%M:%S")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._stamp = super().formatTime(record, datefmt)
            self._second = second
        return self._stamp


class JsonFormatter(logging.Formatter):
    """One JSON object per line with stable keys: ``time``, ``level``, ``logger``, ``message``; request
    lines add ``method``, ``path``, ``status``, ``ms``, ``user``, ``remote``; a traceback is ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*ACCESS_FIELDS, *EVENT_FIELDS):
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def logging_config(level: int | str, fmt: str) -> dict[str, Any]:
    """``logging.config.dictConfig`` settings: the package's and Tornado's loggers to standard error."""
    if fmt not in FORMATS:
        raise ValueError(f"log format is one of {', '.join(FORMATS)}, not {fmt!r}")
    formatter = TextFormatter if fmt == "text" else JsonFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"registry": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "registry", "stream": "ext://sys.stderr"}
        },
        "loggers": {
            PACKAGE: {"level": level, "handlers": ["stderr"], "propagate": False},
            "tornado": {"level": level, "handlers": ["stderr"], "propagate": False},
        },
    }
