"""Safe by default (issue #16, part 5): loopback without a key, a warning when open, and the key on every route.

Reproduces the findings: with no API_KEY the service listened on 0.0.0.0 and said nothing;
with API_KEY set the status page `/` still listed every path and error; the README said the
key covered "/api/* and /metrics" only. Now: no key and no HTTP_HOST binds 127.0.0.1; a bind
beyond loopback without a key logs one `http_open_without_key` warning; with a key every
route but an allow-list (health, login, the OpenAPI document, Bazarr's routes) needs it,
including the routes other parts add (checked against the app's own router), and people log
in to the page with a form that sets an HttpOnly, SameSite=Strict cookie good for reading.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from tests.packaging.test_container import entrypoint, open_dir
from tests.polling import eventually
from transcriptarr.api.security import OPEN_ROUTES, PROVIDER_ROUTES, SESSION_COOKIE, needs_key

__all__ = ["open_dir"]  # a fixture, used below by name

KEY = "safe-defaults-key"
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def events(log: Path) -> list[dict[str, Any]]:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


def run_until_listening(tmp_path: Path, **env: str) -> list[dict[str, Any]]:
    """`transcriptarr run` (no workers, no library) until it listens or exits; its log events."""
    log = tmp_path / "service.log"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "DATA_DIR": str(tmp_path / "data"),
        "WORKERS": "0",
        "TRANSCRIPTARR_MODE": "standalone",
        "HTTP_PORT": str(free_port()),
        "LOG_FORMAT": "json",
        **env,
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "transcriptarr", "run"], cwd=tmp_path, env=environment, stdout=out, stderr=out
        )
    try:
        asyncio.run(
            eventually(
                lambda: process.poll() is not None or one(events(log), "http_listening"),
                "the service to listen (or exit)",
                timeout=60,
            )
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(60)
    return events(log)


def one(found: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in found if e["event"] == name]


# --------------------------------------------------------------------------- where it listens


def test_without_a_key_it_listens_on_loopback_and_says_nothing(tmp_path: Path) -> None:
    found = run_until_listening(tmp_path)

    [listening] = one(found, "http_listening")
    assert listening["host"] == "127.0.0.1"
    assert one(found, "http_open_without_key") == []


def test_open_to_the_network_without_a_key_warns_once(tmp_path: Path) -> None:
    found = run_until_listening(tmp_path, HTTP_HOST="0.0.0.0")

    assert one(found, "http_listening")[0]["host"] == "0.0.0.0"
    [warning] = one(found, "http_open_without_key")
    assert warning["level"] == "warning" and warning["addresses"] == ["0.0.0.0"]
    assert "set API_KEY" in warning["hint"]


def test_with_a_key_it_listens_on_every_address_without_a_warning(tmp_path: Path) -> None:
    found = run_until_listening(tmp_path, API_KEY=KEY)

    assert one(found, "http_listening")[0]["host"] == "0.0.0.0"
    assert one(found, "http_open_without_key") == []


def test_an_empty_http_host_means_the_default(tmp_path: Path) -> None:
    assert engine_settings(tmp_path, http_host="").bind_host == "127.0.0.1"
    assert engine_settings(tmp_path, http_host=" ", api_key=KEY).bind_host == "0.0.0.0"
    assert engine_settings(tmp_path, http_host="192.0.2.7", api_key=KEY).bind_host == "192.0.2.7"


# --------------------------------------------------------------------------- the container listens on its network


def test_the_container_entrypoint_listens_on_its_network_unless_told_otherwise(open_dir: Path) -> None:
    show = ("sh", "-c", 'echo "host=${HTTP_HOST-unset}"')

    assert "host=0.0.0.0" in entrypoint(open_dir, *show).stdout
    assert "host=127.0.0.1" in entrypoint(open_dir, *show, HTTP_HOST="127.0.0.1").stdout
    (open_dir / ".env").write_text("export http_host = 10.0.0.5\n")  # the service reads ./.env: it decides
    assert "host=unset" in entrypoint(open_dir, *show).stdout


# --------------------------------------------------------------------------- the key covers every route


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    root = tmp_path_factory.mktemp("keyed")
    library = root / "library"
    library.mkdir()
    (library / "Secret Film (2020).mkv").write_bytes(b"media")
    settings = engine_settings(root, transcriptarr_mode="standalone,provider", api_key=KEY, library_paths=str(library))
    with LiveService(settings, workers=False, snapshot_ttl_seconds=0, path_prefix="/whisper") as live:
        live.call(lambda parts: parts.queue.enqueue(_manual_job(library / "Secret Film (2020).mkv")))
        yield live


def _manual_job(path: Path) -> Any:
    from transcriptarr.db.models import Source
    from transcriptarr.queue.jobqueue import NewJob

    return NewJob(source=Source.MANUAL, media_path=str(path), target_language="en")


def routes(service: LiveService) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, parameters filled in: also the routes other parts add."""
    found = set()
    for route in service.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter", "")
        for name in ("{id}", "{model:.+}", "{model}"):
            path = path.replace(name, "1")
        if path and route.method not in ("HEAD", "*"):
            found.add((route.method, path))
    return sorted(found)


