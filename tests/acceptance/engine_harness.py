"""Run the real service parts (queue, pool, runner, real model) on test media."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jiwer
import srt

from transcriptarr.db.models import Job, Source
from transcriptarr.queue.jobqueue import NewJob
from transcriptarr.service import build
from transcriptarr.settings import Settings, load_settings

JFK_TEXT = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"


def engine_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'engine.db'}",
        "whisper_model": "bundled:tiny.en",
        "whisper_device": "cpu",
        "data_dir": tmp_path / "data",
        "model_dir": tmp_path / "models",
        "log_format": "json",
        "retry_backoff_seconds": 0,
        "model_idle_unload_seconds": 0,
        # Timing bounds in these tests must not depend on what else the machine runs.
        "worker_nice": 0,
    }
    if "WHISPER_EXTRA_ARGS" not in os.environ:  # a test that sets it in the environment speaks for itself
        # Temperature 0 without fallback: a test that checks words sees the same words on every run.
        values["whisper_extra_args"] = {"temperature": 0.0}
    values.update(overrides)
    return load_settings(**values)


async def process(settings: Settings, media: Sequence[Path], **job: Any) -> list[Job]:
    """Queue each file, run the pool until the queue is empty, return the jobs in queue order."""
    async with build(settings) as parts:
        ids = []
        for path in media:
            result = await parts.queue.enqueue(NewJob(source=Source.MANUAL, media_path=str(path), **job))
            ids.append(result.job.id)
        await parts.pool.run(asyncio.Event(), once=True)
        return [await parts.queue.get(job_id) for job_id in ids]


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def srt_text(path: Path) -> tuple[list[srt.Subtitle], str]:
    """Parse strictly (raises on anything malformed) and return the cues and their words."""
    cues = list(srt.parse(path.read_text(encoding="utf-8"), ignore_errors=False))
    return cues, normalise(" ".join(cue.content for cue in cues))


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(reference, hypothesis))


# Distinct sentences: repeating one text verbatim looks like a Whisper loop and is dropped.
SENTENCES = (
    "Rivers carry water from the mountains to the sea, shaping valleys along the way.",
    "Over thousands of years, the slow work of water turns rock into sand.",
    "People have always built their towns beside rivers, for water, food and travel.",
    "In spring the snow melts and the river rises over its banks.",
    "Farmers welcome the flood, because it leaves rich soil on their fields.",
    "Boats once carried grain, wood and stone down to the harbour.",
    "Today most of that trade moves by road and rail instead.",
    "Still, the river remains the heart of the old city.",
    "Children learn to swim in its quiet bends during the summer.",
    "Fishermen sit on the bridge at dawn and wait for a bite.",
    "At night the lights of the houses shine on the dark water.",
    "Nobody can say exactly how old the first bridge is.",
)


def long_speech(folder: Path, count: int) -> Path:
    """`count` distinct spoken sentences (about four seconds each) in one WAV file."""
    from tests.media_factory import concat_audio, speak

    parts = [
        speak(SENTENCES[i % len(SENTENCES)] + f" Part {i // len(SENTENCES) + 1}.", folder / f"s{i}.wav")
        for i in range(count)
    ]
    return concat_audio(folder / "speech.wav", parts)
