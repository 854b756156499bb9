"""sd_notify without libsystemd: one datagram to `$NOTIFY_SOCKET`. Silent outside systemd.

The protocol (sd_notify(3)): newline-separated `KEY=VALUE` assignments in one datagram to the
AF_UNIX socket named by `$NOTIFY_SOCKET`, a filesystem path or, when it starts with "@", a
socket in the abstract namespace. systemd trusts the sender's pid (`NotifyAccess=main`), so
these calls must come from the daemon's main process.
"""

from __future__ import annotations

import os
import socket
import time


def _address(value: str) -> str:
    # "@name" is Linux's abstract namespace: the kernel wants a leading NUL byte instead.
    return "\0" + value[1:] if value.startswith("@") else value


def notify(message: str) -> bool:
    """Send `message` ("READY=1", "STATUS=...", "WATCHDOG=1"...) to systemd.

    Return True when the datagram was sent. Return False, doing nothing, when not run by
    systemd (`$NOTIFY_SOCKET` unset or empty); never raise for a socket that is gone or
    full: a lost notification must not take the daemon down.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(_address(address))
            sock.sendall(message.encode("utf-8"))
    except OSError:
        return False
    return True


def status_line(text: str) -> str:
    """`STATUS=` with `text` made one line: systemd shows a single line, and a newline would
    start a new (bogus) assignment in the datagram."""
    return "STATUS=" + " ".join(text.split())


def reloading_message() -> str:
    """`RELOADING=1` with `MONOTONIC_USEC=` (CLOCK_MONOTONIC, what systemd ≥ 253 expects;
    systemd 252 ignores the extra field)."""
    return f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"


def watchdog_interval() -> float | None:
    """Half the watchdog timeout systemd asked for, in seconds, or None when there is none.

    None also when `$WATCHDOG_PID` names another process (the variable was inherited by a
    child) and when `$WATCHDOG_USEC` is not a positive integer: pinging in a tight loop would
    be worse than not pinging.
    """
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None
