"""Crash at any instant, editors at work: the real daemon SIGKILLed at random moments and
restarted while editors approve, edit, hold and drop the alerts of a feed in approval mode
through the real command line, sometimes two of them on the same alert at once (the actors in
`crash_actors`, the harness `test_crash.crash_run`). No acknowledged action is lost, none is
applied twice or half, nothing is posted twice or without an approval; the harness's own checks
hold as well. `bench/crash.py --actions` is the long version."""

from __future__ import annotations

from pathlib import Path

from crash_actors import Composer, Editors
from servers.feeds import FeedServer
from servers.waha import FakeWaha
from test_crash import assert_clean, crash_run

UP = (0.3, 4.0)  # seconds each daemon runs after it started, before its kill (bench/crash.py --actions too)


def test_ten_kills_while_editors_act(tmp_path: Path, feed_server: FeedServer) -> None:
    editors = Editors(seed=14)
    with FakeWaha(delay=0.1) as waha:
        # Each kill at a random instant after the daemon started: editors need one that answers.
        report = crash_run(tmp_path, feed_server, waha, kills=10, seed=14, up=UP, from_ready=True,
                           actors=[editors])
    assert_clean(report)
    summary = "\n".join(report.lines())
    acknowledged = {a.kind for a in editors.attempts if a.outcome == "acknowledged" and not a.final}
    assert len(acknowledged) >= 2, summary  # the editors did act between the kills
    assert any(a.outcome == "unanswered" for a in editors.attempts), summary  # and some met a kill


def test_ten_kills_while_alerts_are_composed(tmp_path: Path, feed_server: FeedServer) -> None:
    # The corrections of posted news run in `bench/crash.py --actions` (the `Corrector`).
    composer = Composer(seed=15, limit=20)
    with FakeWaha(delay=0.1) as waha:
        report = crash_run(tmp_path, feed_server, waha, kills=10, seed=15, up=UP, from_ready=True,
                           actors=[composer])
    assert_clean(report)
    summary = "\n".join(report.lines())
    assert any(c.outcome == "acknowledged" for c in composer.sent), summary  # composed between the kills
