"""One table of media servers (integrations/mediaservers/servers.py): each entry has its webhook routes, its
OpenAPI entries and its settings, and no route or document entry exists without an entry.

The routes are checked on a real service over loopback HTTP: each answers with its own parser's words.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from transcriptarr.api import subgen_routes, webhooks
from transcriptarr.api.arr_webhooks import APPS
from transcriptarr.api.openapi import document
from transcriptarr.integrations.mediaservers import plex
from transcriptarr.integrations.mediaservers.events import PayloadError
from transcriptarr.integrations.mediaservers.servers import (
    API_SERVERS,
    JSON,
    JSON_PARTS,
    MULTIPART,
    SERVERS,
    Connection,
    MediaServerEntry,
    Parser,
    configured,
    connection,
    server_from_settings,
)
from transcriptarr.integrations.mediaservers.subgen import detect
from transcriptarr.settings import ConfigError, load_settings

ROUTES = [entry.route for entry in SERVERS]
SUBGEN = [entry.route for entry in SERVERS if entry.subgen is not None]
# Bodies only one server writes, as SubGen's /webhook tells them apart.
SAMPLES: dict[str, dict[str, Any]] = {
    "jellyfin": {"NotificationType": "ItemAdded", "ItemId": "a1b2", "ItemType": "Movie", "Name": "Film"},
    "plex": {"event": "library.new", "Metadata": {"ratingKey": "12", "type": "movie", "title": "Film"}},
    "emby": {"Event": "library.new", "Item": {"Id": "751181", "Type": "Movie", "Name": "Film"}},
    "tautulli": {"event": "added", "file": "/media/Film.mkv"},
}


def media_server_paths(paths: dict[str, object]) -> set[str]:
    """The document's /webhooks/{name} paths that are not Sonarr's or Radarr's (api/arr_webhooks.py)."""
    return {path for path in paths if path.startswith("/webhooks/") and path.removeprefix("/webhooks/") not in APPS}


def payload_error(parse: Parser) -> str:
    with pytest.raises(PayloadError) as caught:
        parse({})
    return str(caught.value)


# --------------------------------------------------------------------------- the table and its readers


def test_webhook_routes_are_the_tables() -> None:
    assert list(webhooks.ROUTES) == ROUTES == ["plex", "jellyfin", "emby", "tautulli"]
    for entry in SERVERS:
        assert webhooks.ROUTES[entry.route] is entry.parse
    assert tuple(subgen_routes.MEDIA_SERVER_PATHS) == (*(f"/{route}" for route in SUBGEN), "/webhook")
    assert set(JSON_PARTS) == {"payload", "data"}


def test_subgens_first_url_tells_apart_only_servers_of_the_table() -> None:
    for route, body in SAMPLES.items():
        assert detect(body) == route
        assert route in SUBGEN


@pytest.mark.parametrize("prefix", ["", "/whisper"])
def test_the_document_has_each_servers_paths_and_no_other(prefix: str) -> None:
    paths = document(prefix)["paths"]
    assert media_server_paths(paths) == {f"/webhooks/{route}" for route in ROUTES}
    for entry in SERVERS:
        operation = paths[f"/webhooks/{entry.route}"]["post"]
        assert operation["summary"] == entry.summary
        assert tuple(operation["requestBody"]["content"]) == entry.content_types
        if MULTIPART in entry.content_types:
            parts = operation["requestBody"]["content"][MULTIPART]["schema"]["properties"]
            assert entry.json_part in parts
            assert parts.items() >= entry.parts.items()
        subgen = paths.get(f"/{entry.route}")
        assert (subgen is not None) == (entry.subgen is not None), entry.route
        if subgen is not None:
            assert subgen["post"]["summary"].startswith(f"SubGen's URL for {entry.title}: as /webhooks/{entry.route}")
            assert subgen["post"]["requestBody"] == operation["requestBody"]
    tagged = {path for path, item in paths.items() if "webhooks" in item.get("post", {}).get("tags", [])}
    subgen_urls = {path for path in tagged if path.count("/") == 1}
    assert subgen_urls == {*(f"/{route}" for route in SUBGEN), "/webhook", "/batch"}
    anything = paths["/webhook"]["post"]
    assert anything["summary"] == (
        "SubGen's first URL: any of the Plex, Jellyfin, Emby or Tautulli bodies, told apart by shape"
    )
    assert set(anything["requestBody"]["content"]) == {JSON, MULTIPART}


