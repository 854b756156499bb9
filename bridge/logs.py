"""Logging: structlog for our own events, stdlib loggers (apscheduler, httpx) through the same
pipeline. One JSON object per line when not on a terminal (under systemd each line starts with
the syslog priority, `<4>{...}`, so `journalctl -p warning` works); colours on a terminal.
Tracebacks never show local variables, and registered secret values are masked everywhere.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

_PRIORITY = {"critical": 2, "error": 3, "warning": 4, "info": 6, "debug": 7}
_secrets: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values in every log line from now on (secrets of the loaded config)."""
    _secrets.update(v for v in values if v and len(v) >= 4)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _secrets:
            if secret in value:
                value = value.replace(secret, "[secret]")
        return value
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v) for v in value)
    return value


def redact_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """structlog processor: replace any registered secret value with "[secret]"."""
    if not _secrets:
        return event
    return {k: _redact(v) for k, v in event.items()}


def _prefix_priority(line: str, level: str) -> str:
    return f"<{_PRIORITY.get(level, 6)}>{line}"


class _PriorityFormatter(structlog.stdlib.ProcessorFormatter):
    def __init__(self, *args: Any, journald: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
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


def configure(*, debug: bool = False, stream: TextIO | None = None, json_lines: bool | None = None) -> None:
    """Set up logging for the whole process. `json_lines` defaults to "not a terminal"."""
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
