"""The `channel-bridge` command: argument parsing and everything a person reads.

Errors for people: one line saying what is wrong and what to do; a traceback only with
`--debug`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bridge import __version__

if TYPE_CHECKING:
    from bridge.config import Config, ConfigError, SalvagedConfig

# Each command imports what it needs when it runs: `--version`, `check` and `status` answer
# without loading the daemon's dependencies (httpx, feedparser, apscheduler, bs4), which
# take about a second to import (bench/cli_startup.py).

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_UNREACHABLE = 3
EXIT_BROKEN_PIPE = 141  # what a shell reports for a command killed by SIGPIPE

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="channel-bridge",
        description="Bridge a comune's news feeds into broadcast channels (WhatsApp, Telegram, ...).",
    )
    parser.add_argument("--version", action="version", version=f"channel-bridge {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        help="config file (default: $CHANNEL_BRIDGE_CONFIG, $CONFIGURATION_DIRECTORY/config.toml, ./config.toml)",
    )
    parser.add_argument("--debug", action="store_true", help="verbose logs and full tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run the daemon (or one cycle with --once)")
    run.add_argument("--once", action="store_true", help="poll every feed once, deliver, exit (1 if anything failed)")

    check = commands.add_parser("check", help="validate the config and resolve its secrets")
    check.add_argument("--online", action="store_true",
                       help="also ask each channel's gateway whether it can post (posts nothing)")

    preview = commands.add_parser("preview", help="print the messages the newest items would become; sends nothing")
    preview.add_argument("feed_id", nargs="?", help="only this feed")
    preview.add_argument("--limit", type=int, default=3, help="newest N items per feed (default 3)")
    preview.add_argument("--channel", help="only this channel")

    forget = commands.add_parser("forget", help="forget one feed's seen items and poll state (daemon stopped); "
                                 "its next poll is a first poll again")
    forget.add_argument("feed_id", help="the feed's id")

    status = commands.add_parser("status", help="feeds and channels as the state records them")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    queue = commands.add_parser("queue", help="what waits to be posted and why (the console's In coda page)")
    queue.add_argument("--channel", help="only this channel")
    queue.add_argument("--json", action="store_true", help="machine-readable output")
    acts = queue.add_subparsers(dest="queue_action", metavar="ACTION")
    approve = acts.add_parser("approve", help="approve an alert waiting for approval (da approvare)")
    approve.add_argument("id", help="the alert's id, as queue shows it")
    approve.add_argument("--text", help="post it with this text instead (checked like the feed's alerts)")
    approve.add_argument("--confirm", action="store_true",
                         help="the text's numbers and dates are right although the source does not have them")
    for name, what in (("hold", "stop an alert: it is not sent until approved"),
                       ("send-now", "send an alert now, first in its queue, past quiet hours and pacing"),
                       ("retry", "try a failed alert again")):
        acts.add_parser(name, help=what).add_argument("id", help="the alert's id, as queue shows it")
    drop = acts.add_parser("drop", help="drop an alert: it is never sent")
    drop.add_argument("id", help="the alert's id, as queue shows it")
    drop.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    delete = acts.add_parser("delete", help="delete a post on its platform (a person's decision, never the bridge's)")
    delete.add_argument("id", help="the post's delivery id, as history shows it")
    delete.add_argument("--reason", required=True, help="why (kept in the audit trail)")

    send = commands.add_parser("send", help="send an alert an editor wrote (through the daemon's outbox), or "
                               "a test message with --test")
    send.add_argument("--title", default="", help="the alert's title")
    send.add_argument("--text", default="", help="the alert's text")
    send.add_argument("--link", default="", help="its page on the comune's site (on the domains of its feeds)")
    send.add_argument("--image", help="an https address of an image (for channels with images = true)")
    send.add_argument("--urgent", action="store_true", help="urgent: past quiet hours and pacing")
    send.add_argument("--channel", action="append", default=[],
                      help="only this channel (repeatable; default: every channel the feeds post to)")
    send.add_argument("--test", action="store_true",
                      help="post a clearly marked test message now to the one --channel, to check it end to end")

    user = commands.add_parser("user", help="the staff console's accounts")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    user_add = user_commands.add_parser("add", help="add an account (the password is asked on the terminal, "
                                        "else read from standard input)")
    user_add.add_argument("name")
    user_add.add_argument("--role", choices=("viewer", "editor"), required=True,
                          help="viewer: sees every page; editor: also acts")
    user_passwd = user_commands.add_parser("passwd", help="give an account a new password")
    user_passwd.add_argument("name")
    user_remove = user_commands.add_parser("remove", help="remove an account (its sessions end at once)")
    user_remove.add_argument("name")
    user_commands.add_parser("list", help="the accounts and their roles")

    audit = commands.add_parser("audit", help="the editors' actions: who did what to which alert, when")
    audit.add_argument("--since", type=_parse_date, help="only actions on or after this date (YYYY-MM-DD)")
    audit.add_argument("--format", choices=("table", "csv", "json"), default="table")

    history = commands.add_parser("history", help="audit log of what was posted")
    history.add_argument("--since", type=_parse_date, help="only posts on or after this date (YYYY-MM-DD)")
    history.add_argument("--format", choices=("table", "csv", "json"), default="table")

    zones = commands.add_parser("zones", help="the alert zone and Meteoalarm region of a comune (name or ISTAT "
                                              "code), or the name of a zone code; needs no config")
    zones.add_argument("query", metavar="NAME|ISTAT|ZONE")
    return parser


def _parse_date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a date like 2026-11-01, got "{text}"') from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `channel-bridge`; returns the process exit code."""
    args = build_parser().parse_args(argv)  # `--version` and `--help` end here
    try:
        return _run_command(args)
    except BrokenPipeError:
        # The reader went away (`status | head`): stop quietly, as Unix tools do. Standard
        # output is pointed at /dev/null so that the flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _run_command(args: argparse.Namespace) -> int:
    from bridge import logs
    from bridge.config import ConfigError, default_config_path, load_config
    from bridge.store import StateError

    logs.configure(debug=args.debug)
    config_path = args.config or default_config_path()
    try:
        if args.command == "zones":
            return cmd_zones(args.query, sys.stdout, sys.stderr)
        if args.command == "check":
            code = cmd_check(config_path, sys.stdout)
            if code == EXIT_OK and args.online:
                import asyncio

                return asyncio.run(cmd_check_online(load_config(config_path), sys.stdout))
            return code
        if args.command == "run":
            return cmd_run(config_path, once=args.once)
        # Commands that send nothing do not need the secrets (root reading the state, say).
        config = load_config(config_path, resolve_secrets=False)
        if args.command == "preview":
            import asyncio

            return asyncio.run(cmd_preview(config, sys.stdout, args.feed_id, args.limit, args.channel))
        if args.command == "forget":
            return cmd_forget(config, sys.stdout, args.feed_id)
        if args.command == "status":
            return cmd_status(config, sys.stdout, as_json=args.json)
        if args.command == "queue" and args.queue_action == "delete":
            return cmd_delete(config, sys.stdout, args.id, reason=args.reason)
        if args.command == "queue" and args.queue_action is not None:
            return cmd_act(config, sys.stdout, args.queue_action, args.id, text=getattr(args, "text", None),
                           confirm=getattr(args, "confirm", False), reason=getattr(args, "reason", None) or "")
        if args.command == "queue":
            return cmd_queue(config, sys.stdout, channel=args.channel, as_json=args.json)
        if args.command == "send":
            return cmd_send(config, sys.stdout, title=args.title, text=args.text, link=args.link, image=args.image,
                            urgent=args.urgent, channels=args.channel, test=args.test)
        if args.command == "audit":
            return cmd_audit(config, sys.stdout, since=args.since, fmt=args.format)
        if args.command == "history":
            return cmd_history(config, sys.stdout, since=args.since, fmt=args.format)
        if args.command == "user":
            return cmd_user(config, args, sys.stdin, sys.stdout)
    except ConfigError as exc:
        _print_config_errors(exc, sys.stderr)
        if args.command != "status":
            return EXIT_INVALID
        # Status is needed most when the file is invalid (a reload just rejected): it shows
        # the state anyway, with what it can still read of the file, and exits 2.
        from bridge.config import salvage_config

        try:
            return cmd_status(salvage_config(config_path), sys.stdout, as_json=args.json)
        except StateError as error:
            _say_error(f"channel-bridge: {error}" + (f"; {error.hint}" if error.hint else ""), sys.stderr)
            return EXIT_FAILED
    except StateError as exc:
        if args.debug:
            raise
        # One line: what, which path, what to do (a full or read-only disk at start or stop,
        # a state directory removed while running, a hand-edited state file).
        _say_error(f"channel-bridge: {exc}" + (f"; {exc.hint}" if exc.hint else ""), sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled command {args.command}")


def _say_error(text: str, out: TextIO) -> None:
    """Print an error for people; under systemd each line is filed at priority "err", so that
    `journalctl -p err` shows why the service did not start."""
    from bridge import logs

    prefix = "<3>" if logs.stderr_is_journal() and out is sys.stderr else ""
    for line in text.splitlines():
        print(f"{prefix}{line}", file=out)


def _print_config_errors(exc: ConfigError, out: TextIO) -> None:
    count = len(exc.errors)
    if count == 1:
        _say_error(f"channel-bridge: {exc.path or 'config'}: {exc.errors[0]}", out)
        return
    lines = [f"channel-bridge: {exc.path or 'config'}: {count} errors", *(f"  - {error}" for error in exc.errors)]
    _say_error("\n".join(lines), out)


def cmd_check(config_path: Path, out: TextIO) -> int:
    """Validate the config; print a summary. Exit 0 when valid, 2 when not."""
    from bridge.config import ConfigError, config_warnings, format_duration, load_config, machine_problems

    try:
        config = load_config(config_path)
        problems = machine_problems(config)
        if problems:
            raise ConfigError(problems, config.path)
    except ConfigError as exc:
        _print_config_errors(exc, sys.stderr)
        return EXIT_INVALID
    print(f"{config.path}: valid", file=out)
    print(f"state: {config.bridge.state_dir}   time zone: {config.bridge.timezone.key}", file=out)
    print(f"\nfeeds ({len(config.feeds)}):", file=out)
    for feed in config.feeds:
        extras = []
        if feed.is_alert_source:
            area = [*(f"zone {code}" for code in feed.zones), *(f"region {code}" for code in feed.regions)]
            extras.append(f"{feed.type} alerts: {', '.join(area)}; urgent: {', '.join(feed.urgent_levels)}")
        if feed.urgent:
            extras.append("urgent")
        if feed.backfill:
            extras.append(f"backfill {feed.backfill}")
        print(
            f"  {feed.id:<20} every {format_duration(feed.interval):<6} -> {', '.join(feed.channels)}"
            + (f"  ({', '.join(extras)})" if extras else ""),
            file=out,
        )
        print(f"  {'':<20} {feed.url}", file=out)
    print(f"\nchannels ({len(config.channels)}):", file=out)
    for name, channel in config.channels.items():
        target = " ".join(
            part
            for part in (
                channel.url or channel.api_url or channel.service or "",
                f"session={channel.session}" if channel.type == "waha" else "",
                f"chat={channel.chat_id}" if channel.chat_id else "",
                f"page={channel.page_id}" if channel.page_id else "",
                f"handle={channel.handle}" if channel.handle else "",
                *(f"{key}={secret}" for key, secret in (("api_key", channel.api_key), ("token", channel.token),
                                                        ("app_password", channel.app_password))
                  if secret is not None),
            )
            if part
        )
        print(f"  {name:<20} {channel.type:<9} {target}", file=out)
    alerts = config.alerts
    print(
        f"\nalerts: max {alerts.max_length} characters, quiet hours {alerts.quiet_hours or 'none'}, "
        f"min gap {format_duration(alerts.min_gap)}",
        file=out,
    )
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=out)
    return EXIT_OK