def test_each_server_with_an_api_reads_its_two_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    assert API_SERVERS == ("plex", "jellyfin", "emby")
    values: dict[str, str] = {}
    for name in API_SERVERS:
        api = connection(name)
        monkeypatch.delenv(api.url_setting.upper(), raising=False)
        monkeypatch.delenv(api.key_setting.upper(), raising=False)
        values |= {api.url_setting: f"http://{name}.invalid:8096/", api.key_setting: f"{name}-key"}
        with pytest.raises(ConfigError, match=rf"^{api.url_setting.upper()}: 'ftp://x' is not an http"):
            load_settings(**{api.url_setting: "ftp://x"})
    assert configured(load_settings()) == ()
    assert connection("jellyfin").needs == "JELLYFIN_URL and JELLYFIN_API_KEY"
    assert connection("plex").needs == "PLEX_URL and PLEX_TOKEN"
    settings = load_settings(**values)
    assert configured(settings) == API_SERVERS
    for name in API_SERVERS:
        client = server_from_settings(settings, name)
        assert client is not None and client.name == name
        assert connection(name).address_and_key(settings) == (f"http://{name}.invalid:8096", f"{name}-key")
    with pytest.raises(KeyError, match="tautulli has no API of its own"):
        connection("tautulli")


def test_a_bad_table_entry_is_refused_with_what_to_fix() -> None:
    parse = SERVERS[0].parse
    with pytest.raises(ValueError, match="route 'Kodi Box' must be a lower-case name"):
        MediaServerEntry("Kodi Box", "Kodi", parse, "Kodi", (JSON,))
    with pytest.raises(ValueError, match="media server 'kodi': give json_part exactly when it posts multipart"):
        MediaServerEntry("kodi", "Kodi", parse, "Kodi", (JSON, MULTIPART))
    with pytest.raises(ValueError, match=r"setting 'kodi_url' is not a field of transcriptarr/settings\.py"):
        Connection("kodi_url", "kodi_api_key", plex.plex_server)


# --------------------------------------------------------------------------- the routes of a real service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    tmp = tmp_path_factory.mktemp("table")
    (tmp / "library").mkdir()
    settings = engine_settings(tmp, transcriptarr_mode="standalone", library_paths=str(tmp / "library"))
    with LiveService(settings, workers=False) as live:
        yield live


def test_the_service_routes_each_servers_urls_and_no_other(service: LiveService) -> None:
    posted = [
        (route.resource.canonical, route.handler)
        for route in service.app.router.routes()
        if route.resource is not None and route.method == "POST"
    ]
    by_webhooks = {path for path, handler in posted if handler.__module__ == webhooks.__name__}
    assert by_webhooks == {f"/webhooks/{route}" for route in ROUTES}
    by_subgen = {path for path, handler in posted if handler is subgen_routes.media_server_event}
    assert by_subgen == {*(f"/{route}" for route in SUBGEN), "/webhook"}


@pytest.mark.parametrize("route", ROUTES)
def test_each_webhook_url_reads_the_body_with_its_servers_parser(service: LiveService, route: str) -> None:
    entry = next(entry for entry in SERVERS if entry.route == route)
    answer = requests.post(f"{service.url}/webhooks/{route}", json={}, timeout=30)
    assert answer.status_code == 400
    assert answer.json() == {"error": f"{route} webhook: {payload_error(entry.parse)}"}
    if entry.subgen is not None:
        answer = requests.post(f"{service.url}/{route}", json={}, timeout=30)
        assert answer.status_code == 400
        assert answer.json() == {"error": f"/{route} webhook: {payload_error(entry.subgen)}"}


def test_a_server_not_in_the_table_has_no_url(service: LiveService) -> None:
    assert requests.post(f"{service.url}/webhooks/kodi", json={}, timeout=30).status_code == 404
    assert requests.post(f"{service.url}/kodi", json={}, timeout=30).status_code == 404
