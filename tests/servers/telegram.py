"""A fake Telegram Bot API on loopback (SPEC 6, Bot API 10.1 excerpt in the reference).

Routes, all under `/bot{token}/`, parameters as JSON, urlencoded form or multipart:

- `sendMessage` `{chat_id, text, parse_mode?, link_preview_options?}` -> `{"ok": true, "result": Message}`
- `sendPhoto` `{chat_id, photo (an uploaded file or a string), caption?, parse_mode?}`
- `getMe` -> the bot (`User`); `getChat` -> the chat; `getChatMember` -> the bot's membership.
- `editMessageText` `{chat_id, message_id, text, parse_mode?, link_preview_options?}` and
  `editMessageCaption` `{chat_id, message_id, caption, parse_mode?}` -> the edited Message
  (with `edit_date`); the message's text becomes the new one and the edit is in `edits`.
  Like the real API: 400 "message to edit not found" for an unknown id, "there is no text in
  the message to edit" (editMessageText on a photo), "there is no caption in the message to
  edit" (editMessageCaption on a text), "message is not modified" when nothing changes,
  "message can't be edited" for a message in `uneditable` (too old, in the real API).
- `deleteMessage` `{chat_id, message_id}` -> `{"ok": true, "result": true}`; the message leaves
  `messages` and its id is in `deletions`. Like the real API: 400 "message to delete not
  found" for an unknown (or already deleted) id, "message can't be deleted" for a message in
  `undeletable` (older than 48 hours, in the real API).

Errors in the Bot API's shape `{"ok": false, "error_code", "description", "parameters"?}`: a
token other than `token` answers 401 "Unauthorized"; a `chat_id` other than the chat's id or
@username answers 400 "Bad Request: chat not found"; a bot that `left` or was `kicked` gets
403, a bot that is a plain `member` (or an administrator without `can_post`) of a channel gets
400 "need administrator rights"; HTML that Telegram could not parse, a text over 4096 visible
characters and a caption over 1024 give 400 like the real API.

Switches: `token`, `member_status`, `can_post`, `chat_id`, `chat_type`, `reject_photos`,
`uneditable` and `undeletable` (message ids), `seed_message(text, photo=False)`,
`fail_deletes(code, description=None, retry_after=None, n=1)`,
`fail_edits(code, description=None, retry_after=None, n=1)`,
`fail_next(code, description=None, retry_after=None, n=1)`, `garble_next(n=1, body=,
content_type=, status=200, forward=False, every_request=False)` and `clear_garbage()` (a 2xx
that is not the Bot API's answer, see `servers.garbage`; sendMessage and sendPhoto only unless
`every_request`; edits count as sends), `delay`. Sent messages are in `messages` (as edited).
"""

from __future__ import annotations

import dataclasses
import html.parser
import itertools
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from servers.garbage import GarbageSwitch, GarblingServer
from servers.loopback import LoopbackServer, Reply, Request

BOT_ID = 7000001
BOT_USERNAME = "comune_esempio_bot"
CHAT_NUMERIC_ID = -1001234567890
PHOTO_BYTES = b"\x89PNG seeded"
_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                 "span", "tg-spoiler", "blockquote", "tg-emoji"}
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: message text is empty",
    401: "Unauthorized",
    403: "Forbidden: bot was kicked from the channel chat",
    404: "Not Found",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass(frozen=True, slots=True)
class TelegramEdit:
    """One edit the fake accepted."""

    method: str  # "editMessageText" or "editMessageCaption"
    message_id: int
    text: str  # the new text or caption, as sent
    parse_mode: str | None
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TelegramMessage:
    """One message the fake accepted."""

    message_id: int
    method: str  # "sendMessage" or "sendPhoto"
    chat_id: str
    text: str  # the text, or the photo's caption, as sent (markup included)
    parse_mode: str | None
    link_preview_options: Any
    photo: bytes | None  # uploaded bytes
    photo_filename: str | None
    photo_content_type: str | None


