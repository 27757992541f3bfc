"""Words the alignment crams into no time are a made-up repetition, and are dropped."""

from __future__ import annotations

from transcriptarr.subtitles.cues import Word
from transcriptarr.workers.transcribe import drop_collapsed_runs


def words(*spans: tuple[float, float, str]) -> list[Word]:
    return [Word(start=start, end=end, text=f" {text}", probability=0.9) for start, end, text in spans]


def text(kept: list[Word]) -> str:
    return "".join(word.text for word in kept).strip()


def test_a_sentence_piled_onto_one_frame_is_dropped_and_the_heard_one_kept() -> None:
    # What tiny.en gave for the third of three JFK sentences (fast preset): a copy with no audio.
    heard = ["And", "so", "my", "fellow", "Americans", "ask"]
    made_up = [
        "my",
        "fellow",
        "Americans",
        "ask",
        "not",
        "what",
        "your",
        "country",
        "can",
        "do",
        "for",
        "you",
        "And",
        "so",
    ]
    seq = words(
        (24.40, 24.70, heard[0]),
        (24.70, 25.02, heard[1]),
        *((25.02, 25.02, w) for w in made_up),
        (25.04, 25.46, "my"),
        (25.46, 25.76, "fellow"),
        (25.76, 26.38, "Americans"),
        (27.43, 28.51, "ask"),
    )
    assert text(drop_collapsed_runs(seq)) == "And so my fellow Americans ask"


def test_fast_real_speech_and_short_zero_length_words_are_kept() -> None:
    seq = words(
        (1.00, 1.00, "a"),  # a clipped word or two of no length: not a run
        (1.00, 1.01, "b"),
        (1.01, 1.20, "c"),
        *((2.0 + i * 0.05, 2.0 + i * 0.05 + 0.04, f"w{i}") for i in range(10)),  # 20 words a second
        *((3.0, 3.0, f"z{i}") for i in range(5)),  # five in no time: below the run length
    )
    assert drop_collapsed_runs(seq) == seq


def test_a_run_at_the_very_end_is_dropped() -> None:
    seq = words((0.0, 0.5, "hello"), *((9.98, 9.98, f"x{i}") for i in range(6)))
    assert text(drop_collapsed_runs(seq)) == "hello"