def test_every_route_but_the_open_ones_needs_the_key(keyed: LiveService) -> None:
    served = routes(keyed)
    assert ("GET", "/") in served and ("POST", "/api/jobs") in served and ("POST", "/webhooks/plex") in served

    for method, path in served:
        answer = requests.request(method, keyed.url + path, timeout=30, allow_redirects=False)
        if needs_key(path, "/whisper"):
            expected = 303 if (method, path) == ("GET", "/") else 401
            assert answer.status_code == expected, (method, path, answer.status_code, answer.text[:200])
            assert "Secret Film" not in answer.text
        else:
            # POST /login answers 401 for a wrong key, but never the key refusal itself.
            assert "missing or wrong API key" not in answer.text, (method, path, answer.text[:200])
    opened = {path for _, path in served if not needs_key(path, "/whisper")}
    bazarr = PROVIDER_ROUTES | {"/whisper" + route for route in PROVIDER_ROUTES}
    assert opened <= OPEN_ROUTES | bazarr, opened


def test_the_key_works_in_a_header_a_parameter_and_as_a_bearer_token(keyed: LiveService) -> None:
    for extra in (
        {"headers": {"X-Api-Key": KEY}},
        {"params": {"apikey": KEY}},
        {"headers": {"Authorization": f"Bearer {KEY}"}},
    ):
        answer = requests.get(keyed.url + "/api/jobs", timeout=30, **extra)  # type: ignore[arg-type]
        assert answer.status_code == 200, (extra, answer.text)
    wrong = requests.get(keyed.url + "/api/jobs", headers={"Authorization": "Bearer guess"}, timeout=30)
    assert wrong.status_code == 401


def test_the_status_page_needs_the_key_and_a_login_gives_a_reading_cookie(keyed: LiveService) -> None:
    browser = requests.Session()

    first = browser.get(keyed.url + "/", timeout=30)
    assert first.url.endswith("/login") and first.status_code == 200
    assert 'name="key"' in first.text and "Secret Film" not in first.text

    refused = browser.post(keyed.url + "/login", data={"key": "guess"}, timeout=30)
    assert refused.status_code == 401 and "Wrong API key" in refused.text and not browser.cookies

    logged_in = browser.post(keyed.url + "/login", data={"key": KEY}, timeout=30, allow_redirects=False)
    assert logged_in.status_code == 303
    cookie = logged_in.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert KEY not in cookie  # a token derived from the key, not the key
    page = browser.get(keyed.url + "/", timeout=30)
    assert page.status_code == 200 and "Secret Film" in page.text and "Log out" in page.text
    assert browser.get(keyed.url + "/api/status", timeout=30).status_code == 200

    # For reading only: a page on another site that makes the browser post cannot change anything.
    changed = browser.post(keyed.url + "/api/scan", timeout=30)
    assert changed.status_code == 401

    browser.post(keyed.url + "/logout", timeout=30)
    assert browser.get(keyed.url + "/", timeout=30).url.endswith("/login")

    by_url = requests.get(keyed.url + "/", params={"apikey": KEY}, timeout=30)
    assert by_url.status_code == 200 and "Secret Film" in by_url.text


def test_without_a_key_the_page_is_open_and_login_leads_to_it(tmp_path: Path) -> None:
    with LiveService(engine_settings(tmp_path), workers=False) as live:
        page = requests.get(live.url + "/", timeout=30)
        login = requests.get(live.url + "/login", timeout=30)

    assert page.status_code == 200 and "<h1>Transcriptarr</h1>" in page.text
    assert login.url == live.url + "/" and login.status_code == 200
