"""Whether a post may be deleted now (`bridge.deletion.check_delete`): pure, against the post
the history has and the audit trail's last action on it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bridge.approval import BAD_ACTION, CONFLICT, NOT_ALLOWED, NOT_FOUND, ActionRefused
from bridge.audit import AuditEntry
from bridge.deletion import DELETE, DELETED, check_delete
from bridge.models import Post

ROME = ZoneInfo("Europe/Rome")
AT = datetime(2026, 12, 2, 9, 42, tzinfo=UTC)
POST = Post(delivery_id="d1", channel="whatsapp", feed_id="notizie", title="Avviso", link="https://x.example/1",
            posted_at=AT, remote_id="wamid-1")


def entry(action: str, reason: str = "notizia sbagliata") -> AuditEntry:
    return AuditEntry(at=AT, who="anna", where="cli", action=action, alert_id="d1", channel="whatsapp",
                      feed_id="notizie", title="Avviso", reason=reason)


def refused(post: Post | None, last: AuditEntry | None, reason: str = "errore") -> ActionRefused:
    with pytest.raises(ActionRefused) as caught:
        check_delete("d1", post, last, reason=reason, timezone=ROME)
    return caught.value


def test_a_posted_post_may_be_deleted() -> None:
    assert check_delete("d1", POST, None, reason="errore", timezone=ROME) is POST


def test_a_deletion_cut_off_before_it_was_done_may_be_asked_again() -> None:
    assert check_delete("d1", POST, entry(DELETE), reason="errore", timezone=ROME) is POST


def test_a_second_deletion_names_the_first() -> None:
    refusal = refused(POST, entry(DELETED))
    assert refusal.code == CONFLICT
    assert str(refusal) == "post d1 was already deleted by anna at 02/12/2026 10:42 (notizia sbagliata)"


@pytest.mark.parametrize(("post", "reason", "code", "words"), [
    (None, "errore", NOT_FOUND, "no post d1 in the history"),
    (POST, "  ", BAD_ACTION, "needs a reason"),
    (Post(delivery_id="d1", channel="webhook", feed_id="notizie", title="Avviso", link="https://x.example/1",
          posted_at=AT, remote_id=None), "errore", NOT_ALLOWED, "no id on the platform"),
])
def test_what_cannot_be_deleted_says_why(post: Post | None, reason: str, code: str, words: str) -> None:
    refusal = refused(post, None, reason)
    assert refusal.code == code and words in str(refusal)
