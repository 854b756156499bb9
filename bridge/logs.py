"""Logging: structlog for our own events, stdlib loggers (apscheduler, httpx) through the same
pipeline. One JSON object per line when not on a terminal (under systemd each line starts with
the syslog priority, `<4>{...}`, so `journalctl -p warning` works); colours on a terminal.
Tracebacks never show local variables, and registered secret values are masked everywhere, in
every form in which they can be printed (`secret_forms`): in each event, in each finished line
and in a traceback that reaches the top of the process.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

_PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}
MASK = "[secret]"
# Shorter values would mask ordinary words; config validation keeps real secrets longer.
MIN_SECRET_LENGTH = 4

# What stays as it is when a secret is percent-encoded, one string per encoder that can print
# it: httpx (WHATWG URL standard) in a path, in a query, in user info; urllib's quote() with
# its default safe "/"; quote(safe="") and quote_plus(), which keep only the unreserved set.
_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_PRINTABLE = "".join(chr(i) for i in range(0x20, 0x7F))
_KEPT_BY_ENCODER = (
    "".join(c for c in _PRINTABLE if c not in ' "#<>?`{}'),  # WHATWG path (httpx's URL log line)
    "".join(c for c in _PRINTABLE if c not in ' "#<>'),  # WHATWG query
    "".join(c for c in _PRINTABLE if c not in ' "#<>?`{}/:;=@[\\]^|'),  # WHATWG user info
    _UNRESERVED + "/",  # urllib.parse.quote(), default safe
    _UNRESERVED,  # quote(safe=""), quote_plus(), encodeURIComponent-like encoders
)


def _percent_encoded(secret: str, kept: str, *, plus: bool, lower: bool) -> str:
    def encode(char: str) -> str:
        if char in kept:
            return char
        if char == " " and plus:
            return "+"
        hex_bytes = char.encode("utf-8").hex().upper()
        text = "".join(f"%{hex_bytes[i:i + 2]}" for i in range(0, len(hex_bytes), 2))
        return text.lower() if lower else text

    return "".join(encode(c) for c in secret)


def _escaped(text: str) -> Iterator[str]:
    """`text` as the body of a string literal shows it: JSON (backslash and double quote
    escaped, some encoders also escape "/"), Python's repr of a str or of bytes (backslash
    and the delimiting quote escaped, control characters as escapes)."""
    doubled = text.replace("\\", "\\\\")
    yield text
    yield doubled
    yield doubled.replace("'", "\\'")
    yield doubled.replace('"', '\\"')
    yield doubled.replace('"', '\\"').replace("/", "\\/")
    yield json.dumps(text)[1:-1]
    yield repr(text)[1:-1]


def secret_forms(secret: str) -> frozenset[str]:
    """Every form in which `secret` can be printed: as it is; percent-encoded as httpx
    writes it in a URL (path, query, user info) and as urllib's `quote`/`quote_plus` do,
    spaces as "%20" or "+", hex digits upper or lower case; and each of those as the body of
    a JSON string, of a Python `repr` (also of bytes) with either quote. The empty string
    has no forms.
    """
    if not secret:
        return frozenset()
    encoded = {secret}
    for kept in _KEPT_BY_ENCODER:
        for plus in (False, True):
            for lower in (False, True):
                encoded.add(_percent_encoded(secret, kept, plus=plus, lower=lower))
    return frozenset(form for text in encoded for form in _escaped(text) if form)


class SecretMask:
    """Replaces every form of a set of secrets in a text; forms are tried longest first, so
    a secret containing another is masked whole."""

    def __init__(self, secrets: Iterable[str] = (), *, mask: str = MASK) -> None:
        self.mask = mask
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these secrets too (their every form, see `secret_forms`)."""
        forms = {form for secret in secrets for form in secret_forms(secret)}
        if forms - self._forms:
            self._forms |= forms
            ordered = sorted(self._forms, key=lambda f: (-len(f), f))
            self._pattern = re.compile("|".join(re.escape(f) for f in ordered))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        """Return `text` with every form of every secret replaced by the mask."""
        return self._pattern.sub(self.mask, text) if self._pattern is not None else text


_mask = SecretMask()


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values (every form of them) in every log line from now on. Values shorter
    than MIN_SECRET_LENGTH are ignored: masking them would garble ordinary words."""
    _mask.add(v for v in values if v and len(v) >= MIN_SECRET_LENGTH)


def mask_secrets(text: str) -> str:
    """Return `text` with every registered secret, in any of its forms, replaced by "[secret]"."""
    return _mask(text)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return _mask(value)
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v) for v in value)
    return value


def redact_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """structlog processor: replace any registered secret value with "[secret]"."""
    if not _mask:
        return event
    return {k: _redact(v) for k, v in event.items()}


def _prefix_priority(line: str, level: str) -> str:
    return f"<{_PRIORITY.get(level, 6)}>{line}"


class _PriorityFormatter(structlog.stdlib.ProcessorFormatter):
    def __init__(self, *args: Any, journald: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        # The finished line once more: a renderer may have added text the event did not
        # hold (the console renderer formats tracebacks itself) or escaped a secret.
        line = _mask(super().format(record))
        return _prefix_priority(line, record.levelname.lower()) if self.journald else line


def stderr_is_journal() -> bool:
    """True when standard error is connected to journald (systemd sets $JOURNAL_STREAM to the
    device and inode of that stream)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = stream.partition(":")
    try:
        info = os.fstat(2)
        return bool(stream) and info.st_dev == int(device) and info.st_ino == int(inode)
    except (OSError, ValueError):
        return False


def _masked_excepthook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    """Print an uncaught exception's traceback as Python would, with the secrets masked."""
    sys.stderr.write(_mask("".join(traceback.format_exception(kind, error, tb))))


def configure(*, debug: bool = False, stream: TextIO | None = None, json_lines: bool | None = None) -> None:
    """Set up logging for the whole process. `json_lines` defaults to "not a terminal".

    Also makes the traceback of an uncaught exception (printed with `--debug`) masked."""
    sys.excepthook = _masked_excepthook
    stream = stream or sys.stderr
    if json_lines is None:
        json_lines = not stream.isatty()
    # systemd sets JOURNAL_STREAM when stderr is connected to the journal.
    journald = json_lines and stderr_is_journal()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if json_lines:
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
        exceptions: list[Any] = [structlog.processors.format_exc_info]
    else:
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        exceptions = []
    formatter = _PriorityFormatter(
        journald=journald,
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *exceptions,
            redact_secrets,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # Their INFO lines are one per request or job run: noise for an operator.
    for noisy in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
