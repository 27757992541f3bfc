"""The read-only status page at `/`: server-rendered HTML, no scripts, refreshed every few seconds.

With API_KEY set it needs the key like every other route (transcriptarr/api/security.py): a browser
is sent to `/login`, a small form that takes the key and sets an HttpOnly, SameSite=Strict cookie
holding a token derived from it (never the key itself); the cookie is good for reading only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from pathlib import PurePath
from typing import Any

import structlog
from aiohttp import web

from transcriptarr.api.keys import DEPS, SNAPSHOTS
from transcriptarr.api.security import LOGIN_PAGE, SESSION_COOKIE, same_key, session_token

log = structlog.get_logger(__name__)

REFRESH_SECONDS = 5

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2733;background:#f6f7f9}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.1rem;margin:1.6rem 0 .4rem}
.meta{color:#5b6573}table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e3e6ea;vertical-align:middle}
th{background:#eef0f3;font-weight:600}.empty{color:#8a93a0;font-style:italic}
.bar{position:relative;width:14rem;height:1.1rem;background:#e3e6ea;border-radius:.3rem;overflow:hidden}
.bar .fill{height:100%;background:#2f80ed}.bar span{position:absolute;inset:0;text-align:center;font-size:.8rem}
.bar progress{position:absolute;width:1px;height:1px;opacity:0}
.state-busy{color:#2f80ed;font-weight:600}.state-idle{color:#3a8a3a}.dead{color:#b42318}
.error{color:#b42318;white-space:pre-wrap;max-width:50rem}.path{word-break:break-all}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{background:#fff;padding:.6rem 1rem;border-radius:.4rem}
.card b{display:block;font-size:1.3rem}
"""


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "–"
    total = round(float(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _when(iso: str | None) -> str:
    """ISO timestamp as "2026-01-31 20:15:07" (UTC)."""
    return escape(iso[:19].replace("T", " ")) if iso else "–"


def _what(job: dict[str, Any]) -> str:
    if job["media_path"]:
        return (
            f'<span class="path" title="{escape(job["media_path"])}">{escape(PurePath(job["media_path"]).name)}</span>'
        )
    return "Bazarr upload" if job["upload"] else "–"


def _bar(job: dict[str, Any]) -> str:
    value = float(job["progress"] or 0.0)
    return (
        f'<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="{value:.1f}">'
        f'<div class="fill" style="width:{value:.1f}%"></div><span>{value:.1f}%</span>'
        f'<progress id="job-progress-{job["id"]}" value="{value:.1f}" max="100">{value:.1f}%</progress></div>'
    )


def _table(headers: Sequence[str], rows: Iterable[str], empty: str, table_id: str) -> str:
    body = "".join(rows) or f'<tr><td class="empty" colspan="{len(headers)}">{escape(empty)}</td></tr>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_page(status: dict[str, Any]) -> str:
    queue = status["queue"]
    counts = queue["counts"]
    workers = _table(
        ["Worker", "Node", "Device", "State", "Job"],
        (
            f"<tr><td>{escape(w['id'])}</td><td>{escape(w['node'])}</td><td>{escape(w['device'])}</td>"
            f'<td class="{"state-" + escape(w["state"]) if w["alive"] else "dead"}">'
            f"{escape(w['state'] if w['alive'] else 'not responding')}</td>"
            f"<td>{'#' + str(w['job']['id']) if w['job'] else '–'}</td></tr>"
            for w in status["workers"]
        ),
        "no workers registered",
        "workers",
    )
    nodes = _table(
        ["Node", "Role", "Host", "Devices", "Workers", "Last heartbeat"],
        (
            f'<tr class="{"node" if not n["stale"] else "node dead"}"><td>{escape(n["name"])}</td>'
            f"<td>{escape(n['role'] or '–')}</td><td>{escape(n['host'] or '–')}</td>"
            f"<td>{escape(', '.join(n['devices']) or '–')}</td><td>{len(n['workers'])}</td>"
            f"<td>{_duration(n['heartbeat_age_seconds'])} ago{' · stale' if n['stale'] else ''}</td></tr>"
            for n in status.get("nodes", [])
        ),
        "no nodes registered",
        "nodes",
    )
    running = _table(
        ["Job", "Media", "Stage", "Progress", "ETA", "Worker"],
        (
            f'<tr class="job-row" id="job-{j["id"]}" data-state="{escape(j["state"])}"><td>#{j["id"]}</td>'
            f"<td>{_what(j)}</td><td>{escape(j['stage'])}</td><td>{_bar(j)}</td>"
            f"<td>{_duration(j['eta_seconds'])}</td><td>{escape(j['worker'] or '–')}</td></tr>"
            for j in status["running"]
        ),
        "nothing is being transcribed",
        "running",
    )
    waiting = _table(
        ["Job", "Media", "Source", "Priority", "Language", "Queued at"],
        (
            f'<tr class="job-row" id="job-{j["id"]}" data-state="queued"><td>#{j["id"]}</td><td>{_what(j)}</td>'
            f"<td>{escape(j['source'])}</td><td>{j['priority']}</td>"
            f"<td>{escape(j['target_language'] or 'original')}</td><td>{_when(j['created_at'])}</td></tr>"
            for j in status["next"]
        ),
        "the queue is empty",
        "queue",
    )
    failures = _table(
        ["Job", "Media", "Finished", "Error"],
        (
            f'<tr class="job-row" id="job-{j["id"]}" data-state="failed"><td>#{j["id"]}</td><td>{_what(j)}</td>'
            f'<td>{_when(j["finished_at"])}</td><td class="error">{escape(j["error"] or "")}</td></tr>'
            for j in status["recent_failures"]
        ),
        "no recent failures",
        "failures",
    )
    cards = "".join(
        f'<div class="card">{escape(label)}<b>{escape(str(value))}</b></div>'
        for label, value in (
            ("Queued", counts.get("queued", 0)),
            ("Processing", counts.get("processing", 0)),
            ("Done, last hour", queue["completed_last_hour"]),
            ("Failed, last hour", queue["failed_last_hour"]),
            ("Queue ETA", _duration(queue["eta_seconds"])),
        )
    )
    mode = ", ".join(status["mode"])
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Transcriptarr</title><style>{_STYLE}</style></head><body>"
        f"<h1>Transcriptarr</h1><div class=meta>version {escape(status['version'])} · node "
        f"{escape(status['node'])} · mode {escape(mode)} · model {escape(status['model'])} on "
        f"{escape(', '.join(status['devices']))} · updated {escape(status['generated_at'][:19])} UTC</div>"
        f'<h2>Queue</h2><div class="cards">{cards}</div>'
        f"<h2>Running</h2>{running}<h2>Nodes</h2>{nodes}<h2>Workers</h2>{workers}<h2>Next up</h2>{waiting}"
        f"<h2>Recent failures</h2>{failures}</body></html>"
    )


async def status_page(request: web.Request) -> web.Response:
    snapshot = await request.app[SNAPSHOTS].status.get()
    page = render_page(snapshot.data)
    if _api_key(request):  # behind the key (security.py): offer to forget the login cookie
        page = page.replace("</body>", f"{_LOGOUT_FORM}</body>", 1)
    return web.Response(text=page, content_type="text/html", charset="utf-8")


# --------------------------------------------------------------------------- the login for people

# A month: the page is a dashboard left open; logging out (or a new API_KEY) ends it sooner.
SESSION_SECONDS = 30 * 24 * 3600
_LOGOUT_FORM = '<form method="post" action="logout" class="meta"><button type="submit">Log out</button></form>'


def _api_key(request: web.Request) -> str:
    secret = request.app[DEPS].settings.api_key
    return secret.get_secret_value() if secret is not None else ""


def render_login(message: str = "") -> str:
    note = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>Transcriptarr: log in</title><style>{_STYLE}</style></head><body>"
        "<h1>Transcriptarr</h1><p class=meta>The status page needs the API key (API_KEY).</p>"
        f'{note}<form method="post" action="login"><label>API key '
        '<input type="password" name="key" autocomplete="current-password" required autofocus></label> '
        '<button type="submit">Log in</button></form></body></html>'
    )


async def login_form(request: web.Request) -> web.Response:
    if not _api_key(request):
        raise web.HTTPSeeOther("./")  # no key configured: the page is open
    return web.Response(text=render_login(), content_type="text/html", charset="utf-8")


async def login(request: web.Request) -> web.Response:
    """The key from the form, compared in constant time; a cookie that stands for it (never the key itself)."""
    expected = _api_key(request)
    if not expected:
        raise web.HTTPSeeOther("./")
    form = await request.post()
    given = form.get("key")
    if not isinstance(given, str) or not same_key(given, expected):
        log.warning("status_page_login_failed", client=request.remote)
        page = render_login("Wrong API key.")
        return web.Response(text=page, status=401, content_type="text/html", charset="utf-8")
    answer = web.HTTPSeeOther("./")
    answer.set_cookie(
        SESSION_COOKIE, session_token(expected), max_age=SESSION_SECONDS, path="/", httponly=True, samesite="Strict"
    )
    raise answer


async def logout(request: web.Request) -> web.Response:
    answer = web.HTTPSeeOther(LOGIN_PAGE)
    answer.del_cookie(SESSION_COOKIE, path="/")
    raise answer


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", status_page)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
