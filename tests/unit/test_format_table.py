"""One table of output formats (policy/output_formats.py): the renderer, SUBTITLE_FORMAT, /asr's `output`,
OpenAI's srt and vtt, and the OpenAPI enums all read it, and nothing offers a format the table lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcriptarr.api import openai_render
from transcriptarr.api.openapi import document
from transcriptarr.api.output import OUTPUTS, cues_response
from transcriptarr.policy.output_formats import (
    ALL_FORMATS,
    FORMATS,
    PROVIDER_OUTPUTS,
    SIDECAR_FORMATS,
    OutputFormat,
    content_type,
)
from transcriptarr.settings import ConfigError, load_settings
from transcriptarr.subtitles.cues import Cue
from transcriptarr.subtitles.formats import SUPPORTED_FORMATS, render

CUES = [Cue(0.0, 1.5, ("Hello there,", "general Kenobi."), ()), Cue(2.0, 3.0, ("Second cue.",), ())]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The settings see only what a test sets (no .env of the checkout, no SUBTITLE_FORMAT of the shell)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SUBTITLE_FORMAT", raising=False)


def test_the_renderer_renders_exactly_the_tables_formats() -> None:
    assert SUPPORTED_FORMATS == ALL_FORMATS == tuple(entry.name for entry in FORMATS)
    for name in ALL_FORMATS:
        assert "Second cue." in render(CUES, name), name
    with pytest.raises(ValueError, match="unsupported subtitle format 'sub'; supported: srt, vtt, ass, txt"):
        render(CUES, "sub")


def test_subtitle_format_offers_the_sidecar_formats_and_refuses_the_others() -> None:
    assert SIDECAR_FORMATS == ("srt", "vtt", "ass")
    for name in ALL_FORMATS:
        if name in SIDECAR_FORMATS:
            assert load_settings(subtitle_format=name).subtitle_format == name
        else:
            with pytest.raises(ConfigError, match=r"^SUBTITLE_FORMAT: Input should be 'srt', 'vtt' or 'ass'$"):
                load_settings(subtitle_format=name)


def test_asr_outputs_and_their_document_enum_are_the_provider_formats() -> None:
    assert OUTPUTS == PROVIDER_OUTPUTS == ("srt", "vtt", "txt", "tsv", "json")
    for prefix in ("", "/whisper"):
        parameters = document(prefix)["paths"][f"{prefix}/asr"]["post"]["parameters"]
        output = next(parameter for parameter in parameters if parameter["name"] == "output")
        assert output["schema"]["enum"] == list(PROVIDER_OUTPUTS)
    for name in PROVIDER_OUTPUTS:
        answer = cues_response(CUES, "en", name)
        assert answer.content_type == content_type(name), name
        assert answer.headers["Content-Disposition"] == f'attachment; filename="audio_file.{name}"'


def test_openai_formats_are_openais_own_documents_or_formats_of_the_table() -> None:
    enum = document()["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert enum["schema"]["properties"]["response_format"]["enum"] == list(openai_render.FORMATS)
    subtitles = [name for name in openai_render.FORMATS if name not in openai_render.OPENAI_DOCUMENTS]
    assert subtitles == ["srt", "vtt"]
    for name in subtitles:
        answer = openai_render.answer(CUES, "en", response_format=name, task="transcribe", duration=None)
        assert answer.content_type == content_type(name)
        assert answer.text == render(CUES, name, language="en")


def test_a_served_format_needs_a_content_type() -> None:
    with pytest.raises(ValueError, match="output format 'sub' is served by the provider API but has no content_type"):
        OutputFormat("sub", provider=True)
    with pytest.raises(KeyError, match="output format 'ass' has no content_type"):
        content_type("ass")
