"""The console's web server: aiohttp on the daemon's event loop, its route table, the session
check in front of every route, and thin handlers over `bridge.console.views`.

Every route is in ROUTES with who may use it: "public" (the login page, assets, /healthz),
"viewer" (every account), "editor", or "metrics" (IT's monitoring: its token, or this machine;
`metrics.metrics_allowed`). The access middleware refuses a request without a live session
before any handler runs: a page without a session is never rendered.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import jinja2
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bridge.approval import (
    APPROVE,
    BAD_TEXT,
    DROP,
    HOLD,
    NEEDS_CONFIRM,
    RETRY,
    SEND_NOW,
    Action,
    ActionRefused,
    Decision,
)
from bridge.compose import Composed, Composition
from bridge.console import componi, editor, feed_preview, metrics, published, trail, views
from bridge.console.accounts import AccountBook, AccountError, verify_password
from bridge.console.month_cache import PastMonths
from bridge.console.sessions import LoginThrottle, Session, Sessions
from bridge.engagement import Engagement
from bridge.store import Store

log = structlog.get_logger("bridge.console")

COOKIE = "cb_session"
HERE = Path(__file__).parent
STATIC = HERE / "static"
# What a page may load: only its own stylesheet; images of alerts from https sites (the phone
# loads them too); no script, no frame. A tag that slipped through escaping would run nothing.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' https:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # Not "no-referrer": with it a browser posts forms with "Origin: null", which the
    # same-origin check must refuse; "same-origin" still tells other sites nothing.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
MAX_TEXT = 5000  # characters of an edited text read from a form (a channel's limit is far below)
MAX_REASON = 500
STOP_GRACE = 5.0  # seconds open requests get at the daemon's stop
# A wrong password costs the same as a right one: an unknown name is checked against this.
_DUMMY_HASH = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


class Daemon(feed_preview.Previewer, Protocol):
    """What the console reads of the running daemon: its config, state and clock, and for
    *Anteprima* the fetcher, parser processes and article reader of its polls."""

    @property
    def engagement(self) -> Engagement: ...

    async def act(self, action: Action, *, who: str, where: str) -> Decision:
        """An editor's action, decided and made durable (`Bridge.act`); raise ActionRefused."""

    async def delete_post(self, delivery_id: str, *, who: str, where: str, reason: str) -> str:
        """A post deleted on its platform, audited (`Bridge.delete_post`); raise ActionRefused."""
    async def compose(self, composition: Composition, *, who: str, where: str) -> Composed:
        """An alert an editor wrote, queued durably (`Bridge.compose`); raise ActionRefused."""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    name: str
    access: str  # "public" | "viewer" | "editor" | "metrics" (`metrics.metrics_allowed`, no session)


ROUTES = (
    Route("GET", "/login", "login_form", "public"),
    Route("POST", "/login", "login", "public"),
    Route("GET", "/healthz", "healthz", "public"),
    Route("POST", "/logout", "logout", "viewer"),
    Route("GET", "/", "stato", "viewer"),
    Route("GET", "/coda", "coda", "viewer"),
    Route("GET", "/metrics", "metrics", "metrics"),
    Route("GET", "/pubblicati", "pubblicati", "viewer"),
    Route("GET", "/pubblicati.csv", "pubblicati_csv", "viewer"),
    Route("GET", "/pubblicati/riepilogo", "riepilogo", "viewer"),
    Route("GET", "/anteprima", "anteprima", "viewer"),
    Route("GET", "/anteprima/feed", "anteprima_feed", "viewer"),
    # The daemon would connect where the user says: editors only (and public addresses only).
    Route("POST", "/anteprima/indirizzo", "anteprima_indirizzo", "editor"),
    # The editors' actions on one alert of In coda (bridge.console.editor), each through `act`.
    Route("POST", "/coda/approva", "approva", "editor"),
    Route("POST", "/coda/modifica", "modifica", "editor"),  # an edited text's preview: changes nothing
    Route("POST", "/coda/ferma", "ferma", "editor"),
    Route("POST", "/coda/scarta", "scarta", "editor"),
    Route("POST", "/coda/invia-subito", "invia_subito", "editor"),
    Route("POST", "/coda/riprova", "riprova", "editor"),
    # Deleting a post of Pubblicati (bridge.deletion): an editor's decision, confirmed.
    Route("POST", "/pubblicati/cancella", "cancella", "editor"),
    Route("GET", "/audit", "audit", "viewer"),
    # An alert an editor writes (bridge.console.componi): viewers see the form, disabled.
    Route("GET", "/componi", "componi", "viewer"),
    Route("POST", "/componi/anteprima", "componi_anteprima", "editor"),  # changes nothing
    Route("POST", "/componi/invia", "componi_invia", "editor"),
)
ROLE_RANK = {"viewer": 1, "editor": 2}
SESSION = web.RequestKey("session", Session)


