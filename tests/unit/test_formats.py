"""Rendering cues: every format parses back with an independent parser."""

from __future__ import annotations

import datetime as dt
import json
import re

import pysubs2
import pytest
import srt
from hypothesis import given, settings
from hypothesis import strategies as st

from transcriptarr.subtitles.cues import Cue, Word, build_cues
from transcriptarr.subtitles.formats import SUPPORTED_FORMATS, render


def cue(start: float, end: float, *lines: str, words: tuple[Word, ...] = ()) -> Cue:
    return Cue(start, end, lines, words)


CUES = [
    cue(0.0, 1.5, "Hello there,", "general Kenobi.", words=(Word(0.0, 0.4, " Hello", 0.9), Word(0.4, 0.9, " there,"))),
    cue(2.0, 3.25, "Second cue."),
    cue(3725.5, 3727.0, "After an hour: 今日は"),
]


def test_supported_formats() -> None:
    assert set(SUPPORTED_FORMATS) == {"srt", "vtt", "ass", "txt", "tsv", "json", "lrc"}


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported subtitle format 'sub'"):
        render(CUES, "sub")


def test_format_name_is_case_insensitive() -> None:
    assert render(CUES, ".SRT") == render(CUES, "srt")


# --------------------------------------------------------------------------- srt


def test_srt_is_numbered_and_parses_strictly() -> None:
    text = render(CUES, "srt")
    subs = list(srt.parse(text))
    assert [s.index for s in subs] == [1, 2, 3]
    assert [s.content for s in subs] == ["Hello there,\ngeneral Kenobi.", "Second cue.", "After an hour: 今日は"]
    assert subs[0].start == dt.timedelta(0) and subs[0].end == dt.timedelta(seconds=1.5)
    assert subs[2].start == dt.timedelta(hours=1, minutes=2, seconds=5, milliseconds=500)
    timings = [line for line in text.splitlines() if "-->" in line]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", line) for line in timings)
    assert timings[2] == "01:02:05,500 --> 01:02:07,000"
    assert text.startswith("1\n00:00:00,000 --> 00:00:01,500\nHello there,\n")


def test_srt_is_utf8_text() -> None:
    text = render(CUES, "srt")
    assert "今日は" in text
    assert list(srt.parse(text.encode("utf-8").decode("utf-8")))[2].content.endswith("今日は")


def test_srt_keeps_braces_and_defuses_arrows() -> None:
    text = render([cue(0, 1, "a {curly} <odd> line --> here")], "srt")
    [sub] = srt.parse(text)
    assert sub.content == "a {curly} <odd> line -> here"


def test_srt_drops_blank_lines_and_empty_cues() -> None:
    text = render([cue(0, 1, "first", "   ", "second"), cue(2, 3, " "), cue(4, 5, "third")], "srt")
    assert [s.content for s in srt.parse(text)] == ["first\nsecond", "third"]


def test_empty_cue_list() -> None:
    assert render([], "srt") == ""
    assert list(srt.parse(render([], "srt"))) == []
    assert render([], "vtt").startswith("WEBVTT")
    assert len(pysubs2.SSAFile.from_string(render([], "ass"))) == 0
    assert render([], "txt") == ""
    assert render([], "lrc") == ""
    assert render([], "tsv") == "start\tend\ttext\n"
    assert json.loads(render([], "json", language="en")) == {"text": "", "language": "en", "segments": []}


# --------------------------------------------------------------------------- vtt and ass


def test_vtt_round_trips_through_pysubs2() -> None:
    text = render(CUES, "vtt")
    assert text.startswith("WEBVTT\n")
    assert "00:00:00.000 --> 00:00:01.500" in text
    subs = pysubs2.SSAFile.from_string(text, format_="vtt")
    assert [(e.start, e.end) for e in subs] == [(0, 1500), (2000, 3250), (3725500, 3727000)]
    assert [e.plaintext for e in subs] == [c.text for c in CUES]


