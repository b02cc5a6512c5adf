"""Tocsin's logs: one structured line per message, time zone in every timestamp,
key=value text or JSON, to stderr or syslog.

The per-message line is logged with its fields attached to the record
(``extra={FIELDS: {...}}``): the text formatter prints the message as key=value, the
JSON formatter prints the fields themselves, so scripts never parse text.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

FIELDS = "tocsin_fields"
LogFormat = Literal["text", "json"]
LogTarget = Literal["stderr", "syslog"]
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._-+,:/<>=[]")
_PLAIN_TEXT = re.compile(r"[a-zA-Z0-9@._\-+,:/<>=\[\]]*")  # only _PLAIN characters (one C pass)


def timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 with milliseconds and the local UTC offset: 2026-12-01T02:03:04.567+01:00."""
    return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


def kv_value(value: object) -> str:
    """A value as key=value text: lists comma-joined, ``-`` when empty, quoted when needed."""
    if value is None or value in ("", []):
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    text = str(value)
    if _PLAIN_TEXT.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)  # a quoted string with \" and \n escaped


def kv_line(fields: Mapping[str, object]) -> str:
    """``key=value key=value …`` in the order given."""
    return " ".join(f"{key}={kv_value(value)}" for key, value in fields.items())


def log_fields(
    logger: logging.Logger, level: int, head: tuple[str, str], fields: Mapping[str, object]
) -> None:
    """Log one structured line: ``VALUE: key=value …`` as text; as JSON, the fields with
    ``head`` (key, value) first: ``{"queue_id": "4XyZ1", "action": …}``."""
    if not logger.isEnabledFor(level):  # the key=value text is not built for nothing
        return
    key, value = head
    extra = {FIELDS: {key: value, **fields}}
    logger.log(level, "%s: %s", value, kv_line(fields), extra=extra)


class TextFormatter(logging.Formatter):
    """``2026-12-01T02:03:04.567+01:00 tocsin[123] INFO tocsin.message: Q1: action=…``."""

    def __init__(self, *, with_time: bool = True) -> None:
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        """One line (tracebacks, when any, follow on their own lines)."""
        text = f"tocsin[{record.process}] {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return f"{timestamp(record)} {text}" if self.with_time else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, pid, msg, and the message's fields."""

    def __init__(self, *, with_time: bool = True, prefix: str = "") -> None:
        super().__init__()
        self.with_time = with_time
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        data: dict[str, Any] = {}
        if self.with_time:
            data["ts"] = timestamp(record)
        data |= {"level": record.levelname.lower(), "logger": record.name, "pid": record.process}
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            data |= fields
        else:
            data["msg"] = record.getMessage()
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return self.prefix + json.dumps(data, ensure_ascii=False, default=str)


def make_handler(
    fmt: LogFormat, target: LogTarget, syslog_address: str = "/dev/log"
) -> logging.Handler:
    """A stderr or syslog (facility mail) handler with the chosen format.

    Syslog stamps its own time, so lines sent there carry none; they start with
    ``tocsin[pid]:`` as syslog tags do.
    """
    if target == "syslog":
        address: str | tuple[str, int] = syslog_address
        if ":" in syslog_address and not syslog_address.startswith("/"):
            host, _, port = syslog_address.rpartition(":")
            address = (host.strip("[]"), int(port))
        syslog = logging.handlers.SysLogHandler(
            address=address, facility=logging.handlers.SysLogHandler.LOG_MAIL
        )
        if fmt == "json":
            syslog.setFormatter(_SyslogTag(JsonFormatter(with_time=False)))
        else:
            syslog.setFormatter(_SyslogTag(TextFormatter(with_time=False), strip_tag=True))
        return syslog
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    return stream


class _SyslogTag(logging.Formatter):
    """Prefix ``tocsin[pid]: `` (the syslog tag) to another formatter's line."""

    def __init__(self, inner: logging.Formatter, *, strip_tag: bool = False) -> None:
        super().__init__()
        self.inner = inner
        self.strip_tag = strip_tag

    def format(self, record: logging.LogRecord) -> str:
        """The tagged line."""
        line = self.inner.format(record)
        if self.strip_tag:
            line = line.removeprefix(f"tocsin[{record.process}] ")
        return f"tocsin[{record.process}]: {line}"


def configure_logging(
    level: str,
    fmt: LogFormat = "text",
    target: LogTarget = "stderr",
    syslog_address: str = "/dev/log",
) -> None:
    """Replace the root handlers with one configured handler."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(fmt, target, syslog_address))
    root.setLevel(level.upper())