async def cmd_check_online(config: Config, out: TextIO) -> int:
    """Ask every channel whether it can post, without posting. Exit 0 if all can, else 3."""
    import httpx

    from bridge.channels import ChannelError, open_channel

    print("\nchannels, online:", file=out)
    failures = 0
    async with httpx.AsyncClient(headers={"User-Agent": config.bridge.user_agent}) as http:
        for name, channel_config in config.channels.items():
            channel = open_channel(channel_config, http=http)
            try:
                health = await channel.probe()
            except ChannelError as exc:
                failures += 1
                print(f"  {name:<20} CANNOT POST: {exc}" + (f"\n  {'':<20} {exc.hint}" if exc.hint else ""), file=out)
            else:
                print(f"  {name:<20} ok: {health}", file=out)
            finally:
                await channel.aclose()
    return EXIT_UNREACHABLE if failures else EXIT_OK


def cmd_run(config_path: Path, *, once: bool) -> int:
    """Run the daemon, or one cycle. A state directory that cannot be opened, is lost while
    running, or cannot be written at stop raises StateError (one line from `main`, exit 1)."""
    import asyncio

    import structlog

    from bridge import memory
    from bridge.daemon import Bridge, open_bridge
    from bridge.store import StateError

    log = structlog.get_logger("bridge.cli")
    if not once:
        memory.return_freed_memory()  # before the store's index is built
    config, store = open_bridge(config_path)
    try:
        bridge = Bridge(config, store)
        code = asyncio.run(bridge.run_once() if once else bridge.run())
    except BaseException:
        try:
            store.close()
        except StateError as exc:  # the first error is the one to tell; this one goes to the log
            log.error("could not save the state at stop", error=str(exc), hint=exc.hint)
        raise
    store.close()
    return code