def test_vtt_escapes_markup() -> None:
    text = render([cue(0, 1, "Tom & Jerry <3 --> fun")], "vtt")
    assert "Tom &amp; Jerry &lt;3 --&gt; fun" in text
    assert text.count("-->") == 1  # only the timing line


def test_ass_round_trips_through_pysubs2() -> None:
    subs = pysubs2.SSAFile.from_string(render(CUES, "ass"))
    assert [(e.start, e.end) for e in subs] == [(0, 1500), (2000, 3250), (3725500, 3727000)]
    assert [e.plaintext for e in subs] == [c.text for c in CUES]
    assert subs.info["PlayResY"] == "1080"


def test_ass_cannot_be_injected_with_override_tags() -> None:
    [event] = pysubs2.SSAFile.from_string(render([cue(0, 1, r"{\an8}moved \N text")], "ass"))
    assert "{" not in event.text and "\\" not in event.text
    assert event.plaintext.endswith("moved ⧵N text")


# --------------------------------------------------------------------------- text formats


def test_txt_has_one_line_per_cue() -> None:
    assert render(CUES, "txt") == "Hello there, general Kenobi.\nSecond cue.\nAfter an hour: 今日は\n"


def test_txt_does_not_put_spaces_into_cjk() -> None:
    assert render([cue(0, 1, "今日はとても", "良い天気ですね。")], "txt") == "今日はとても良い天気ですね。\n"


def test_tsv_matches_whisper_asr_webservice() -> None:
    lines = render([*CUES, cue(5, 6, "tab\there")], "tsv").splitlines()
    assert lines[0] == "start\tend\ttext"
    assert lines[1] == "0\t1500\tHello there, general Kenobi."
    assert lines[3] == "3725500\t3727000\tAfter an hour: 今日は"
    assert lines[4] == "5000\t6000\ttab here"
    assert all(len(line.split("\t")) == 3 for line in lines)


def test_json_document() -> None:
    doc = json.loads(render(CUES, "json", language="en"))
    assert doc["language"] == "en"
    assert doc["text"] == "Hello there, general Kenobi. Second cue. After an hour: 今日は"
    first = doc["segments"][0]
    assert (first["start"], first["end"], first["text"]) == (0.0, 1.5, "Hello there, general Kenobi.")
    assert first["words"] == [
        {"start": 0.0, "end": 0.4, "word": " Hello", "probability": 0.9},
        {"start": 0.4, "end": 0.9, "word": " there,", "probability": 1.0},
    ]
    assert doc["segments"][1]["words"] == []
    assert json.loads(render(CUES, "json"))["language"] is None


def test_lrc_lines() -> None:
    lines = render(CUES, "lrc").splitlines()
    assert lines == [
        "[00:00.00]Hello there, general Kenobi.",
        "[00:02.00]Second cue.",
        "[62:05.50]After an hour: 今日は",
    ]


# --------------------------------------------------------------------------- with real cues


SENTENCES = st.lists(
    st.sampled_from(["Hello", "world.", "This", "is", "fine,", "really?", "1", "-->", "<i>", "{x}", "今日は", "&"]),
    max_size=200,
)


@settings(max_examples=60, deadline=None)
@given(SENTENCES)
def test_built_cues_render_to_strict_srt(tokens: list[str]) -> None:
    words = [Word(0.35 * i, 0.35 * i + 0.3, " " + token) for i, token in enumerate(tokens)]
    cues = build_cues(words)
    subs = list(srt.parse(render(cues, "srt")))
    assert len(subs) == len(cues)
    for sub, c in zip(subs, cues, strict=True):
        assert sub.content == c.text.replace("-->", "->")
        assert sub.start == dt.timedelta(milliseconds=round(c.start * 1000))
        assert sub.end == dt.timedelta(milliseconds=round(c.end * 1000))
        assert sub.start < sub.end
    for fmt in ("vtt", "ass"):
        parsed = pysubs2.SSAFile.from_string(render(cues, fmt), format_=fmt)
        assert len(parsed) == len(cues)