class Console:
    """The console of one daemon: accounts, sessions, throttle, templates, and the aiohttp app."""

    def __init__(self, daemon: Daemon, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.daemon = daemon
        config = daemon.config
        self.accounts = AccountBook(config.bridge.state_dir)
        self.sessions = Sessions(config.console.session_timeout.total_seconds(), monotonic)
        self.throttle = LoginThrottle(monotonic)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.access = {(route.method, route.path): route.access for route in ROUTES}
        self.metrics_token = config.console.metrics_token  # [console] changes take effect at restart
        # What the search knows of past months' history files, so that it skips those that
        # cannot hold what it looks for (bridge.console.month_cache).
        self.past_months = PastMonths(lambda month: self.daemon.store.month_file(month),
                                      lambda month: self.daemon.store.month_posts(month), daemon.now)
        self.app = web.Application(middlewares=[self._security])
        for route in ROUTES:
            self.app.router.add_route(route.method, route.path, getattr(self, f"_{route.name}"), name=route.name)
        self.app.router.add_static("/static", STATIC, name="static", append_version=False)
        self._runner: web.AppRunner | None = None

    # -- serving ----------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        """Serve on `host`:`port` from the running loop; raise OSError if it cannot listen."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=STOP_GRACE)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        log.info("console listening", address=f"http://{_netloc(host, self.port or port)}/")

    @property
    def port(self) -> int | None:
        """The port listened on (the one the system chose for port 0), None before `start`."""
        if self._runner is None:
            return None
        for address in self._runner.addresses:
            return int(address[1])
        return None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- every request ----------------------------------------------------------------------

    @web.middleware
    async def _security(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route
        resource = route.resource
        path = resource.canonical if resource is not None else ""
        access = "public" if path == "/static" else self.access.get((route.method, path), "viewer")
        if request.method not in ("GET", "HEAD") and not _same_origin(request):
            response: web.StreamResponse = web.Response(status=403, text="richiesta da un altro sito rifiutata")
        elif access == "public":
            response = await handler(request)
        elif access == "metrics":
            if metrics.metrics_allowed(self.metrics_token, request.remote, request.headers):
                response = await handler(request)
            else:
                log.warning("console metrics refused", address=request.remote or "?")
                response = web.Response(status=403, content_type="text/plain",
                                        text="metrics: only with the token, or from this machine without a proxy")
        else:
            session = self.sessions.find(request.cookies.get(COOKIE))
            if session is not None and not self._still_valid(session):
                self.sessions.close(session.token)
                session = None
            if session is None:
                response = self._refuse(request)
            elif ROLE_RANK[session.role] < ROLE_RANK[access]:
                response = web.Response(status=403, text="questa pagina è riservata agli editor",
                                        content_type="text/plain")
            elif request.method not in ("GET", "HEAD") and not await _form_token_matches(request, session):
                log.warning("console form refused: its form token is missing or not this session's",
                            user=session.name, path=path, address=request.remote or "?")
                response = web.Response(status=403, content_type="text/plain",
                                        text="modulo rifiutato: manca il suo codice di sicurezza o non è di "
                                             "questa sessione; ricaricare la pagina e riprovare")
            else:
                request[SESSION] = session
                response = await handler(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def _still_valid(self, session: Session) -> bool:
        """An account removed, or given another role, ends its sessions."""
        try:
            account = self.accounts.get(session.name)
        except AccountError as exc:
            log.error("console accounts unreadable", error=str(exc), hint=exc.hint)
            return False
        return account is not None and account.role == session.role

    @staticmethod
    def _refuse(request: web.Request) -> web.StreamResponse:
        if request.method in ("GET", "HEAD"):
            raise web.HTTPSeeOther("/login")
        return web.Response(status=401, text="accesso richiesto", content_type="text/plain")

    def _page(self, template: str, request: web.Request, **values: object) -> web.Response:
        session = request.get(SESSION)
        body = self.templates.get_template(template).render(
            user=session.name if session else None, form_token=session.form_token if session else "",
            can_act=session is not None and ROLE_RANK[session.role] >= ROLE_RANK["editor"], **values)
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    # -- handlers ---------------------------------------------------------------------------

    async def _login_form(self, request: web.Request) -> web.StreamResponse:
        return self._page("login.html", request, error=None, name="")

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        name = str(form.get("name", "")).strip()[:64]
        password = str(form.get("password", ""))[:1024]
        address = request.remote or "?"
        wait = self.throttle.retry_after(name, address)
        if wait is not None:
            log.warning("console login refused: too many attempts", user=name, address=address)
            response = self._page("login.html", request, name=name,
                                  error=f"Troppi tentativi falliti: riprovare tra {int(wait // 60) + 1} minuti.")
            response.set_status(429)
            return response
        try:
            account = self.accounts.get(name)
        except AccountError as exc:
            log.error("console accounts unreadable", error=str(exc), hint=exc.hint)
            account = None
        # The hash is checked off the loop (scrypt takes tens of milliseconds and 32 MiB), and
        # checked for an unknown name too, so that the answer's time says nothing.
        stored = account.password_hash if account else _DUMMY_HASH
        good = await asyncio.get_running_loop().run_in_executor(None, verify_password, password, stored)
        if account is None or not good:
            self.throttle.failed(name, address)
            log.warning("console login failed", user=name, address=address)
            response = self._page("login.html", request, name=name, error="Nome o password non corretti.")
            response.set_status(401)
            return response
        self.throttle.succeeded(name)
        session = self.sessions.open(account.name, account.role)
        log.info("console login", user=account.name, role=account.role, address=address)
        response = web.HTTPSeeOther("/")
        response.set_cookie(COOKIE, session.token, httponly=True, samesite="Strict", path="/",
                            secure=request.secure or request.headers.get("X-Forwarded-Proto") == "https")
        raise response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        session = request[SESSION]
        self.sessions.close(session.token)
        log.info("console logout", user=session.name, address=request.remote or "?")
        response = web.HTTPSeeOther("/login")
        response.del_cookie(COOKIE, path="/")
        raise response

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        # Answered by the event loop itself: if it answers, the loop runs. No data.
        return web.Response(text="ok\n", content_type="text/plain")

    async def _stato(self, request: web.Request) -> web.StreamResponse:
        return self._page("stato.html", request, page="stato",
                          **views.stato(self.daemon.config, self.daemon.store, self.daemon.now(), dict(request.query)))

    async def _coda(self, request: web.Request) -> web.StreamResponse:
        session = request[SESSION]
        notice, session.notice = session.notice, None
        return self._page("coda.html", request, page="coda", notice=notice, labels=editor.LABEL_IT,
                          **views.coda(self.daemon.config, self.daemon.store, self.daemon.now()))

    # -- the editors' actions (bridge.console.editor) ----------------------------------------

    async def _approva(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, APPROVE)

    async def _ferma(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, HOLD)

    async def _scarta(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, DROP)

    async def _invia_subito(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, SEND_NOW)

    async def _riprova(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, RETRY)

    async def _act(self, request: web.Request, name: str) -> web.StreamResponse:
        """Make the action `name` on the form's alert through the daemon's `act`, by the
        session's account from the console; then back to In coda with one line saying what
        happened. An edited text that was changed after its preview, or that the decision
        refused, shows the edit page again with the text (nothing the editor wrote is lost)."""
        form = await request.post()
        session = request[SESSION]
        alert_id = str(form.get("id", "")).strip()[:80]
        text = str(form["testo"])[:MAX_TEXT] if name == APPROVE and "testo" in form else None
        action = Action(name, alert_id, text=text, confirm=form.get("conferma") == "si",
                        reason=str(form.get("motivo", ""))[:MAX_REASON])
        config, store = self.daemon.config, self.daemon.store
        if text is not None and not editor.same_text(str(form.get("visto", "")), text):
            return self._edit_page(request, alert_id, text, status=409,
                                   notice="Il testo è cambiato dopo l'anteprima: controllarla, poi approvare.")
        seen = store.delivery(alert_id)
        try:
            decision = await self.daemon.act(action, who=session.name, where=editor.WHERE)
        except ActionRefused as refusal:
            log.info("console action refused", user=session.name, action=name, alert=alert_id, code=refusal.code,
                     message=str(refusal))
            if text is not None and refusal.code in (BAD_TEXT, NEEDS_CONFIRM):
                return self._edit_page(request, alert_id, text, status=409, notice=editor.bad_text_it(refusal))
            session.notice = editor.refused_notice(
                refusal, action, title=seen.alert.title if seen else "", last=store.last_action(alert_id),
                posted=store.posted(alert_id), tz=config.bridge.timezone)
        except OSError as exc:
            # The state could not be written: the action was not made (`Store.plan_act`).
            log.error("console action not made: the state cannot be written", user=session.name, action=name,
                      alert=alert_id, error=str(exc))
            session.notice = (f"Azione non fatta: lo stato non si può scrivere ({exc.strerror or exc}). "
                              "Riprovare; se continua, avvisare i tecnici.")
        else:
            session.notice = editor.done_notice(decision, action)
        raise web.HTTPSeeOther(f"/coda#d-{quote(alert_id, safe='')}")

    async def _cancella(self, request: web.Request) -> web.StreamResponse:
        """Delete the form's post on its platform through the daemon (`Bridge.delete_post`), by
        the session's account from the console, once the editor ticked the confirmation and gave
        a reason; then back to Pubblicati with one line saying what happened."""
        form = await request.post()
        session = request[SESSION]
        ident = str(form.get("id", "")).strip()[:80]
        reason = str(form.get("motivo", ""))[:MAX_REASON]
        if form.get("conferma") != "si":
            session.notice = f"Messaggio {ident} non cancellato: spuntare la conferma."
        else:
            try:
                await self.daemon.delete_post(ident, who=session.name, where=editor.WHERE, reason=reason)
            except ActionRefused as refusal:
                log.info("console deletion refused", user=session.name, post=ident, code=refusal.code,
                         message=str(refusal))
                session.notice = f"Messaggio {ident} non cancellato: {refusal}."
            except OSError as exc:
                log.error("console deletion not made: the state cannot be written", user=session.name, post=ident,
                          error=str(exc))
                session.notice = (f"Cancellazione non fatta: lo stato non si può scrivere ({exc.strerror or exc}). "
                                  "Riprovare; se continua, avvisare i tecnici.")
            else:
                session.notice = f"Messaggio {ident} cancellato dal canale."
        raise web.HTTPSeeOther("/pubblicati")

    async def _modifica(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        return self._edit_page(request, str(form.get("id", "")).strip()[:80], str(form.get("testo", ""))[:MAX_TEXT])

    def _edit_page(self, request: web.Request, alert_id: str, text: str, *, status: int = 200,
                   notice: str | None = None) -> web.StreamResponse:
        """The edited `text` of `alert_id` as it would be sent, with the fact guard's warning and
        the form that approves it; back to In coda when no edited text can be approved on it."""
        session = request[SESSION]
        config, store = self.daemon.config, self.daemon.store
        try:
            edit = editor.preview_edit(config, store, alert_id, text, now=self.daemon.now(), who=session.name)
        except ActionRefused as refusal:
            seen = store.delivery(alert_id)
            session.notice = editor.refused_notice(
                refusal, Action(APPROVE, alert_id, text=text), title=seen.alert.title if seen else "",
                last=store.last_action(alert_id), posted=store.posted(alert_id), tz=config.bridge.timezone)
            raise web.HTTPSeeOther(f"/coda#d-{quote(alert_id, safe='')}") from None
        channel = config.channels.get(edit.delivery.channel)
        preview = views.phone_preview(channel, edit.alert) if channel is not None and edit.alert else None
        response = self._page("modifica.html", request, page="coda", edit=edit, preview=preview, notice=notice)
        response.set_status(status if edit.error is None else 400)
        return response

    # -- an alert an editor writes (bridge.console.componi) ------------------------------------

    async def _componi(self, request: web.Request) -> web.StreamResponse:
        return self._compose_page(request, componi.blank(self.daemon.config))

    async def _componi_anteprima(self, request: web.Request) -> web.StreamResponse:
        return self._compose_page(request, await _compose_form(request), previewing=True)

    async def _componi_invia(self, request: web.Request) -> web.StreamResponse:
        """Send the previewed alert through the daemon's `compose`, by the session's account
        from the console; then In coda with one line saying so. A form changed after its
        preview, or refused, shows the page again with what was typed and the reason."""
        session = request[SESSION]
        form = await _compose_form(request)
        posted = await request.post()
        if str(posted.get("visto", "")) != form.seen:
            return self._compose_page(request, form, previewing=True, status=409,
                                      notice="L'avviso è cambiato dopo l'anteprima: controllarla, poi inviare.")
        try:
            composed = await self.daemon.compose(form.composition(), who=session.name, where=editor.WHERE)
        except ActionRefused as refusal:
            log.info("console composed alert refused", user=session.name, code=refusal.code, message=str(refusal))
            return self._compose_page(request, form, status=409 if refusal.code == "already_queued" else 400,
                                      error=refusal.it or str(refusal))
        except OSError as exc:
            log.error("console composed alert not queued: the state cannot be written", user=session.name,
                      error=str(exc))
            return self._compose_page(request, form, status=503, error=(
                f"Avviso non inviato: lo stato non si può scrivere ({exc.strerror or exc}). Riprovare; se "
                "continua, avvisare i tecnici."))
        session.notice = componi.done_notice(composed)
        raise web.HTTPSeeOther("/coda")

    def _compose_page(self, request: web.Request, form: componi.Form, *, previewing: bool = False,
                      status: int = 200, error: str | None = None, notice: str | None = None) -> web.Response:
        config = self.daemon.config
        previews: tuple[views.PhonePreview, ...] = ()
        if previewing and error is None:
            shown = componi.preview(config, form, now=self.daemon.now(), who=request[SESSION].name)
            previews, error = shown.previews, shown.error
        response = self._page("componi.html", request, page="componi", form=form, previews=previews, error=error,
                              notice=notice, channels=componi.offered_channels(config))
        response.set_status(400 if error is not None and status == 200 else status)
        return response

    async def _audit(self, request: web.Request) -> web.StreamResponse:
        # The trail is read from its file: off the loop.
        values = await asyncio.get_running_loop().run_in_executor(
            None, trail.audit, self.daemon.config, self.daemon.store, dict(request.query))
        response = self._page("audit.html", request, page="audit", **values)
        if values["error"]:
            response.set_status(400)
        return response

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        body = metrics.exposition(self.daemon.config, self.daemon.store, self.daemon.now())
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
    async def _pubblicati(self, request: web.Request) -> web.StreamResponse:
        # The history is read from its files: off the loop, which goes on polling and posting.
        values = await asyncio.get_running_loop().run_in_executor(
            None, views.pubblicati, self.daemon.config, self.daemon.store, dict(request.query),
            self.daemon.engagement, self.daemon.now(), self.past_months)
        session = request[SESSION]
        notice, session.notice = session.notice, None
        response = self._page("pubblicati.html", request, page="pubblicati", notice=notice, **values)
        if values["error"]:
            response.set_status(400)
        return response

    async def _riepilogo(self, request: web.Request) -> web.StreamResponse:
        values = await asyncio.get_running_loop().run_in_executor(
            None, views.riepilogo, self.daemon.config, self.daemon.store, dict(request.query), self.daemon.now(),
            self.daemon.engagement)
        response = self._page("riepilogo.html", request, page="pubblicati", **values)
        if values["error"]:
            response.set_status(400)
        return response

    async def _anteprima(self, request: web.Request) -> web.StreamResponse:
        return self._anteprima_page(request)

    async def _anteprima_feed(self, request: web.Request) -> web.StreamResponse:
        feed_id = request.query.get("feed", "")
        try:
            count = feed_preview.parse_count(request.query.get("quanti"))
            result = await feed_preview.preview_configured(self.daemon, feed_id, count)
        except feed_preview.PreviewError as exc:
            self._preview_failed(request, exc, feed=feed_id[:80])
            return self._anteprima_page(request, error=exc, feed=feed_id, count=request.query.get("quanti", ""))
        return self._anteprima_page(request, result=result, feed=feed_id, count=str(count))

    async def _anteprima_indirizzo(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        url = str(form.get("url", ""))[:feed_preview.MAX_URL_LENGTH + 1]
        count_text = str(form.get("quanti", ""))[:20]
        session = request[SESSION]
        checked = ""
        try:
            count = feed_preview.parse_count(count_text)
            checked = feed_preview.checked_url(url)
            # Who made the daemon fetch what: said before the fetch, so a hung one is in the log too.
            log.info("console preview of a pasted address", user=session.name, url=checked[:200])
            result = await feed_preview.preview_pasted(self.daemon, checked, count)
        except feed_preview.PreviewError as exc:
            # An address that did not pass the check may hold a password: it is not logged.
            self._preview_failed(request, exc, url=checked[:200] or "(not valid)")
            return self._anteprima_page(request, error=exc, url=url.strip(), count=count_text)
        return self._anteprima_page(request, result=result, url=checked, count=str(count))

    def _anteprima_page(self, request: web.Request, *, result: dict[str, object] | None = None,
                        error: feed_preview.PreviewError | None = None, feed: str = "", url: str = "",
                        count: str = "") -> web.Response:
        session = request[SESSION]
        response = self._page("anteprima.html", request, page="anteprima", result=result,
                              error=str(error) if error else None,
                              feeds=feed_preview.choices(self.daemon.config), chosen_feed=feed, url=url,
                              count=count or str(feed_preview.DEFAULT_COUNT), max_count=feed_preview.MAX_COUNT,
                              can_paste=ROLE_RANK[session.role] >= ROLE_RANK["editor"])
        if error is not None:
            response.set_status(error.status)
        return response

    @staticmethod
    def _preview_failed(request: web.Request, exc: feed_preview.PreviewError, **where: str) -> None:
        log.warning("console preview failed", user=request[SESSION].name, error=exc.detail or str(exc),
                    hint=exc.hint, **where)

    async def _pubblicati_csv(self, request: web.Request) -> web.StreamResponse:
        """Every post the page's query finds (all pages), as CSV, written one month at a time."""
        try:
            query = published.parse_query(dict(request.query))
        except published.QueryError as exc:
            return web.Response(status=400, text=f"{exc}\n", content_type="text/plain")
        config, store = self.daemon.config, self.daemon.store
        tz = config.bridge.timezone
        names = {feed.id: feed.name for feed in config.feeds}
        loop = asyncio.get_running_loop()
        response = web.StreamResponse(headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="pubblicati-{self.daemon.now().astimezone(tz):%Y%m%d}.csv"',
        })
        await response.prepare(request)
        await response.write(published.csv_header().encode())
        for month in published.months_needed(query, store.history_months(), tz):
            chunk = await loop.run_in_executor(None, _month_csv, query, store, month, tz, names,
                                               self.daemon.engagement, self.past_months)
            if chunk:
                await response.write(chunk.encode())
        await response.write_eof()
        return response


def _month_csv(query: published.HistoryQuery, store: Store, month: str, tz: ZoneInfo,
               names: dict[str, str], engagement: Engagement, digests: published.MonthDigests) -> str:
    """The CSV lines of the posts of `month` that `query` asks for, newest first, with the
    views and reactions `engagement` knows."""
    return published.csv_rows(published.matching(query, [month], store.month_posts, tz, digests), tz, names,
                              engagement.counts_for)


async def _compose_form(request: web.Request) -> componi.Form:
    posted = await request.post()
    fields = {name: str(posted.get(name, "")) for name in ("id", "titolo", "testo", "link", "immagine", "urgente")}
    return componi.read_form(fields, [str(value) for value in posted.getall("canale", [])])


FORM_TOKEN = "form_token"  # the field of every form of a session's pages (see `Session.form_token`)


async def _form_token_matches(request: web.Request, session: Session) -> bool:
    """Whether a posted form carries `session`'s own form token. A page of another site can
    make a browser post a form, but cannot read the token off the console's pages."""
    form = await request.post()  # kept by aiohttp: the handler reads the same form
    sent = form.get(FORM_TOKEN)
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), session.form_token.encode())


def _same_origin(request: web.Request) -> bool:
    """A form posted from the console itself: no Origin (an old browser, a script on the
    machine) or one naming this host. SameSite=Strict already keeps the cookie off other
    sites' requests; this also keeps them from logging someone in."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
