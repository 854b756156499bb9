"""The console's accounts: names, roles and scrypt password hashes, in `users.json` in the
state directory (mode 0600).

`channel-bridge user ...` is the only writer of the file (atomically, under a lock); the
daemon only reads it, at each login and whenever it changes, so an account removed or a
password changed takes effect without a restart.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bridge.store import write_atomically

ACCOUNTS_FILE = "users.json"
ROLES = ("viewer", "editor")
MIN_PASSWORD_LENGTH = 10
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# scrypt with N=2**15, r=8: 32 MiB of memory and tens of milliseconds per try, per the
# OWASP password storage guidance; kept in each hash so that they can be raised later.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024


class AccountError(Exception):
    """A console account cannot be read, added or changed; `hint` says what to do."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    role: str  # "viewer" reads every page; "editor" also acts (the console's actions)
    password_hash: str  # "scrypt$N$r$p$salt$key", base64 parts
    created: datetime


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """A salted scrypt hash of `password`, with its parameters, for `users.json`."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=_SCRYPT_MAXMEM, dklen=32)
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` (from `hash_password`) was made from; False for
    a hash this version cannot read."""
    try:
        kind, n, r, p, salt, key = stored.split("$")
        if kind != "scrypt":
            return False
        expected = base64.b64decode(key, validate=True)
        found = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt, validate=True), n=int(n), r=int(r),
                               p=int(p), maxmem=_SCRYPT_MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def check_name(name: str) -> str:
    """`name` if it can name an account; raise AccountError otherwise."""
    if not _NAME_RE.match(name):
        raise AccountError(f'"{name}" cannot name an account',
                           hint="use lowercase letters, digits, '.', '_' or '-', at most 64 characters (e.g. m.rossi)")
    return name


def check_password(password: str) -> str:
    """`password` if it is long enough; raise AccountError otherwise."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters",
                           hint="a few words make a password long and easy to remember")
    return password


class AccountBook:
    """The accounts file of one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / ACCOUNTS_FILE
        self._cached: tuple[tuple[int, int], dict[str, Account]] | None = None

    def read(self) -> dict[str, Account]:
        """Every account, by name; none when the file does not exist. Read again only when the
        file changed. Raise AccountError when it cannot be read."""
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise AccountError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        stamp = (info.st_mtime_ns, info.st_ino)
        if self._cached is not None and self._cached[0] == stamp:
            return dict(self._cached[1])
        try:
            data = json.loads(self.path.read_bytes())
            accounts = {name: Account(name, entry["role"], entry["password"],
                                      datetime.fromisoformat(entry["created"]))
                        for name, entry in data["accounts"].items()}
        except OSError as exc:
            raise AccountError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AccountError(f"{self.path} is not an accounts file this version can read ({exc})",
                               hint="restore it from a backup, or remove it and add the accounts again") from None
        self._cached = (stamp, accounts)
        return dict(accounts)

    def get(self, name: str) -> Account | None:
        return self.read().get(name)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Held while an account is changed: two `user` commands at once do not lose one's change."""
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.state_dir / f".{ACCOUNTS_FILE}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise AccountError(f"cannot write in {self.state_dir}: {exc.strerror or exc}",
                               hint="run it as the user of the service (or root)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, accounts: Mapping[str, Account]) -> None:
        data = {"version": 1, "accounts": {
            a.name: {"role": a.role, "password": a.password_hash, "created": a.created.isoformat()}
            for a in sorted(accounts.values(), key=lambda a: a.name)}}
        try:
            write_atomically(self.path, json.dumps(data, indent=2).encode())
            # Written by root for a service with its own user (systemd's DynamicUser): the file
            # belongs to whoever owns the state directory, or the daemon could not read it.
            owner = self.state_dir.stat()
            if os.geteuid() == 0 and (owner.st_uid, owner.st_gid) != (0, 0):
                os.chown(self.path, owner.st_uid, owner.st_gid)
        except OSError as exc:
            raise AccountError(f"cannot write {self.path}: {exc}") from None
        self._cached = None

    def add(self, name: str, role: str, password: str, *, now: datetime | None = None) -> Account:
        """Add the account `name`; raise AccountError if it exists or anything is invalid."""
        check_name(name)
        if role not in ROLES:
            raise AccountError(f'unknown role "{role}"', hint=f"choose one of: {', '.join(ROLES)}")
        check_password(password)
        with self._locked():
            accounts = self.read()
            if name in accounts:
                raise AccountError(f'the account "{name}" exists already',
                                   hint=f"change its password with: channel-bridge user passwd {name}")
            account = Account(name, role, hash_password(password), now or datetime.now(UTC))
            self._write({**accounts, name: account})
        return account

    def set_password(self, name: str, password: str) -> None:
        """Give `name` a new password; raise AccountError if there is no such account."""
        check_password(password)
        with self._locked():
            accounts = self.read()
            account = self._existing(accounts, name)
            accounts[name] = Account(name, account.role, hash_password(password), account.created)
            self._write(accounts)

    def remove(self, name: str) -> None:
        """Remove `name`; its sessions end at their next request."""
        with self._locked():
            accounts = self.read()
            self._existing(accounts, name)
            del accounts[name]
            self._write(accounts)

    @staticmethod
    def _existing(accounts: Mapping[str, Account], name: str) -> Account:
        if name not in accounts:
            raise AccountError(f'no account "{name}"', hint="see them with: channel-bridge user list")
        return accounts[name]