class FakeTelegram(GarblingServer, LoopbackServer):
    """A fake Bot API. `chat_id` is the channel's @username; `CHAT_NUMERIC_ID` also works."""

    def __init__(self, *, token: str = "123456:TEST-token-AbCdEf", chat_id: str = "@comune_esempio",
                 chat_type: str = "channel") -> None:
        super().__init__()
        self.token = token
        self.chat_id = chat_id
        self.chat_type = chat_type
        self.member_status = "administrator"
        self.can_post = True
        self.reject_photos = False
        self._garbage = GarbageSwitch()
        self._failures: deque[tuple[int, str | None, int | None]] = deque()
        self._messages: list[TelegramMessage] = []
        self._edits: list[TelegramEdit] = []
        self._edit_failures: deque[tuple[int, str | None, int | None]] = deque()
        self.uneditable: set[int] = set()
        self.undeletable: set[int] = set()
        self._deletions: list[int] = []
        self._delete_failures: deque[tuple[int, str | None, int | None]] = deque()
        self._ids = itertools.count(101)
        self._state = threading.Lock()

    def fail_next(self, code: int, description: str | None = None, retry_after: int | None = None,
                  n: int = 1) -> None:
        """Make the next `n` send calls fail with `code` (429: with `parameters.retry_after`)."""
        with self._state:
            self._failures.extend([(code, description, retry_after)] * n)

    def fail_edits(self, code: int, description: str | None = None, retry_after: int | None = None,
                   n: int = 1) -> None:
        """Make the next `n` edit calls fail with `code` (429: with `parameters.retry_after`)."""
        with self._state:
            self._edit_failures.extend([(code, description, retry_after)] * n)

    def fail_deletes(self, code: int, description: str | None = None, retry_after: int | None = None,
                     n: int = 1) -> None:
        """Make the next `n` deleteMessage calls fail with `code`."""
        with self._state:
            self._delete_failures.extend([(code, description, retry_after)] * n)

    @property
    def deletions(self) -> list[int]:
        with self._state:
            return list(self._deletions)

    def seed_message(self, text: str, *, photo: bool = False, parse_mode: str | None = "HTML") -> int:
        """Put a message in the chat as if the bot had sent it (`photo`: a photo with `text` as
        its caption); return its id."""
        with self._state:
            message = TelegramMessage(next(self._ids), "sendPhoto" if photo else "sendMessage", self.chat_id,
                                      text, parse_mode, None, PHOTO_BYTES if photo else None,
                                      "foto.png" if photo else None, "image/png" if photo else None)
            self._messages.append(message)
            return message.message_id

    @property
    def edits(self) -> list[TelegramEdit]:
        with self._state:
            return list(self._edits)

    @property
    def messages(self) -> list[TelegramMessage]:
        with self._state:
            return list(self._messages)

    # -- handling ----------------------------------------------------------------------------

    def _is_send(self, request: Request) -> bool:
        return request.path.rstrip("/").endswith(("/sendMessage", "/sendPhoto", "/editMessageText",
                                                   "/editMessageCaption"))

    def _handle(self, request: Request) -> Reply:
        parts = request.path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return _error(404, "Not Found")
        if parts[0] != f"bot{self.token}":
            return _error(401, "Unauthorized")
        method = parts[1]
        params = request.params()
        if method == "getMe":
            return _ok({"id": BOT_ID, "is_bot": True, "first_name": "Comune", "username": BOT_USERNAME})
        if method == "getChat":
            if not self._is_chat(params.get("chat_id")):
                return _error(400, "Bad Request: chat not found")
            return _ok(self._chat())
        if method == "getChatMember":
            if not self._is_chat(params.get("chat_id")):
                return _error(400, "Bad Request: chat not found")
            return _ok(self._member(params.get("user_id")))
        if method in ("sendMessage", "sendPhoto"):
            return self._send(method, request, params)
        if method in ("editMessageText", "editMessageCaption"):
            return self._edit(method, params)
        if method == "deleteMessage":
            return self._delete(params)
        return _error(404, "Not Found")

    def _delete(self, params: dict[str, Any]) -> Reply:
        with self._state:
            failure = self._delete_failures.popleft() if self._delete_failures else None
        if failure is not None:
            code, description, retry_after = failure
            text = description or _DEFAULT_DESCRIPTIONS.get(code, "Error").format(retry_after=retry_after)
            return _error(code, text, {"retry_after": retry_after} if retry_after is not None else None)
        if not self._is_chat(params.get("chat_id")):
            return _error(400, "Bad Request: chat not found")
        if self.member_status in ("kicked", "left"):
            return _error(403, f"Forbidden: bot is not a member of the {self.chat_type} chat")
        try:
            message_id = int(params.get("message_id", ""))
        except (TypeError, ValueError):
            return _error(400, "Bad Request: message identifier is not specified")
        with self._state:
            found = [m for m in self._messages if m.message_id == message_id]
            if not found:
                return _error(400, "Bad Request: message to delete not found")
            if message_id in self.undeletable:
                return _error(400, "Bad Request: message can't be deleted")
            self._messages.remove(found[0])
            self._deletions.append(message_id)
        return _ok(True)

    def _edit(self, method: str, params: dict[str, Any]) -> Reply:
        with self._state:
            failure = self._edit_failures.popleft() if self._edit_failures else None
        if failure is not None:
            code, description, retry_after = failure
            text = description or _DEFAULT_DESCRIPTIONS.get(code, "Error").format(retry_after=retry_after)
            return _error(code, text, {"retry_after": retry_after} if retry_after is not None else None)
        if not self._is_chat(params.get("chat_id")):
            return _error(400, "Bad Request: chat not found")
        if self.member_status in ("kicked", "left"):
            return _error(403, f"Forbidden: bot is not a member of the {self.chat_type} chat")
        try:
            message_id = int(params.get("message_id", ""))
        except (TypeError, ValueError):
            return _error(400, "Bad Request: message identifier is not specified")
        caption = method == "editMessageCaption"
        text = str(params.get("caption" if caption else "text", ""))
        parse_mode = params.get("parse_mode") or None
        with self._state:
            found = [m for m in self._messages if m.message_id == message_id]
            if not found:
                return _error(400, "Bad Request: message to edit not found")
            message = found[0]
            if message_id in self.uneditable:
                return _error(400, "Bad Request: message can't be edited")
            if not caption and message.method == "sendPhoto":
                return _error(400, "Bad Request: there is no text in the message to edit")
            if caption and message.method != "sendPhoto":
                return _error(400, "Bad Request: there is no caption in the message to edit")
            if not caption and not text:
                return _error(400, "Bad Request: message text is empty")
            visible, problem = _visible_text(text, parse_mode)
            if problem:
                return _error(400, f"Bad Request: can't parse entities: {problem}")
            if len(visible) > (1024 if caption else 4096):
                return _error(400, "Bad Request: message caption is too long" if caption
                              else "Bad Request: message is too long")
            if text == message.text and parse_mode == message.parse_mode:
                return _error(400, "Bad Request: message is not modified: specified new message content "
                                   "and reply markup are exactly the same as a current content and reply "
                                   "markup of the message")
            edited = dataclasses.replace(message, text=text, parse_mode=parse_mode)
            self._messages[self._messages.index(message)] = edited
            self._edits.append(TelegramEdit(method, message_id, text, parse_mode, dict(params)))
        result: dict[str, Any] = {"message_id": message_id, "date": 1772355600, "edit_date": 1772359200,
                                  "chat": self._chat(), "sender_chat": self._chat()}
        result["caption" if caption else "text"] = visible
        return _ok(result)

    def _is_chat(self, chat_id: Any) -> bool:
        return str(chat_id) in (self.chat_id, str(CHAT_NUMERIC_ID))

    def _chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": CHAT_NUMERIC_ID, "type": self.chat_type, "title": "Comune di Esempio"}
        if self.chat_id.startswith("@"):
            chat["username"] = self.chat_id[1:]
        return chat

    def _member(self, user_id: Any) -> dict[str, Any]:
        member: dict[str, Any] = {
            "status": self.member_status,
            "user": {"id": BOT_ID, "is_bot": True, "first_name": "Comune", "username": BOT_USERNAME},
        }
        if str(user_id) != str(BOT_ID):
            member["status"] = "left"
        elif self.member_status == "administrator":
            member.update({"can_be_edited": False, "can_manage_chat": True, "can_delete_messages": True})
            if self.chat_type == "channel":
                member["can_post_messages"] = self.can_post
        return member

    def _send(self, method: str, request: Request, params: dict[str, Any]) -> Reply:
        with self._state:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            code, description, retry_after = failure
            text = description or _DEFAULT_DESCRIPTIONS.get(code, "Error").format(retry_after=retry_after)
            return _error(code, text, {"retry_after": retry_after} if retry_after is not None else None)
        if not self._is_chat(params.get("chat_id")):
            return _error(400, "Bad Request: chat not found")
        if self.member_status == "kicked":
            return _error(403, "Forbidden: bot was kicked from the channel chat")
        if self.member_status == "left":
            return _error(403, "Forbidden: bot is not a member of the channel chat")
        if self.chat_type == "channel" and (
            self.member_status == "member" or (self.member_status == "administrator" and not self.can_post)
        ):
            return _error(400, "Bad Request: need administrator rights in the channel chat")
        parse_mode = params.get("parse_mode") or None
        photo = request.files.get("photo")
        if method == "sendPhoto":
            text = str(params.get("caption", ""))
            if photo is None and not params.get("photo"):
                return _error(400, "Bad Request: there is no photo in the request")
            if self.reject_photos:
                return _error(400, "Bad Request: IMAGE_PROCESS_FAILED")
        else:
            text = str(params.get("text", ""))
            if not text:
                return _error(400, "Bad Request: message text is empty")
        visible, problem = _visible_text(text, parse_mode)
        if problem:
            return _error(400, f"Bad Request: can't parse entities: {problem}")
        if method == "sendPhoto" and len(visible) > 1024:
            return _error(400, "Bad Request: message caption is too long")
        if method == "sendMessage" and len(visible) > 4096:
            return _error(400, "Bad Request: message is too long")
        with self._state:
            message = TelegramMessage(
                message_id=next(self._ids),
                method=method,
                chat_id=str(params.get("chat_id")),
                text=text,
                parse_mode=parse_mode,
                link_preview_options=params.get("link_preview_options"),
                photo=photo.data if photo else None,
                photo_filename=photo.filename if photo else None,
                photo_content_type=photo.content_type if photo else None,
            )
            self._messages.append(message)
        result: dict[str, Any] = {
            "message_id": message.message_id,
            "date": 1772355600,
            "chat": self._chat(),
            "sender_chat": self._chat(),
        }
        if method == "sendPhoto":
            result["photo"] = [{"file_id": f"AgAC{message.message_id}", "width": 320, "height": 240}]
            result["caption"] = visible
        else:
            result["text"] = visible
        return _ok(result)