async def cmd_preview(config: Config, out: TextIO, feed_id: str | None, limit: int, channel: str | None) -> int:
    """Print what the newest items of each feed would become (see `bridge.preview`)."""
    from bridge import preview

    return await preview.cmd_preview(config, out, feed_id, limit, channel)


def cmd_forget(config: Config, out: TextIO, feed_id: str) -> int:
    """Re-prime one feed (see `bridge.forget`)."""
    from bridge import forget

    return forget.cmd_forget(config, out, feed_id)


def _when(moment: datetime | None, config: Config) -> str:
    return _at(moment, config.bridge.timezone)


def _at(moment: datetime | None, tz: tzinfo) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def cmd_status(config: Config | SalvagedConfig, out: TextIO, *, as_json: bool) -> int:
    """Print the state of feeds and channels; safe while the daemon runs (reads only).

    With a config file that is not valid (`SalvagedConfig`, from `salvage_config`), the
    state is shown with the feeds and channels the file still names (and those the state
    remembers), and the exit status is 2."""
    import json

    from bridge.config import SalvagedConfig
    from bridge.status import report as state_report
    from bridge.status import status_report
    from bridge.store import Store

    if isinstance(config, SalvagedConfig):
        state_dir, tz, code = config.state_dir, config.timezone, EXIT_INVALID
    else:
        state_dir, tz, code = config.bridge.state_dir, config.bridge.timezone, EXIT_OK
    store = Store.open(state_dir, read_only=True)
    try:
        if isinstance(config, SalvagedConfig):
            ids = list(dict.fromkeys([*config.feed_ids, *store.feed_ids()]))
            report = state_report(store, ids, config.channels)
        else:
            report = status_report(config, store)
    finally:
        store.close()
    if code == EXIT_INVALID:
        report["config"] = {"path": str(config.path), "valid": False}
    if as_json:
        json.dump(report, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return code
    if code == EXIT_INVALID:
        print(f"config: {config.path} is NOT VALID (see above): the daemon keeps the config it last loaded; "
              "below, the state as recorded, with the feeds and channels the file names", file=out)
    print(_state_line(report["state"], tz), file=out)
    if report["state"]["problem"] and report["state"]["hint"]:
        print(f"  {report['state']['hint']}", file=out)
    if report["polls_written"]:
        print(f"poll states written {_at(_dt(report['polls_written']), tz)} (the daemon writes them every minute, "
              "and within seconds when a feed's health changes)", file=out)
    print(file=out)
    print(f"{'feed':<20} {'health':<8} {'last poll':<17} {'last success':<17} {'fails':>5}  "
          f"{'last new item':<17} problem", file=out)
    for feed in report["feeds"]:
        print(
            f"{feed['id']:<20} {feed['health']:<8} {_at(_dt(feed['last_poll']), tz):<17} "
            f"{_at(_dt(feed['last_success']), tz):<17} {feed['consecutive_failures']:>5}  "
            f"{_at(_dt(feed['last_new_item']), tz):<17} "
            f"{feed['health_detail'] or feed['last_error'] or _held(feed['last_held']) or _first_poll(feed)}",
            file=out,
        )
    print(f"\n{'channel':<20} {'type':<9} {'queue':>5} {'held':>5} {'failed':>6} {'to approve':>10} {'stopped':>7}  "
          f"{'last post':<17} problem", file=out)
    for channel in report["channels"]:
        problem = f"PAUSED: {channel['paused']}" if channel["paused"] else channel["last_error"] or ""
        if not problem and channel["last_failure"]:
            problem = f"last failed: {channel['last_failure']}"
        if not channel["in_config"]:
            problem = ("NOT IN CONFIG: these alerts wait for the channel to return (and expire after max_age)"
                       + (f"; {problem}" if problem else ""))
        print(
            f"{channel['name']:<20} {channel['type'] or '-':<9} {channel['queue']:>5} {channel['held']:>5} "
            f"{channel['failed']:>6} {channel['awaiting']:>10} {channel['stopped']:>7}  "
            f"{_at(_dt(channel['last_post']), tz):<17} {problem}",
            file=out,
        )
    return code


def cmd_queue(config: Config, out: TextIO, *, channel: str | None, as_json: bool,
              now: datetime | None = None) -> int:
    """Print every pending, held and failed alert with its state, why it waits and when it may
    go: the rows of the console's *In coda* page, from the same function (`waits.waiting`).
    Asked of the running daemon over its control socket (what it holds in memory); when no
    daemon runs, read from the state read-only, as `status` does. The table says which; the
    JSON is the same list either way. Exit 0; 2 for an unknown channel; 1 when the daemon
    runs but cannot be asked (permission denied, timeout, another protocol version)."""
    import json

    from bridge.control.client import ControlError, ControlRefused, DaemonNotRunning, ask
    from bridge.control.protocol import UNKNOWN_CHANNEL
    from bridge.store import Store, lock_holder
    from bridge.waits import UnknownChannelError, waiting

    try:
        answer = ask(config.bridge.socket_path, "queue", {"channel": channel} if channel else {})
        rows, source = answer["rows"], f"from the running daemon (pid {answer['pid']})"
    except DaemonNotRunning:
        holder = lock_holder(config.bridge.state_dir)
        source = ("from the state on disk: the daemon is not running" if holder is None else
                  f"from the state on disk: the daemon (pid {holder}) does not answer on its control socket "
                  f"{config.bridge.socket_path} (see its log)")
        store = Store.open(config.bridge.state_dir, read_only=True)
        try:
            names = {feed.id: feed.name for feed in config.feeds}
            rows = [row.to_dict(names) for row in waiting(config, store, now or datetime.now(UTC), channel=channel)]
        except UnknownChannelError as exc:
            _say_error(f"channel-bridge: {exc}; {exc.hint}", sys.stderr)
            return EXIT_INVALID
        finally:
            store.close()
    except ControlRefused as exc:
        _say_error(f"channel-bridge: {exc}" + (f"; {exc.hint}" if exc.hint else ""), sys.stderr)
        return EXIT_INVALID if exc.code == UNKNOWN_CHANNEL else EXIT_FAILED
    except ControlError as exc:
        _say_error(f"channel-bridge: {exc}" + (f"; {exc.hint}" if exc.hint else ""), sys.stderr)
        return EXIT_FAILED
    if as_json:
        json.dump(rows, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return EXIT_OK
    print(source, file=out)
    if not rows:
        print("nothing waits: every queue is empty", file=out)
        return EXIT_OK
    print(f"{'channel':<16} {'state':<9} {'due':<17} {'feed':<14} {'title':<40} reason", file=out)
    for row in rows:
        title = row["title"] if len(row["title"]) <= 40 else row["title"][:39] + "…"
        # A held item in the guard's own words and what to do, as the log says them; the
        # outbox's reasons as the page says them.
        reason = (f"held by the link guard: {row['reason_en']}; {row['remedy_en']}" if row.get("reason_en")
                  else row["reason"])
        print(f"{row['channel']:<16} {row['state']:<9} {_when(_dt(row['due']), config):<17} "
              f"{row['feed']:<14} {title:<40} {reason}", file=out)
    return EXIT_OK


def cmd_act(config: Config, out: TextIO, action: str, alert_id: str, *, text: str | None = None,
            confirm: bool = False, reason: str = "") -> int:
    """Ask the running daemon to make an editor's action (`bridge.approval`) on `alert_id`, as
    the Unix user running this command; print what it did. Exit 0 once the action is durable;
    1 when it is refused (one line saying why: already done by someone else, not applicable,
    a text that cannot be posted or needs --confirm) or the daemon cannot be asked. With no
    daemon running nothing is done: the actions are the daemon's, which also sends and
    announces what they release."""
    from bridge.control.client import ControlError, DaemonNotRunning, ask

    args: dict[str, Any] = {"action": action, "id": alert_id, "confirm": confirm, "reason": reason}
    if text is not None:
        args["text"] = text
    try:
        answer = ask(config.bridge.socket_path, "act", args)
    except DaemonNotRunning:
        _say_error(f"channel-bridge: the daemon is not running, so nothing was done ({action} {alert_id}); "
                   "actions are made by the running daemon: start it (systemctl start channel-bridge) and try again",
                   sys.stderr)
        return EXIT_FAILED
    except ControlError as exc:
        _say_error(f"channel-bridge: {exc}" + (f"; {exc.hint}" if exc.hint else ""), sys.stderr)
        return EXIT_FAILED
    print(answer["message"], file=out)
    return EXIT_OK


def cmd_send(config: Config, out: TextIO, *, title: str, text: str, link: str, image: str | None = None,
             urgent: bool = False, channels: Sequence[str] = (), test: bool = False) -> int:
    """Ask the running daemon to queue an alert an editor wrote (`bridge.compose`), or the test
    message, as the Unix user running this command; print the ids queued. Exit 0 once it is
    durable; 1 when it is refused (one line saying why: an off-domain link, too long, an
    unknown channel...) or the daemon cannot be asked; 2 for a --test without one --channel.
    With no daemon running nothing is queued."""
    from bridge.control.client import ControlError, DaemonNotRunning, ask

    if test and (len(channels) != 1 or title or text or link or image or urgent):
        _say_error("channel-bridge: send --test takes exactly one --channel and nothing else", sys.stderr)
        return EXIT_INVALID
    args: dict[str, Any] = {"title": title, "text": text, "link": link, "urgent": urgent, "channels": list(channels),
                            "test": test}
    if image is not None:
        args["image"] = image
    try:
        answer = ask(config.bridge.socket_path, "compose", args)
    except DaemonNotRunning:
        _say_error("channel-bridge: the daemon is not running, so nothing was queued; alerts are sent by the "
                   "running daemon: start it (systemctl start channel-bridge) and try again", sys.stderr)
        return EXIT_FAILED
    except ControlError as exc:
        _say_error(f"channel-bridge: {exc}" + (f"; {exc.hint}" if exc.hint else ""), sys.stderr)
        return EXIT_FAILED
    print(answer["message"], file=out)
    for row in answer["queued"]:
        print(f"{row['channel']:<16} {row['id']}", file=out)
    return EXIT_OK


def cmd_delete(config: Config, out: TextIO, delivery_id: str, *, reason: str) -> int:
    """Ask the running daemon to delete the post `delivery_id` on its platform
    (`bridge.deletion`), as the Unix user running this command; print what it did. Exit 0 once
    it is deleted and in the audit trail; 1 when it is refused (already deleted by someone,
    not in the history, a platform that cannot delete it) or the daemon cannot be asked."""
    from bridge.control.client import ControlError, DaemonNotRunning, ask

    try:
        answer = ask(config.bridge.socket_path, "delete", {"id": delivery_id, "reason": reason})
    except DaemonNotRunning:
        _say_error(f"channel-bridge: the daemon is not running, so nothing was done (delete {delivery_id}); "
                   "deletions are made by the running daemon: start it (systemctl start channel-bridge) and try "
                   "again", sys.stderr)
        return EXIT_FAILED
    except ControlError as exc:
        _say_error(f"channel-bridge: {exc}" + (f"; {exc.hint}" if exc.hint else ""), sys.stderr)
        return EXIT_FAILED
    print(answer["message"], file=out)
    return EXIT_OK


def cmd_audit(config: Config, out: TextIO, *, since: datetime | None, fmt: str) -> int:
    """Print the audit trail of the editors' actions (`bridge.audit`), oldest first: read from
    the state, whether the daemon runs or not (the log is append-only, each entry whole)."""
    import csv
    import json

    from bridge.audit import AuditLog

    entries = [entry.to_dict() for entry in AuditLog(config.bridge.state_dir).read(since)]
    if fmt == "json":
        json.dump(entries, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return EXIT_OK
    rows = [{"at": e["at"], "who": e["who"], "where": e["where"], "action": e["action"], "alert_id": e["alert_id"],
             "channel": e["channel"], "feed_id": e["feed_id"], "title": e["title"],
             "before": e["before"].get("state", ""), "after": (e["after"] or {}).get("state", "dropped"),
             "reason": e["reason"],
             "text_before": e["before"].get("summary", ""), "text_after": (e["after"] or {}).get("summary", "")}
            for e in entries]
    if fmt == "csv":
        from bridge.spreadsheet import csv_cell

        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["at"])
        writer.writeheader()
        writer.writerows({k: csv_cell(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows)
        return EXIT_OK
    print(f"{'when':<17} {'who':<12} {'from':<8} {'action':<13} {'alert':<34} {'change':<20} title", file=out)
    for row in rows:
        change = f"{row['before']} -> {row['after']}"
        print(f"{_when(_dt(row['at']), config):<17} {row['who']:<12} {row['where']:<8} {row['action']:<13} "
              f"{row['alert_id']:<34} {change:<20} {row['title']}" + (f" ({row['reason']})" if row["reason"] else ""),
              file=out)
    return EXIT_OK


def _state_line(state: dict[str, Any], tz: tzinfo) -> str:
    """The first line of `status`: can the state directory be written?"""
    from bridge.store import human_size

    if state["problem"]:
        since = f" (since {_at(_dt(state['since']), tz)})" if state["since"] else ""
        return f"state: {state['problem']}{since}"
    if state["free_bytes"] is None:
        return f"state: {state['path']} (not created yet: the first run creates it)"
    line = f"state: {state['path']} writable, {human_size(state['free_bytes'])} free"
    return f"{line}; warning: {state['warning']}" if state["warning"] else line


def _first_poll(feed: dict[str, Any]) -> str:
    """The feed's first poll, while nothing new has been posted since it."""
    first = feed["first_poll"]
    if first is None or (feed["last_new_item"] is not None and feed["last_new_item"] > first["at"]):
        return ""
    return f"first poll: {first['items']} items recorded, {first['posted']} posted (backfill)"


def _held(text: str | None) -> str:
    return f"held: {text}" if text else ""


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def cmd_user(config: Config, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    """`user add|passwd|remove|list`: the console's accounts in the state directory. Exit 0;
    1 with one line on stderr when the account cannot be changed."""
    from bridge.console.accounts import AccountBook, AccountError

    book = AccountBook(config.bridge.state_dir)
    try:
        if args.user_command == "list":
            for account in book.read().values():
                print(f"{account.name:<24} {account.role:<7} added {_when(account.created, config)}", file=out)
            return EXIT_OK
        if args.user_command == "remove":
            book.remove(args.name)
            print(f'account "{args.name}" removed', file=out)
            return _end_sessions(config, args.name, out)
        password = _read_password(stdin, out)
        if args.user_command == "add":
            account = book.add(args.name, args.role, password)
            print(f'account "{account.name}" added ({account.role})', file=out)
            return EXIT_OK
        book.set_password(args.name, password)
        print(f'password of "{args.name}" changed', file=out)
        return _end_sessions(config, args.name, out)
    except AccountError as exc:
        _say_error(f"channel-bridge: {exc}" + (f"; {exc.hint}" if exc.hint else ""), sys.stderr)
        return EXIT_FAILED


def _end_sessions(config: Config, name: str, out: TextIO) -> int:
    """Tell the running daemon to end the console sessions of `name` at once (its password
    changed, or it was removed). Exit 0 when they ended or no daemon runs (sessions live in
    its memory only); 1 with one line when the daemon runs but cannot be told."""
    from bridge.control.client import ControlError, DaemonNotRunning, ask

    try:
        answer = ask(config.bridge.socket_path, "end_sessions", {"account": name})
    except DaemonNotRunning:
        print("the daemon is not running: no console session is open", file=out)
        return EXIT_OK
    except ControlError as exc:
        _say_error(f"channel-bridge: the running daemon could not be told to end the console sessions of "
                   f'"{name}": {exc}' + (f"; {exc.hint}" if exc.hint else "")
                   + "; they end when it restarts (systemctl restart channel-bridge)", sys.stderr)
        return EXIT_FAILED
    ended = answer["ended"]
    if not answer["console"]:
        print("the console is off: no session is open", file=out)
    else:
        print(f"its console sessions ended at once ({ended} open)", file=out)
    return EXIT_OK


def _read_password(stdin: TextIO, out: TextIO) -> str:
    """The new password: asked twice on a terminal (not echoed), else the first line of
    standard input (`printf '%s\n' "$PW" | channel-bridge user add ...`)."""
    from bridge.console.accounts import AccountError

    if stdin.isatty():
        import getpass

        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise AccountError("the two passwords differ", hint="run the command again")
        return first
    line = stdin.readline()
    if not line:
        raise AccountError("no password on standard input",
                           hint="type it on a terminal, or give it as the first line of standard input")
    return line.rstrip("\r\n")


def cmd_history(config: Config, out: TextIO, *, since: datetime | None, fmt: str) -> int:
    """Print the audit log: what was posted, where, when, with which remote id."""
    import csv
    import json

    from bridge.store import Store

    store = Store.open(config.bridge.state_dir, read_only=True)
    try:
        posts = [p.to_dict() for p in store.posts(since)]
    finally:
        store.close()
    fields = ["posted_at", "channel", "feed_id", "title", "link", "remote_id", "delivery_id"]
    if fmt == "json":
        json.dump(posts, out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif fmt == "csv":
        from bridge.spreadsheet import csv_cell

        writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({key: csv_cell(value) if isinstance(value, str) else value for key, value in post.items()}
                         for post in posts)
    else:
        print(f"{'posted':<17} {'channel':<12} {'feed':<14} {'remote id':<24} title", file=out)
        for post in posts:
            print(
                f"{_when(_dt(post['posted_at']), config):<17} {post['channel']:<12} {post['feed_id']:<14} "
                f"{(post['remote_id'] or '-'):<24} {post['title']}",
                file=out,
            )
    return EXIT_OK


def cmd_zones(query: str, out: TextIO, err: TextIO) -> int:
    """Print what a comune's name, an ISTAT code or a zone code resolves to in the shipped zone
    table, with the config lines that follow it. Exit 0 when found, 2 when not."""
    from bridge.alerts.zones import ZoneError, resolve, zone_name

    try:
        found = resolve(query)
    except ZoneError as error:
        _say_error(f"channel-bridge: zones: {error}", err)
        return EXIT_INVALID
    if found.zone is not None:
        print(f"zone {found.zone.code}: {found.zone.name} ({found.zone_comuni} comuni)", file=out)
        print(f'  config: zones = ["{found.zone.code}"]', file=out)
        return EXIT_OK
    if len(found.comuni) > 1:
        print(f'{len(found.comuni)} comuni are called "{query.strip()}"; pick one by its ISTAT code:', file=out)
    for comune in found.comuni:
        print(f"{comune.name} ({comune.province}, {comune.region}), ISTAT {comune.istat}", file=out)
        if comune.zone:
            print(f"  alert zone: {comune.zone} ({zone_name(comune.zone) or '?'})", file=out)
        else:
            print('  alert zone: none in the table: name it with zones = ["..."]', file=out)
        if comune.emma_id:
            print(f"  Meteoalarm region: {comune.emma_id} ({comune.region})", file=out)
        else:
            print(f'  Meteoalarm region: not known for {comune.region}: name it with regions = ["IT0.."]', file=out)
        print(f'  config: istat = "{comune.istat}" (a comune on two zones adds the other: zones = ["..."])',
              file=out)
    return EXIT_OK
