"""Switching from SubGen: its env file, its library and its webhook URLs work here unchanged.

`transcriptarr run` in a child process whose environment holds SubGen's variable names only
(tests/data/subgen-compose.env, written as a SubGen user's compose `env_file`), over a library where
SubGen and other tools already wrote subtitles under several namings. The service must listen on
SubGen's WEBHOOK_PORT, queue nothing already subtitled, subtitle a new episode, and queue a file named
by SubGen's Tautulli payload on `/tautulli` through PATH_MAPPING_FROM/TO.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.test_fuzz_heavy import ServiceProcess
from tests.media_factory import concat_audio, fixture_path, make_silence, make_video

pytestmark = pytest.mark.slow

SUBGEN_ENV = Path(__file__).resolve().parents[1] / "data" / "subgen-compose.env"
# Sidecars a SubGen library holds: SubGen's default naming and the other forms people have.
ALREADY_SUBTITLED = {
    "Show/Season 01/Show - S01E01.mkv": "Show - S01E01.subgen.medium.eng.srt",
    "Show/Season 01/Show - S01E02.mkv": "Show - S01E02.subgen.large-v3.English.srt",
    "Movies/Film (2001)/Film (2001).mkv": "Film (2001).en.sdh.srt",
    "Movies/Other (2002)/Other (2002).mkv": "Other (2002).English.srt",
}
NEW_EPISODE = "Show/Season 01/Show - S01E03.mkv"
DAY = 86_400.0
TAUTULLI_EPISODE = "Show/Season 01/Show - S01E04.mkv"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as docker compose's `env_file` reads them (no quotes, # comments)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def speech_minute(folder: Path) -> Path:
    """Just over a minute (the library skips shorter media): JFK, then silence."""
    return concat_audio(folder / "speech.wav", [fixture_path("jfk.flac"), make_silence(folder / "silence.wav", 55.0)])


@pytest.fixture(scope="module")
def episode_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech_minute(tmp_path_factory.mktemp("speech"))


def add_media(library: Path, relative: str, audio: Path) -> Path:
    path = library / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    make_video(path, [(audio, "eng", True)])
    return path


class SubgenUser(ServiceProcess):
    """The service started the way a SubGen user's container would start it: SubGen's names only."""

    def __init__(self, root: Path, subgen_env: dict[str, str]) -> None:
        super().__init__(root)
        self.port = int(subgen_env["WEBHOOK_PORT"])
        own = {key for key in os.environ if key.upper() in _OUR_NAMES}
        base = {key: value for key, value in os.environ.items() if key not in own}
        self.env = {**base, **subgen_env}  # none of ServiceProcess's own settings

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("event") == name:
                    found.append(record)
        return found

    def jobs(self) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.url}/api/jobs", params={"limit": 200}, timeout=10)
        answer.raise_for_status()
        jobs: list[dict[str, Any]] = answer.json()["jobs"]
        return jobs

    def wait_for(self, what: str, check: Any, timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            assert self.process is not None and self.process.poll() is None, f"the service died:\n{self.log()}"
            time.sleep(0.2)  # the poll's pace
        pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{self.log()}")


def _settings_names() -> frozenset[str]:
    from transcriptarr.settings import Settings

    return frozenset(name.upper() for name in Settings.model_fields)


_OUR_NAMES = _settings_names()


def test_a_subgen_user_switches_without_changing_anything(tmp_path: Path, episode_audio: Path) -> None:
    library = tmp_path / "media"
    for media, sidecar in ALREADY_SUBTITLED.items():
        path = add_media(library, media, episode_audio)
        (path.parent / sidecar).write_text("1\n00:00:01,000 --> 00:00:02,000\nhello\n", encoding="utf-8")
    new_episode = add_media(library, NEW_EPISODE, episode_audio)
    for path in library.rglob("*"):  # the library was there before the switch, not being copied now
        os.utime(path, (time.time() - DAY, time.time() - DAY))

    subgen_env = read_env_file(SUBGEN_ENV)
    assert not set(subgen_env) & (_OUR_NAMES - _SHARED_NAMES), "the env file must hold SubGen's names only"
    subgen_env |= {
        # What differs on this machine from the user's: the folders and a free port.
        "TRANSCRIBE_FOLDERS": f"{library / 'Show'}|{library / 'Movies'}",
        "PATH_MAPPING_TO": str(library / "Show"),
        "MODEL_PATH": str(tmp_path / "models"),
        "WEBHOOK_PORT": str(free_port()),
    }
    with SubgenUser(tmp_path, subgen_env) as service:
        service.wait_for("the new episode's subtitle", lambda: (new_episode.parent / "Show - S01E03.en.srt").is_file())
        queued = {Path(job["media_path"]).name for job in service.jobs()}
        assert queued == {new_episode.name}, f"already subtitled media was queued again: {queued}"

        # SubGen's Tautulli webhook, exactly as SubGen documents it, naming the file as Plex sees it.
        tautulli_episode = add_media(library, TAUTULLI_EPISODE, episode_audio)
        answer = requests.post(
            f"{service.url}/tautulli",
            json={"event": "added", "file": f"/tv/{TAUTULLI_EPISODE.removeprefix('Show/')}"},
            headers={"source": "Tautulli"},
            timeout=30,
        )
        assert answer.status_code in (200, 202), answer.text
        service.wait_for(
            "the Tautulli episode's subtitle", lambda: (tautulli_episode.parent / "Show - S01E04.en.srt").is_file()
        )
        aliases = {record.get("subgen_name") for record in service.events("subgen_setting_used")}
        assert {"TRANSCRIBE_FOLDERS", "WEBHOOK_PORT", "TRANSCRIBE_DEVICE", "PATH_MAPPING_FROM"} <= aliases

    for media, sidecar in ALREADY_SUBTITLED.items():
        path = library / media
        subtitles = sorted(p.name for p in path.parent.glob(f"{glob.escape(path.stem)}.*.srt"))
        assert subtitles == [sidecar], f"a second subtitle was written next to {path.name}"


# Names both projects use with the same meaning (SubGen's and ours).
_SHARED_NAMES = frozenset({"WHISPER_MODEL", "WHISPER_THREADS", "PREFERRED_AUDIO_LANGUAGES", "PLEX_TOKEN"})
