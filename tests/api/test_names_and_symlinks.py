"""One rule for symlinks out of the library, and names that cannot be stored (issue #16, part 6).

Reproduces the findings: the scan followed a symlink out of the library (documented,
LIBRARY_FOLLOW_SYMLINKS=true) while POST /api/jobs and the webhooks refused the same file;
`POST /api/jobs` with a non-UTF-8 name answered 500 and accepted newline and escape-code
names that the scanner refuses. Now the scan, the API and the webhooks follow the setting
alike (the file named by its place in the library, where its subtitle goes), and an
unstorable name is a 400 with the scanner's own reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from tests.integrations.test_webhooks import tautulli_body
from tests.media_factory import make_silence, make_video
from transcriptarr.service import Components

KEY = "names-key"
AUTH = {"X-Api-Key": KEY}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A library with a symlinked file and a symlinked folder that both lead to a folder beside it."""
    root = tmp_path_factory.mktemp("symlinks")
    library, outside = root / "library", root / "outside"
    library.mkdir()
    outside.mkdir()
    movie = make_video(outside / "Film (2020).mkv", [(make_silence(root / "silence.wav", 2.0), "eng", True)])
    (library / "Linked Film (2020).mkv").symlink_to(movie)
    (library / "Shelf").symlink_to(outside, target_is_directory=True)
    return {"root": root, "library": library, "outside": outside, "movie": movie}


def start(tree: dict[str, Path], name: str, follow: bool) -> LiveService:
    settings = engine_settings(
        tree["root"] / name,
        transcriptarr_mode="standalone",
        api_key=KEY,
        library_paths=str(tree["library"]),
        library_follow_symlinks=follow,
        library_stable_seconds=0,
        library_min_duration_seconds=0,
    )
    return LiveService(settings, workers=False)


@pytest.fixture(scope="module")
def following(tree: dict[str, Path]) -> Iterator[LiveService]:
    (tree["root"] / "following").mkdir()
    with start(tree, "following", True) as live:
        yield live


@pytest.fixture(scope="module")
def not_following(tree: dict[str, Path]) -> Iterator[LiveService]:
    (tree["root"] / "not-following").mkdir()
    with start(tree, "not-following", False) as live:
        yield live


def scanned(service: LiveService) -> set[str]:
    async def dry_run(parts: Components) -> set[str]:
        assert parts.library is not None
        report = await parts.library.scan(dry_run=True)
        return {path for path, _ in report.decided}

    return service.call(dry_run)


def by_api(service: LiveService, path: Path) -> requests.Response:
    return requests.post(f"{service.url}/api/jobs", headers=AUTH, json={"path": str(path)}, timeout=30)


def by_webhook(service: LiveService, path: Path) -> requests.Response:
    body = tautulli_body("created", "1", "movie", "Film", str(path))
    return requests.post(f"{service.url}/webhooks/tautulli", headers=AUTH, json=body, timeout=30)


def linked(tree: dict[str, Path]) -> list[Path]:
    return [tree["library"] / "Linked Film (2020).mkv", tree["library"] / "Shelf" / "Film (2020).mkv"]


def test_with_follow_symlinks_the_scan_the_api_and_the_webhooks_all_take_a_symlink_out(
    following: LiveService, tree: dict[str, Path]
) -> None:
    assert {str(path) for path in linked(tree)} <= scanned(following)

    for path in linked(tree):
        answer = by_api(following, path)
        assert answer.status_code == 201, answer.text
        # Named where it sits in the library, as the scan names it: its subtitle goes there.
        assert answer.json()["jobs"][0]["job"]["media_path"] == str(path)
        hooked = by_webhook(following, path)
        assert hooked.status_code in (200, 202), hooked.text


def test_without_follow_symlinks_the_scan_the_api_and_the_webhooks_all_refuse_it(
    not_following: LiveService, tree: dict[str, Path]
) -> None:
    assert not {str(path) for path in linked(tree)} & scanned(not_following)

    for path in linked(tree):
        answer = by_api(not_following, path)
        assert answer.status_code == 403
        assert "LIBRARY_FOLLOW_SYMLINKS is false" in answer.json()["error"]
        hooked = by_webhook(not_following, path)
        assert hooked.status_code == 403 and "LIBRARY_FOLLOW_SYMLINKS is false" in hooked.json()["error"]
    assert not_following.call(lambda parts: parts.queue.list_jobs()) == []


def test_dot_dot_through_a_followed_symlink_is_judged_by_where_it_leads(
    following: LiveService, tree: dict[str, Path]
) -> None:
    """`Shelf/..` is the folder above `outside`, not the library: never read lexically."""
    sneaky = f"{tree['library']}/Shelf/../outside/Film (2020).mkv"
    answer = requests.post(f"{following.url}/api/jobs", headers=AUTH, json={"path": sneaky}, timeout=30)
    assert answer.status_code == 403 and "not inside LIBRARY_PATHS" in answer.json()["error"]


# --------------------------------------------------------------------------- names that cannot be stored


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (b"Bad \xff Name.mkv", "its name is not valid UTF-8; rename it"),
        (b"Two\nLines.mkv", "its name contains a control character (e.g. a newline); rename it"),
        (b"\x1b[31mRed\x1b[0m.mkv", "its name contains a control character (e.g. a newline); rename it"),
    ],
)
def test_a_name_the_scanner_refuses_is_a_400_with_its_reason(
    following: LiveService, tree: dict[str, Path], name: bytes, reason: str
) -> None:
    path = os.fsencode(tree["library"]) + b"/" + name
    shutil.copyfile(tree["movie"], path)
    # JSON carries a non-UTF-8 byte as Python's surrogate escape (\udcff), as os.fsdecode gives it.
    answer = requests.post(f"{following.url}/api/jobs", headers=AUTH, json={"path": os.fsdecode(path)}, timeout=30)

    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error.endswith(f"cannot be queued: {reason}")
    assert "\n" not in error and "\x1b" not in error  # shown with repr(), never raw
    jobs = following.call(lambda parts: parts.queue.list_jobs(limit=500))
    assert all(job.media_path != os.fsdecode(path) for job in jobs)
