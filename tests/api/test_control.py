"""Status and control over real loopback HTTP: API key, jobs, paths, scan, events, metrics, OpenAPI."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from tests.media_factory import speak
from transcriptarr.api.openapi import document
from transcriptarr.db.database import Health

KEY = "s3cret-key"
AUTH = {"X-Api-Key": KEY}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("control")
    library, outside = root / "library", root / "outside"
    library.mkdir()
    outside.mkdir()
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        (library / name).write_bytes(b"media")
    (outside / "secret.mkv").write_bytes(b"not yours")
    (library / "escape.mkv").symlink_to(outside / "secret.mkv")
    (library / "Season 1").mkdir()
    return {"root": root, "library": library, "outside": outside}


@pytest.fixture(scope="module")
def service(folders: dict[str, Path]) -> Iterator[LiveService]:
    """No workers: queued jobs stay queued, so control requests meet a known state."""
    settings = engine_settings(
        folders["root"],
        transcriptarr_mode="standalone,provider",
        api_key=KEY,
        library_paths=str(folders["library"]),
        library_follow_symlinks=False,  # escape.mkv: a symlink out of the library, refused like the scan skips it
    )
    with LiveService(settings, workers=False, snapshot_ttl_seconds=0) as live:
        yield live


def api(service: LiveService, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {**AUTH, **kwargs.pop("headers", {})}
    return requests.request(method, f"{service.url}{path}", headers=headers, timeout=30, **kwargs)


def queue_file(service: LiveService, path: Path, **body: Any) -> dict[str, Any]:
    response = api(service, "POST", "/api/jobs", json={"path": str(path), "language": "en", **body})
    assert response.status_code in (200, 201), response.text
    job: dict[str, Any] = response.json()["jobs"][0]["job"]
    return job


# --------------------------------------------------------------------------- security


@pytest.mark.parametrize("path", ["/api/status", "/api/jobs", "/metrics", "/api/jobs/1"])
def test_api_key_is_required(service: LiveService, path: str) -> None:
    missing = requests.get(f"{service.url}{path}", timeout=10)
    wrong = requests.get(f"{service.url}{path}", headers={"X-Api-Key": "guess"}, timeout=10)
    for response in (missing, wrong):
        assert response.status_code == 401
        assert "API key" in response.json()["error"]
    assert requests.get(f"{service.url}{path}", headers=AUTH, timeout=10).status_code in (200, 404)
    assert requests.get(f"{service.url}{path}", params={"apikey": KEY}, timeout=10).status_code in (200, 404)


@pytest.mark.parametrize("path", ["/health", "/status", "/openapi.json", "/login"])
def test_open_routes_need_no_key(service: LiveService, path: str) -> None:
    assert requests.get(f"{service.url}{path}", timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("given", "status"),
    [
        ("{library}/../outside/secret.mkv", 403),
        ("{library}/escape.mkv", 403),  # a symlink out of the library
        ("{outside}/secret.mkv", 403),
        ("a.mkv", 403),  # relative: refused, not guessed
        ("/etc/passwd", 403),
        ("{library}/missing.mkv", 404),
        ("{library}/Season 1", 400),
        ("{library}/a\x00.mkv", 403),
    ],
)
def test_only_files_inside_the_library_can_be_queued(
    service: LiveService, folders: dict[str, Path], given: str, status: int
) -> None:
    path = given.format(library=folders["library"], outside=folders["outside"])
    response = api(service, "POST", "/api/jobs", json={"path": path})
    assert response.status_code == status, response.text
    assert response.json()["error"]


# --------------------------------------------------------------------------- jobs


def test_queue_list_prioritise_cancel_and_retry(service: LiveService, folders: dict[str, Path]) -> None:
    library = folders["library"]
    first = api(service, "POST", "/api/jobs", json={"path": str(library / "a.mkv"), "language": "en"})
    assert first.status_code == 201
    [entry] = first.json()["jobs"]
    job = entry["job"]
    assert (entry["created"], job["state"], job["source"], job["target_language"]) == (True, "queued", "manual", "en")
    again = api(service, "POST", "/api/jobs", json={"path": str(library / "a.mkv"), "language": "eng"})
    assert again.status_code == 200 and again.json()["jobs"][0]["created"] is False

    listed = api(service, "GET", "/api/jobs", params={"state": "queued", "source": "manual"}).json()["jobs"]
    assert job["id"] in [item["id"] for item in listed]
    assert api(service, "GET", f"/api/jobs/{job['id']}").json()["job"]["media_path"] == str(library / "a.mkv")

    raised = api(service, "PATCH", f"/api/jobs/{job['id']}", json={"priority": 999})
    assert raised.status_code == 200 and raised.json()["job"]["priority"] == 999

    cancelled = api(service, "POST", f"/api/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 202
    assert (cancelled.json()["result"], cancelled.json()["job"]["state"]) == ("cancelled", "cancelled")
    assert api(service, "POST", f"/api/jobs/{job['id']}/cancel").status_code == 409

    retried = api(service, "POST", f"/api/jobs/{job['id']}/retry")
    assert retried.status_code == 200 and retried.json()["job"]["state"] == "queued"
    assert api(service, "POST", f"/api/jobs/{job['id']}/retry").status_code == 409


def test_jobs_are_listed_newest_first_in_pages(service: LiveService, folders: dict[str, Path]) -> None:
    ids = [queue_file(service, folders["library"] / name, language="de")["id"] for name in ("b.mkv", "c.mkv")]
    page = api(service, "GET", "/api/jobs", params={"limit": 1}).json()
    assert [job["id"] for job in page["jobs"]] == [ids[1]]
    second = api(service, "GET", "/api/jobs", params={"limit": 1, "offset": 1}).json()
    assert [job["id"] for job in second["jobs"]] == [ids[0]]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/api/jobs", {"params": {"state": "sleeping"}}, 400),
        ("GET", "/api/jobs", {"params": {"limit": "0"}}, 400),
        ("GET", "/api/jobs", {"params": {"limit": "many"}}, 400),
        ("GET", "/api/jobs", {"params": {"offset": "-1"}}, 400),
        ("GET", "/api/jobs/abc", {}, 400),
        ("GET", "/api/jobs/0", {}, 400),
        ("GET", "/api/jobs/99999999999999999999999", {}, 400),
        ("GET", "/api/jobs/" + "9" * 5000, {}, 400),
        ("GET", "/api/jobs/%D9%A3", {}, 400),  # a non-ASCII digit
        ("GET", "/api/jobs/987654", {}, 404),
        ("POST", "/api/jobs/987654/cancel", {}, 404),
        ("POST", "/api/jobs/987654/retry", {}, 404),
        ("PATCH", "/api/jobs/987654", {"json": {"priority": 1}}, 404),
        ("PATCH", "/api/jobs/1", {"json": {"priority": "high"}}, 400),
        ("PATCH", "/api/jobs/1", {"json": {"priority": True}}, 400),
        ("PATCH", "/api/jobs/1", {"json": {"state": "completed"}}, 400),
        ("PATCH", "/api/jobs/1", {"data": b"{not json"}, 400),
        ("POST", "/api/jobs", {"json": ["a list"]}, 400),
        ("POST", "/api/jobs", {"json": {}}, 400),
        ("POST", "/api/jobs", {"json": {"path": 5}}, 400),
        ("DELETE", "/api/jobs/1", {}, 405),
        ("GET", "/api/nothing-here", {}, 404),
    ],
)
def test_bad_requests_get_a_json_4xx(
    service: LiveService, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    response = api(service, method, path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"]


def test_bad_language_or_task_is_400(service: LiveService, folders: dict[str, Path]) -> None:
    path = str(folders["library"] / "a.mkv")
    assert api(service, "POST", "/api/jobs", json={"path": path, "language": "xx-nope"}).status_code == 400
    assert api(service, "POST", "/api/jobs", json={"path": path, "task": "dance"}).status_code == 400
    assert api(service, "POST", "/api/jobs", json={"path": path, "priority": 10**9}).status_code == 400


def test_scan_without_a_scanner_is_503(service: LiveService) -> None:
    response = api(service, "POST", "/api/scan")
    assert response.status_code == 503
    assert response.json()["error"] == "library scanning not available"


def test_scan_runs_the_hook(tmp_path: Path) -> None:
    calls: list[int] = []

    async def scan() -> dict[str, Any]:
        calls.append(1)
        return {"found": 3}

    with LiveService(engine_settings(tmp_path), workers=False, scan_hook=scan) as live:
        response = requests.post(f"{live.url}/api/scan", timeout=10)
    assert (response.status_code, response.json(), calls) == (202, {"scan": {"found": 3}}, [1])


# --------------------------------------------------------------------------- status and health


def test_api_status_shows_mode_workers_and_queue(service: LiveService) -> None:
    status = api(service, "GET", "/api/status").json()
    assert status["mode"] == ["provider", "standalone"]
    assert status["model"] == "bundled:tiny.en"
    assert set(status["queue"]["counts"]) == {"queued", "processing", "completed", "failed", "cancelled"}
    assert "eta_seconds" in status["queue"]
    assert isinstance(status["workers"], list) and isinstance(status["next"], list)


def test_health_is_503_with_details_when_the_database_is_down(service: LiveService) -> None:
    ok = requests.get(f"{service.url}/health", timeout=10)
    assert ok.status_code == 200 and ok.json()["status"] == "ok" and ok.json()["database"]["ok"] is True

    async def down() -> Health:
        return Health(False, "sqlite", None, False, "OperationalError: unable to open database file")

    db = service.parts.db
    real = db.health
    db.health = down  # type: ignore[method-assign]
    try:
        degraded = requests.get(f"{service.url}/health", timeout=10)
    finally:
        db.health = real  # type: ignore[method-assign]
    assert degraded.status_code == 503
    body = degraded.json()
    assert body["status"] == "degraded" and "unable to open" in body["database"]["error"]
    assert body["workers"] == {"configured": 1, "busy": 0, "idle": 1}


# --------------------------------------------------------------------------- events and metrics


def test_events_and_metrics_follow_a_real_job(tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    speech = speak("The quick brown fox jumps over the lazy dog.", library / "fox.wav")
    settings = engine_settings(tmp_path, library_paths=str(library))
    with LiveService(settings) as live:
        stream = requests.get(f"{live.url}/api/events", stream=True, timeout=60)
        assert stream.headers["Content-Type"] == "text/event-stream"
        lines = (line.decode() for line in stream.iter_lines())
        assert next(lines) == "retry: 3000"  # subscribed: events from now on are delivered
        created = requests.post(f"{live.url}/api/jobs", json={"path": str(speech), "language": "en"}, timeout=10)
        job_id = created.json()["jobs"][0]["job"]["id"]
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        kind = None
        for line in lines:
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                seen.append({"kind": kind, **json.loads(line.removeprefix("data: "))})
                if seen[-1]["kind"] == "job_finished" and seen[-1]["job_id"] == job_id:
                    break
            assert time.monotonic() < deadline, seen
        stream.close()
        assert next(e["kind"] for e in seen if e["job_id"] == job_id) == "job_started"
        assert seen[-1]["state"] == "completed"

        metrics = requests.get(f"{live.url}/metrics", timeout=10).text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line[:1] != "#"
    }
    assert samples['transcriptarr_jobs{state="completed"}'] == 1
    assert samples["transcriptarr_queue_length"] == 0
    assert samples["transcriptarr_workers"] == 1
    assert "transcriptarr_workers_busy" in samples
    assert samples["transcriptarr_processed_media_seconds_total"] > 2
    assert samples["transcriptarr_processing_seconds_total"] > 0
    assert samples['transcriptarr_job_failures_total{source="manual"}'] == 0
    assert samples['transcriptarr_http_requests_total{method="POST",route="/api/jobs",status="201"}'] == 1
    assert samples['transcriptarr_http_request_duration_seconds_count{method="POST",route="/api/jobs"}'] == 1


# --------------------------------------------------------------------------- OpenAPI


def test_openapi_documents_every_route(service: LiveService) -> None:
    served = requests.get(f"{service.url}/openapi.json", timeout=10).json()
    assert served == json.loads(json.dumps(document(service.config.path_prefix)))
    routed = {
        (route.resource.canonical, route.method.lower())
        for route in service.app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    documented = {(path, method) for path, item in served["paths"].items() for method in item}
    assert routed == documented