class _HtmlCheck(html.parser.HTMLParser):
    """Telegram's HTML mode: a few tags, entities `&lt; &gt; &amp; &quot;` and numeric ones."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.text: list[str] = []
        self.problem = ""
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in _ALLOWED_TAGS:
            self.problem = self.problem or f"unsupported start tag \"{tag}\""
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.problem = self.problem or f"unexpected end tag \"{tag}\""

    def handle_data(self, data: str) -> None:
        if "<" in data or ">" in data:
            self.problem = self.problem or "unescaped angle bracket"
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        known = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
        if name not in known:
            self.problem = self.problem or f"unsupported entity \"&{name};\""
        self.text.append(known.get(name, ""))

    def handle_charref(self, name: str) -> None:
        self.text.append(chr(int(name[1:], 16) if name.lower().startswith("x") else int(name)))


def _visible_text(text: str, parse_mode: str | None) -> tuple[str, str]:
    """Return (what a reader sees, why Telegram could not parse it or "")."""
    if (parse_mode or "").upper() != "HTML":
        return text, ""
    # A bare "&" that starts no entity is an error in Telegram's parser; html.parser lets it
    # through as data, so look for it first.
    index = text.find("&")
    while index != -1:
        end = text.find(";", index)
        if end == -1 or not text[index + 1:end].replace("#", "").isalnum():
            return "", "can't find end of the entity"
        index = text.find("&", end)
    checker = _HtmlCheck()
    checker.feed(text)
    checker.close()
    if checker.open and not checker.problem:
        checker.problem = f"can't find end tag corresponding to start tag \"{checker.open[-1]}\""
    return "".join(checker.text), checker.problem


def _ok(result: Any) -> Reply:
    return Reply(200, {"ok": True, "result": result})


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> Reply:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Reply(code, body)


@pytest.fixture
def telegram_server() -> Iterator[FakeTelegram]:
    """A running `FakeTelegram` (bot administrator of channel @comune_esempio), closed after."""
    with FakeTelegram() as server:
        yield server
