"""`python -m transcriptarr.demo` end to end: real media, the bundled tiny.en model, the CPU.

The demo runs as a user would run it, in a subprocess, with a hostile
environment (variables and a `.env` that would break it) to show that it uses
its own settings only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import srt

from transcriptarr.demo import DEMO_FILES, STATE_DIR, DemoFile

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
LRC_LINE = re.compile(r"^\[\d{2}:\d{2}\.\d{2}\](.*)$")
# A user's configuration that must not leak into the demo.
HOSTILE_ENV = {
    "DATABASE_URL": "sqlite:////nonexistent/folder/users-real.db",
    "WHISPER_MODEL": "no-such-model",
    "WORKERS": "0",
    "TARGET_LANGUAGES": "fr",
    "PREFERRED_AUDIO_LANGUAGES": "de",
    "OFFLINE": "false",
}
HOSTILE_DOTENV = "LIBRARY_PATHS=/nonexistent/library\nSUBTITLE_FORMAT=ass\nWHISPER_DEVICE=cuda\n"


def run_demo(library: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    python_path = [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, **HOSTILE_ENV, "PYTHONPATH": os.pathsep.join(python_path)}
    done = subprocess.run(
        [sys.executable, "-m", "transcriptarr.demo", "--library", str(library), *extra],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"demo failed ({done.returncode})\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done


def printed_subtitles(stdout: str) -> list[Path]:
    return [Path(line) for line in re.findall(r"^subtitle: (.+)$", stdout, re.MULTILINE)]


def expected_subtitle(library: Path, spec: DemoFile) -> Path:
    media = library / spec.name
    return media.with_name(f"{media.stem}.en.srt") if spec.is_video else media.with_suffix(".lrc")


def subtitle_text(path: Path) -> str:
    content = path.read_text(encoding="utf-8")
    if path.suffix == ".srt":
        cues = list(srt.parse(content, ignore_errors=False))
        assert cues, f"{path} has no cues"
        assert all(cue.end > cue.start for cue in cues), f"{path} has a cue that ends before it starts"
        return " ".join(cue.content for cue in cues)
    lines = [line for line in content.splitlines() if line.strip()]
    assert lines, f"{path} is empty"
    matches = [LRC_LINE.match(line) for line in lines]
    assert all(matches), f"{path} has lines that are not timed LRC lines: {lines}"
    return " ".join(match.group(1) for match in matches if match)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def assert_plausible(path: Path, spec: DemoFile) -> None:
    """Most longer words of the English track were recognised (tiny.en on espeak-ng speech is not perfect)."""
    spoken = {word for word in words(spec.tracks[0].text) if len(word) >= 5}
    heard = words(subtitle_text(path))
    found = spoken & heard
    assert len(found) >= 0.5 * len(spoken), f"{path}: heard {sorted(heard)}, expected most of {sorted(spoken)}"


def assert_no_temp_files(library: Path) -> None:
    leftovers = [
        path
        for path in library.rglob("*")
        if ".transcriptarr-tmp" in path.name
        or path.name.endswith(".part")
        or re.fullmatch(r"job-.*\.pcm", path.name)
        or "demo-tmp" in path.name
    ]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def check_library(library: Path, stdout: str) -> None:
    shown = printed_subtitles(stdout)
    expected = [expected_subtitle(library, spec) for spec in DEMO_FILES]
    assert shown == expected, f"printed subtitles {shown}, expected {expected}\n{stdout}"
    for path, spec in zip(shown, DEMO_FILES, strict=True):
        assert path.is_file(), f"{path} was printed but does not exist"
        assert_plausible(path, spec)
    # The two-track video was subtitled from its English (default) track only.
    assert not list(library.glob("*.de.srt")), "a German subtitle was written"
    assert_no_temp_files(library)
    assert (library / STATE_DIR / "demo.db").is_file()
    assert re.search(rf"^Summary: {len(DEMO_FILES)} media files, {len(DEMO_FILES)} subtitles", stdout, re.MULTILINE)


@pytest.mark.timeout(900)  # three runs of up to about a minute each on a slow CPU
def test_demo_subtitles_its_library_and_runs_again(tmp_path: Path) -> None:
    library = tmp_path / "lib"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / ".env").write_text(HOSTILE_DOTENV, encoding="utf-8")

    first = run_demo(library, cwd)
    check_library(library, first.stdout)
    assert not list(library.glob("*.ass")), "the demo read SUBTITLE_FORMAT from the user's .env"

    # Again, starting over: the old demo files are replaced, nothing fails because subtitles exist.
    before = {path: path.stat().st_mtime_ns for path in printed_subtitles(first.stdout)}
    second = run_demo(library, cwd)
    check_library(library, second.stdout)
    assert all(path.stat().st_mtime_ns != mtime for path, mtime in before.items()), "subtitles were not rewritten"

    # Again, keeping the media and the queue: the finished work is recognised, not redone.
    third = run_demo(library, cwd, "--reuse")
    check_library(library, third.stdout)
    assert third.stdout.count("already completed") == len(DEMO_FILES), third.stdout
    assert f"({len(DEMO_FILES)} from an earlier run)" in third.stdout
