"""The API's pure parts: parameters, client networks, library paths, error texts, detection answers."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pysubs2
import pytest
import srt

from tests.acceptance.engine_harness import engine_settings
from transcriptarr.api.bazarr import parse_asr
from transcriptarr.api.config import ApiConfig, normalize_prefix, parse_networks
from transcriptarr.api.detect import answer
from transcriptarr.api.errors import ApiError, error_text
from transcriptarr.api.security import OutsideLibrary, client_allowed, inside_library
from transcriptarr.api.snapshots import Shared
from transcriptarr.db.models import Task
from transcriptarr.workers.language import LanguageGuess


def test_asr_parameters_like_bazarr_sends_them() -> None:
    params = parse_asr(
        {"task": "transcribe", "language": "no", "output": "srt", "encode": "false", "video_file": "/m.mkv"}
    )
    assert (params.task, params.language, params.output, params.encode) == (Task.TRANSCRIBE, "no", "srt", False)
    assert params.target_language == "no" and params.video_file == "/m.mkv"
    translate = parse_asr({"task": "translate", "language": "jw"})
    assert (translate.language, translate.target_language, translate.output, translate.encode) == (
        "jw",
        "en",
        "txt",
        True,
    )
    assert parse_asr({"language": "haw"}).language == "haw"
    assert parse_asr({"language": "nn"}).language == "nn"
    assert parse_asr({}).language is None  # no language: Whisper detects it
    assert parse_asr({"whatever": "x", "encode": "0", "vad_filter": "TRUE"}).vad_filter is True


@pytest.mark.parametrize(
    "query",
    [{"task": "dance"}, {"language": "xx"}, {"language": "und"}, {"output": "docx"}, {"encode": "maybe"}],
)
def test_bad_asr_parameters_are_400(query: dict[str, str]) -> None:
    with pytest.raises(ApiError) as caught:
        parse_asr(query)
    assert caught.value.status == 400


def test_error_text_never_parses_as_srt() -> None:
    """Neither parser Bazarr tries finds a cue, even in quoted tool output that has one."""
    for quoted in ("1\n00:00:01,000 --> 00:00:02,000\nlooks like a cue\n", "at 00:00:01.000 and 0:00:02:00\nx\n"):
        text = error_text(f"ffprobe said:\n{quoted}")
        assert text.startswith("ERROR: ")
        assert len(pysubs2.SSAFile.from_string(text, format_="srt")) == 0
        with pytest.raises(srt.SRTParseError):
            list(srt.parse(text))


def test_detection_answers_in_bazarrs_terms() -> None:
    assert answer(None) == {}
    assert answer(LanguageGuess("en", 0.98765)) == {
        "language_code": "en",
        "detected_language": "english",
        "confidence": 0.9877,
    }
    assert answer(LanguageGuess("yue", 0.9)) == {
        "language_code": "zh",
        "detected_language": "chinese",
        "confidence": 0.9,
    }
    assert answer(LanguageGuess("jw", 0.5))["detected_language"] == "javanese"


def test_client_networks() -> None:
    networks = parse_networks("192.168.1.0/24, 10.0.0.5 ,fd00::/8")
    assert networks == (
        ipaddress.ip_network("192.168.1.0/24"),
        ipaddress.ip_network("10.0.0.5/32"),
        ipaddress.ip_network("fd00::/8"),
    )
    assert client_allowed("192.168.1.77", networks)
    assert client_allowed("::ffff:10.0.0.5", networks)  # IPv4 seen through an IPv6 socket
    assert client_allowed("fd00::1", networks)
    assert not client_allowed("192.168.2.1", networks)
    assert not client_allowed(None, networks)
    assert not client_allowed("not an address", networks)
    assert client_allowed("203.0.113.9", ())  # no list: everyone


def test_library_paths_are_resolved_before_the_check(tmp_path: Path) -> None:
    library = tmp_path / "library"
    (library / "show").mkdir(parents=True)
    (tmp_path / "secret.mkv").write_bytes(b"x")
    (library / "link.mkv").symlink_to(tmp_path / "secret.mkv")
    (library / "show" / "e1.mkv").write_bytes(b"x")
    assert inside_library(str(library / "show" / ".." / "show" / "e1.mkv"), [library]) == library / "show" / "e1.mkv"
    for bad in (str(library / ".." / "secret.mkv"), str(library / "link.mkv"), "show/e1.mkv", "/etc/passwd"):
        with pytest.raises(OutsideLibrary):
            inside_library(bad, [library])
    with pytest.raises(OutsideLibrary, match="LIBRARY_PATHS is empty"):
        inside_library(str(library / "show" / "e1.mkv"), [])


def test_config_from_settings_with_defaults_for_fields_not_there_yet(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path, max_job_minutes=30)
    config = ApiConfig.from_settings(settings)
    assert config.path_prefix == "" and config.allowed_networks == ()
    assert config.max_upload_bytes == 4096 * 1024 * 1024 and config.keepalive_seconds == 10
    assert config.max_wait_seconds == 1800 and config.spool_dir == settings.data_dir / "spool"
    assert ApiConfig.from_settings(settings, path_prefix="whisper/").path_prefix == "/whisper"
    assert normalize_prefix("/") == "" and normalize_prefix(None) == ""


async def test_shared_answers_concurrent_callers_with_one_computation() -> None:
    calls = 0

    async def compute() -> dict[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"n": calls}

    shared = Shared(compute, ttl=0.2)
    results = await asyncio.gather(*(shared.get() for _ in range(50)))
    assert calls == 1 and all(result == {"n": 1} for result in results)
    assert await shared.get() == {"n": 1}  # reused within the ttl
    await asyncio.sleep(0.25)
    assert await shared.get() == {"n": 1}  # a little stale: answered at once, refreshed meanwhile
    await asyncio.sleep(0.1)
    assert await shared.get() == {"n": 2} and calls == 2
    await asyncio.sleep(2.1)  # too stale to serve: wait for the fresh answer
    assert await shared.get() == {"n": 3}
