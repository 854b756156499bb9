"""The console refuses every route of its route table without a session (enumerated, so a new
route cannot skip the check), logs in and out with an HttpOnly SameSite=Strict cookie, and
throttles wrong passwords per account and address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from console.harness import PASSWORD, ServedConsole, served

from bridge.console.accounts import AccountBook
from bridge.console.server import ROUTES

PUBLIC = {("GET", "/login"), ("POST", "/login"), ("GET", "/healthz"), ("GET", "/static"), ("HEAD", "/static"),
          ("HEAD", "/login"), ("HEAD", "/healthz")}
# IT's monitoring: no session, but a token or this machine (tests/test_console_metrics.py).
METRICS = {(method, route.path) for route in ROUTES if route.access == "metrics" for method in (route.method, "HEAD")}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[ServedConsole]:
    yield from served(tmp_path)


def every_route(site: ServedConsole) -> list[tuple[str, str]]:
    routes = []
    for route in site.console.app.router.routes():
        resource = route.resource
        assert resource is not None
        path = resource.canonical
        routes.append((route.method, path))  # HEAD too, where aiohttp added one
    return routes


def test_the_route_table_is_the_one_the_access_check_knows(site: ServedConsole) -> None:
    served_routes = {(m, p) for m, p in every_route(site) if p != "/static"}
    declared = {(r.method, r.path) for r in ROUTES}
    # aiohttp adds HEAD beside each GET: checked like its GET
    assert {(m, p) for m, p in served_routes if m != "HEAD"} == declared


def test_every_route_refuses_without_a_session(site: ServedConsole) -> None:
    routes = every_route(site)
    assert len(routes) >= len(ROUTES)
    checked = 0
    with site.client() as client:
        for method, path in routes:
            if (method, path) in PUBLIC or (method, path) in METRICS:
                continue
            for cookies in ({}, {"cb_session": "not-a-session"}):
                client.cookies.clear()
                client.cookies.update(cookies)
                answer = client.request(method, path)
                assert answer.status_code in (303, 401), (method, path, answer.status_code)
                if answer.status_code == 303:
                    assert answer.headers["location"] == "/login"
                assert "Stato" not in answer.text and "notizie" not in answer.text
                checked += 1
    assert checked >= 2 * 3  # GET / and /coda, POST /logout, each with no cookie and a bogus one


def test_public_routes_hold_no_data(site: ServedConsole) -> None:
    with site.client() as client:
        health = client.get("/healthz")
        assert (health.status_code, health.text) == (200, "ok\n")
        assert client.get("/static/console.css").status_code == 200
        login = client.get("/login")
        assert login.status_code == 200 and "Accesso" in login.text and "notizie" not in login.text
        assert client.get("/no-such-page").status_code in (303, 404)


def test_login_sets_a_strict_http_only_cookie_and_logout_ends_it(site: ServedConsole) -> None:
    with site.client() as client:
        answer = client.post("/login", data={"name": "m.rossi", "password": PASSWORD})
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        page = client.get("/")
        assert page.status_code == 200 and "<h1>Stato</h1>" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        token = client.cookies["cb_session"]
        assert site.post_form(client, "/logout", {}).status_code == 303
        client.cookies.set("cb_session", token)
        assert client.get("/").status_code == 303  # the old cookie no longer opens anything


def test_behind_tls_the_cookie_is_secure(site: ServedConsole) -> None:
    with site.client() as client:
        answer = client.post("/login", data={"name": "m.rossi", "password": PASSWORD},
                             headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in answer.headers["set-cookie"]


def test_a_wrong_password_or_name_is_refused_alike(site: ServedConsole) -> None:
    with site.client() as client:
        for name, password in (("m.rossi", "sbagliata!!"), ("nessuno", PASSWORD)):
            answer = client.post("/login", data={"name": name, "password": password})
            assert answer.status_code == 401
            assert "Nome o password non corretti." in answer.text
            assert "set-cookie" not in answer.headers


def test_logins_are_throttled_per_account_then_allowed_after_the_window(site: ServedConsole) -> None:
    with site.client() as client:
        for _ in range(5):
            assert client.post("/login", data={"name": "m.rossi", "password": "sbagliata!!"}).status_code == 401
        blocked = client.post("/login", data={"name": "m.rossi", "password": PASSWORD})
        assert blocked.status_code == 429 and "Troppi tentativi" in blocked.text
        site.daemon.ticks[0] += 15 * 60
        assert client.post("/login", data={"name": "m.rossi", "password": PASSWORD}).status_code == 303


def test_a_form_posted_from_another_site_is_refused(site: ServedConsole) -> None:
    with site.client() as client:
        answer = client.post("/login", data={"name": "m.rossi", "password": PASSWORD},
                             headers={"Origin": "https://evil.example"})
        assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_sessions_expire_after_the_timeout_without_use(site: ServedConsole) -> None:
    client = site.login()
    site.daemon.ticks[0] += 8 * 3600 - 1
    assert client.get("/").status_code == 200  # used: the timeout counts again from here
    site.daemon.ticks[0] += 8 * 3600 + 1
    assert client.get("/").status_code == 303


def test_an_account_removed_ends_its_sessions(site: ServedConsole) -> None:
    client = site.login()
    assert client.get("/coda").status_code == 200
    AccountBook(site.daemon.config.bridge.state_dir).remove("m.rossi")
    assert client.get("/coda").status_code == 303


def test_every_editor_route_refuses_a_viewer(site: ServedConsole) -> None:
    editor_routes = {(method, route.path) for route in ROUTES if route.access == "editor"
                     for method in ((route.method, "HEAD") if route.method == "GET" else (route.method,))}
    assert editor_routes  # pasting a feed address, at least
    served_routes = set(every_route(site))
    viewer = site.login()
    for method, path in sorted(editor_routes & served_routes):
        answer = viewer.request(method, path)
        assert answer.status_code == 403, (method, path, answer.status_code)
        assert "riservata agli editor" in answer.text or method == "HEAD"
    AccountBook(site.daemon.config.bridge.state_dir).add("e.bianchi", "editor", PASSWORD)
    editor = site.login("e.bianchi")
    for method, path in sorted(editor_routes & served_routes):
        answer = site.post_form(editor, path, {}) if method == "POST" else editor.request(method, path)
        assert answer.status_code != 403, (method, path)


def test_a_form_without_its_sessions_token_is_refused_and_logged(site: ServedConsole) -> None:
    AccountBook(site.daemon.config.bridge.state_dir).add("e.bianchi", "editor", PASSWORD)
    editor, other = site.login("e.bianchi"), site.login("e.bianchi")
    posts = [route.path for route in ROUTES if route.method == "POST" and route.access != "public"]
    assert "/logout" in posts and len(posts) >= 3
    for path in posts:
        for token in (None, "", site.form_token(other), site.form_token(editor) + "x"):
            data = {} if token is None else {"form_token": token}
            with structlog.testing.capture_logs() as logs:
                answer = editor.post(path, data=data)
            assert answer.status_code == 403, (path, token)
            assert "codice di sicurezza" in answer.text
            [refused] = [e for e in logs if e["event"].startswith("console form refused")]
            assert refused["user"] == "e.bianchi" and refused["path"] == path
    assert editor.get("/").status_code == 200  # still logged in: nothing was done
    assert site.post_form(editor, "/logout", {}).status_code == 303
    assert editor.get("/").status_code == 303


def test_the_same_origin_check_stays_with_the_form_token(site: ServedConsole) -> None:
    client = site.login()
    answer = site.post_form(client, "/logout", {}, headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403 and client.get("/").status_code == 200
