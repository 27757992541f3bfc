"""Raw Whisper segments against our cues, on a few minutes of speech.

    python benchmarks/cue_bench.py [--minutes 3] [--audio FILE]

For the default preset (balanced, sequential) and the fast one (batched), prints
for raw segments and for our cues: how many, median and longest duration, longest
line, highest reading speed, and how many break a limit (docs/cues.md). Also the
time word timestamps add. Last line (default preset, our cues):
RESULT cues=<n> over_limits=<count> median_s=<x> max_line_chars=<y> max_cps=<z>
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from faster_whisper import WhisperModel, decode_audio  # noqa: E402

from tests.acceptance.engine_harness import SENTENCES, long_speech  # noqa: E402
from transcriptarr.subtitles.cues import DEFAULT_RULES, build_cues  # noqa: E402
from transcriptarr.workers.bundled_models import tiny_en_path  # noqa: E402
from transcriptarr.workers.presets import get_preset  # noqa: E402
from transcriptarr.workers.transcribe import transcribe  # noqa: E402


@dataclasses.dataclass
class Shape:
    count: int
    median_s: float
    max_s: float
    max_line_chars: int
    max_cps: float
    over_limits: int

    def line(self, name: str) -> str:
        return (
            f"  {name:<12} {self.count:>4} cues, median {self.median_s:5.2f} s, longest {self.max_s:5.2f} s, "
            f"longest line {self.max_line_chars:>3} chars, max {self.max_cps:5.1f} chars/s, "
            f"over limits {self.over_limits}"
        )


def shape(items: list[tuple[float, float, list[str]]]) -> Shape:
    rules = DEFAULT_RULES
    durations = [end - start for start, end, _ in items]
    over = 0
    max_cps = 0.0
    for (_, _, lines), duration in zip(items, durations, strict=True):
        chars = sum(len(line) for line in lines)
        cps = chars / duration if duration > 0 else float("inf")
        max_cps = max(max_cps, cps)
        too_long = duration > rules.max_duration + 1e-6
        too_wide = len(lines) > rules.max_lines or any(len(line) > rules.max_line_chars for line in lines)
        too_fast = cps > rules.max_cps + 1e-6
        over += too_long or too_wide or too_fast
    return Shape(
        count=len(items),
        median_s=statistics.median(durations) if durations else 0.0,
        max_s=max(durations, default=0.0),
        max_line_chars=max((len(line) for _, _, lines in items for line in lines), default=0),
        max_cps=max_cps,
        over_limits=over,
    )


def timed_transcribe(model: WhisperModel, audio: object, preset_name: str, words: bool = True) -> tuple[object, float]:
    preset = dataclasses.replace(get_preset(preset_name), word_timestamps=words)
    started = time.perf_counter()
    transcript = transcribe(model, [(0.0, audio)], duration=len(audio) / 16000, language="en", preset=preset)  # type: ignore[arg-type]
    return transcript, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--audio", type=Path, help="use this speech file instead of espeak-ng sentences")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.audio:
            speech = args.audio
        else:
            count = max(1, round(args.minutes * 60 / 4.2))
            speech = long_speech(Path(tmp), count)
            print(f"speech: {count} espeak-ng sentences ({len(SENTENCES)} distinct texts, numbered parts)")
        audio = decode_audio(str(speech))
    duration = len(audio) / 16000
    print(f"audio: {duration:.1f} s; model tiny.en (int8, CPU)")
    model = WhisperModel(str(tiny_en_path()), device="cpu", compute_type="int8")
    timed_transcribe(model, audio[: 16000 * 5], "balanced")  # warm-up

    results: dict[str, Shape] = {}
    for preset in ("balanced", "fast"):
        transcript, seconds = timed_transcribe(model, audio, preset)
        cues = build_cues(transcript.words, duration=duration, speech=transcript.speech)  # type: ignore[attr-defined]
        raw = shape([(s.start, s.end, [s.text]) for s in transcript.segments])  # type: ignore[attr-defined]
        ours = shape([(c.start, c.end, list(c.lines)) for c in cues])
        results[preset] = ours
        print(f"{preset} ({seconds:.1f} s to transcribe, {len(transcript.words)} words):")  # type: ignore[attr-defined]
        print(raw.line("raw segments"))
        print(ours.line("our cues"))

    # Alternate and keep the fastest of each: other load on the machine only ever adds time.
    with_runs, without_runs = [], []
    for _ in range(2):
        without_runs.append(timed_transcribe(model, audio, "balanced", words=False)[1])
        with_runs.append(timed_transcribe(model, audio, "balanced", words=True)[1])
    with_words, without_words = min(with_runs), min(without_runs)
    added = (with_words / without_words - 1) * 100
    print(f"word timestamps add {added:+.1f}% ({without_words:.1f} s -> {with_words:.1f} s, balanced)")

    default = results["balanced"]
    print(f"fast preset: over_limits={results['fast'].over_limits}")
    print(
        f"RESULT cues={default.count} over_limits={default.over_limits} median_s={default.median_s:.2f} "
        f"max_line_chars={default.max_line_chars} max_cps={default.max_cps:.1f} "
        f"fast_over_limits={results['fast'].over_limits} word_timestamps_cost_pct={added:.1f}"
    )


if __name__ == "__main__":
    main()
