"""Speech to timed words: the blocking transcription run in a worker thread.

Audio comes in chunks (the media module cuts a long film at quiet points) so
memory stays bounded; each chunk is transcribed on its own and its times are
shifted by the chunk's offset.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import structlog
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.transcribe import restore_speech_timestamps
from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps
from numpy.typing import NDArray

from transcriptarr.policy.whisper_options import VadParameters
from transcriptarr.subtitles.cues import Word
from transcriptarr.workers.presets import DEFAULT_PRESET, Preset

__all__ = [
    "SAMPLE_RATE",
    "PartialTranscript",
    "SegmentText",
    "Transcript",
    "TranscriptionCancelled",
    "speech_regions",
    "transcribe",
]

log = structlog.get_logger(__name__)

SAMPLE_RATE = 16_000
FRAMES_PER_SECOND = 100  # Whisper's mel frames: a window's `seek` counts these

Task = Literal["transcribe", "translate"]


class TranscriptionCancelled(Exception):
    """``should_cancel`` returned true; the partial result is discarded."""


@dataclass(frozen=True)
class SegmentText:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    """What Whisper heard, in absolute seconds from the start of the audio.

    ``Word.text`` is Whisper's token text, leading space included (" Hello"):
    join words with ``""`` and strip, which also works for languages written
    without spaces. ``speech`` lists the (start, end) regions the VAD kept,
    or is None when the preset does not use VAD. ``language`` is the spoken
    language (the words are English after ``task="translate"``); it is None
    only when it was not given and nothing was heard.
    """

    language: str | None
    language_probability: float
    duration: float
    words: list[Word]
    segments: list[SegmentText]
    speech: list[tuple[float, float]] | None

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments)


@dataclass(frozen=True)
class PartialTranscript:
    """What a run finished before ``offset`` (seconds): a checkpoint, and where a later run resumes.

    ``offset`` lies in a pause (the start of the next speech region, the midpoint of a
    gap between segments, or a chunk's end), so no word is in flight there: every word
    here ends before it, and a run resumed there hears only what comes after it.

    ``window``, for the sequential pipeline: ``(chunk_offset, seek)``, the chunk (by its
    offset) and the decoding window (its first mel frame, in the chunk's speech once the
    VAD dropped the rest) that come after these words. A run resumed from it decodes that
    chunk's speech from that window on, so it decodes exactly the windows the unbroken run
    decoded, and hears the same words. None: resume at ``offset`` (the batched pipeline, a
    chunk's end, or a checkpoint of an older version).
    """

    offset: float
    language: str | None
    language_probability: float
    words: tuple[Word, ...]
    segments: tuple[SegmentText, ...]
    speech: tuple[tuple[float, float], ...] | None
    window: tuple[float, int] | None = None


def transcribe(
    model: WhisperModel,
    chunks: Iterable[tuple[float, NDArray[np.float32]]],
    *,
    duration: float,
    task: Task = "transcribe",
    language: str | None = None,
    preset: Preset = DEFAULT_PRESET,
    initial_prompt: str | None = None,
    hotwords: str | None = None,
    on_progress: Callable[[float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    resume_from: PartialTranscript | None = None,
    on_checkpoint: Callable[[PartialTranscript], None] | None = None,
    checkpoint_seconds: float = 30.0,
) -> Transcript:
    """Transcribe (or translate to English) 16 kHz mono float32 chunks ``(offset_seconds, samples)``.

    Blocking and CPU/GPU heavy: call it through ``asyncio.to_thread``.
    ``on_progress`` gets a non-decreasing fraction 0..1 after every segment;
    ``should_cancel`` is polled as often and makes it raise ``TranscriptionCancelled``.
    ``language=None`` lets Whisper detect it on the first chunk with speech.
    ``initial_prompt`` and ``hotwords``, when given, win over the same names in
    the preset's extra arguments (a request's prompt over the library-wide one).

    ``resume_from`` (an earlier run's checkpoint of the same audio and settings)
    skips the audio before its offset and keeps its words. ``on_checkpoint`` gets
    what is finished about every ``checkpoint_seconds`` of audio (in this thread:
    it must be quick), once more when cancelled (the last pause reached) and at the end.
    """
    progress = _Progress(duration, on_progress)
    cancelled = should_cancel or _never
    pipeline: Any = BatchedInferencePipeline(model) if preset.batched else model
    if not model.model.is_multilingual:
        language = "en"  # what an English-only model hears, whatever was asked
    found = _Found(language)
    speech: list[tuple[float, float]] | None = [] if preset.vad_filter else None
    start = 0.0
    if resume_from is not None:
        start = resume_from.offset
        found.resume(resume_from)
        if speech is not None:
            speech.extend(resume_from.speech or ())
        progress.report(start)
    # The sequential pipeline's windows follow on from each other: checkpoints only where one starts.
    marks = _Checkpoints(
        found,
        speech,
        on_checkpoint,
        every=checkpoint_seconds,
        start=start,
        whole_windows=True,
        exact_windows=not preset.batched,
    )
    options = preset.transcribe_kwargs()
    if initial_prompt is not None:
        options["initial_prompt"] = initial_prompt
    if hotwords is not None:
        options["hotwords"] = hotwords
    window = resume_from.window if resume_from is not None and not preset.batched else None

    for offset, samples in chunks:
        marks.check(cancelled)
        chunk_end = offset + len(samples) / SAMPLE_RATE
        if chunk_end <= start:  # done by an earlier run
            continue
        from_seek = 0
        if window is not None and math.isclose(window[0], offset, abs_tol=1e-6):
            from_seek = window[1]  # resumed inside this chunk: the whole chunk, decoded from that window on
            if speech is not None:  # its speech regions are found again, whole
                speech[:] = [region for region in speech if region[0] < offset]
        elif offset < start:  # resumed inside this chunk: only the audio after the checkpoint
            skip = round((start - offset) * SAMPLE_RATE)
            samples, offset = samples[skip:], offset + skip / SAMPLE_RATE
        regions: list[tuple[float, float]] | None = None
        found_speech: list[dict[str, int]] | None = None
        if speech is not None:  # the preset uses VAD
            found_speech = _speech_timestamps(samples, preset.vad)
            regions = [(offset + r["start"] / SAMPLE_RATE, offset + r["end"] / SAMPLE_RATE) for r in found_speech]
            speech.extend(regions)
            if not regions:  # nothing to hear: skip the model (and its language guess)
                marks.reached(chunk_end, chunk_end=True)
                progress.report(chunk_end)
                continue
        peek: _NextWindow | None = None
        if preset.batched:
            windows = _fixed_windows(len(samples)) if not preset.vad_filter else {}
            segments, info = pipeline.transcribe(samples, task=task, language=found.language, **options, **windows)
        else:
            segments, info, peek = _decode_sequential(
                model, samples, found_speech, from_seek, task=task, language=found.language, options=options
            )
        previous: tuple[float, int] | None = None  # (end, window) of the chunk's last segment
        with contextlib.closing(segments):  # stops decoding early when cancelled
            for segment in segments:
                if previous is not None:
                    cut = _pause_between(previous[0], offset + segment.start, regions)
                    new_window = segment.seek != previous[1]
                    if new_window and peek is not None:  # what came before is final; resume from here
                        wrong = peek.confirm(segment.seek)
                        marks.reached(
                            previous[0] if cut is None else cut,
                            new_window=True,
                            window=(offset, segment.seek),
                            force=wrong,
                        )
                    elif cut is not None:
                        marks.reached(cut, new_window=new_window)
                marks.check(cancelled)
                if not _looks_made_up(segment, preset):
                    found.add(segment, offset, chunk_end)
                    found.settle_language(info)
                previous = (offset + segment.end, segment.seek)
                progress.report(offset + segment.end)
                if peek is not None and (after := peek.after_window()) is not None:
                    # The window's last segment: all before the next window is final, before it is decoded.
                    marks.reached(offset + segment.end, new_window=True, window=(offset, after))
        found.settle_language(info)
        marks.reached(chunk_end, chunk_end=True)  # chunks are cut at quiet points
        progress.report(chunk_end)

    marks.finish(duration)
    progress.report(duration)
    return Transcript(found.language, found.probability, duration, found.words, found.segments, speech)


def speech_regions(
    samples: NDArray[np.float32], vad: VadParameters | None = None, *, offset: float = 0.0
) -> list[tuple[float, float]]:
    """(start, end) seconds of speech according to Silero VAD, shifted by ``offset``."""
    found = _speech_timestamps(samples, vad or VadParameters())
    return [(offset + r["start"] / SAMPLE_RATE, offset + r["end"] / SAMPLE_RATE) for r in found]


def _speech_timestamps(samples: NDArray[np.float32], vad: VadParameters) -> list[dict[str, int]]:
    """Silero VAD's speech chunks (sample indices), exactly as faster-whisper's own VAD filter finds them."""
    found: list[dict[str, int]] = get_speech_timestamps(samples, VadOptions(**vad.as_dict()), sampling_rate=SAMPLE_RATE)
    return found


def _decode_sequential(
    model: WhisperModel,
    samples: NDArray[np.float32],
    speech: list[dict[str, int]] | None,
    from_seek: int,
    *,
    task: Task,
    language: str | None,
    options: dict[str, Any],
) -> tuple[Any, Any, _NextWindow]:
    """The sequential pipeline on one chunk: what `model.transcribe(samples, vad_filter=...)` does, done here.

    The VAD filter (faster-whisper's own steps: its speech chunks, concatenated) is applied
    here so that a resumed run can start at one window of that speech (``from_seek``,
    `clip_timestamps`, which faster-whisper honours only without its VAD filter): it then
    decodes the same windows, with the same audio features, as the run that was interrupted.
    """
    call = {key: value for key, value in options.items() if key not in ("vad_filter", "vad_parameters")}
    audio = samples
    if speech is not None:
        audio = np.concatenate(collect_chunks(samples, speech, sampling_rate=SAMPLE_RATE)[0])
    if from_seek > 0:
        call["clip_timestamps"] = [from_seek / FRAMES_PER_SECOND]
        if not call.get("condition_on_previous_text"):
            # Without the previous text as prompt, the initial prompt leads a chunk's first window only.
            call.pop("initial_prompt", None)
    segments, info = model.transcribe(audio, task=task, language=language, vad_filter=False, **call)
    peek = _NextWindow(segments)
    if speech is not None:
        segments = restore_speech_timestamps(segments, speech, SAMPLE_RATE)
    return segments, info, peek


class _NextWindow:
    """Where faster-whisper's next decoding window starts, known once the last segment of a window is out.

    `WhisperModel.generate_segments` (a generator) sets `seek` to the next window's start before it yields
    a window's segments; suspended at such a yield, its locals also say whether the segment just yielded is
    the window's last one with text (those after it are empty, and never yielded). A checkpoint there lets a
    resumed run start at the next window instead of redoing this one. These locals are faster-whisper's
    internals: when they are not as expected, or a prediction is not what the next window turns out to be,
    this is off for the rest of the chunk and checkpoints are taken where each window starts (exact too,
    one window more to redo).
    """

    def __init__(self, generator: Any) -> None:
        self._generator = generator
        self._on = True
        self._predicted: int | None = None

    def after_window(self) -> int | None:
        """The next window's first frame when the segment just yielded was its window's last; else None."""
        if not self._on:
            return None
        try:
            here = self._generator.gi_frame.f_locals
            current, yielded, tokenizer, seek = (
                here["current_segments"],
                here["segment"],
                here["tokenizer"],
                here["seek"],
            )
            index = next(i for i, candidate in enumerate(current) if candidate is yielded)
            if any(s["start"] != s["end"] and tokenizer.decode(s["tokens"]).strip() for s in current[index + 1 :]):
                return None
            self._predicted = int(seek)
        except Exception as exc:  # another faster-whisper: fall back to window starts
            self._on = False
            log.debug("checkpoint_window_peek_off", reason=f"{type(exc).__name__}: {exc}")
            return None
        return self._predicted

    def confirm(self, seek: int) -> bool:
        """A new window started at `seek`: False when that is what was predicted (or later, a silent one skipped)."""
        predicted, self._predicted = self._predicted, None
        if predicted is None or seek >= predicted:
            return False
        self._on = False
        log.warning(
            "checkpoint_window_mispredicted",
            predicted=predicted,
            actual=seek,
            hint="checkpoints now wait for each window to start; a report with the faster-whisper version helps",
        )
        return True


def _looks_made_up(segment: Any, preset: Preset) -> bool:
    """Whisper's own no-speech test, which the batched pipeline computes but skips.

    (The sequential pipeline has already dropped such windows.) Repetitive
    text is deliberately not dropped here: a song's chorus or a repeated line
    compresses like a loop, so loops are left to the cue builder's repeat filter.
    """
    if preset.no_speech_threshold is None or preset.log_prob_threshold is None:  # turned off (WHISPER_EXTRA_ARGS)
        return False
    return bool(segment.no_speech_prob > preset.no_speech_threshold and segment.avg_logprob < preset.log_prob_threshold)


# A gap this long between two segments is a pause to resume at.
_MIN_PAUSE = 0.5  # seconds
_TIME_SLACK = 0.02  # seconds: faster-whisper rounds segment and word times to 10 ms


def _pause_between(end: float, next_start: float, regions: list[tuple[float, float]] | None) -> float | None:
    """Where to resume between a segment that ended at ``end`` and the next one, or None: no pause.

    The start of the first speech region after ``end``, if the next segment starts in
    it or later (a resumed run's VAD finds that region start again, so it decodes the
    same speech); else the middle of a long enough gap between the two segments.
    """
    for region_start, _ in regions or ():
        if region_start >= end - _TIME_SLACK:
            if region_start <= next_start + _TIME_SLACK:
                return region_start
            break
    # Inside a speech region (VAD keeps pauses shorter than its min_silence_duration_ms in):
    # a gap between the words is a pause too, else dense dialogue would go minutes without one.
    return (end + next_start) / 2 if next_start - end >= _MIN_PAUSE else None


def _fixed_windows(samples: int, window_seconds: float = 30.0) -> dict[str, Any]:
    """Plain 30 s windows for the batched pipeline when VAD is off: without VAD it finds no windows itself."""
    seconds = samples / SAMPLE_RATE
    starts = [n * window_seconds for n in range(max(1, math.ceil(seconds / window_seconds)))]
    return {"clip_timestamps": [{"start": start, "end": min(start + window_seconds, seconds)} for start in starts]}


# Words that the alignment piles onto one instant were not heard: this many in a row, each
# lasting no time, is a repetition the model made up (tiny models sometimes write a window's
# sentence twice; the copy gets no audio of its own, so every word of it lands on one frame).
_COLLAPSED_RUN_WORDS = 6
_NO_TIME = 0.02  # seconds: one alignment frame


def drop_collapsed_runs(words: list[Word]) -> list[Word]:
    """``words`` less every run of words crammed into no time (a made-up repetition)."""
    kept: list[Word] = []
    run: list[Word] = []
    for word in [*words, None]:
        no_time = word is not None and word.end - word.start <= _NO_TIME
        if word is not None and no_time and (not run or word.start - run[0].start <= _NO_TIME):
            run.append(word)
            continue
        if len(run) < _COLLAPSED_RUN_WORDS:
            kept.extend(run)
        run = []
        if word is not None:
            if no_time:
                run.append(word)
            else:
                kept.append(word)
    return kept


class _Found:
    """Accumulates segments and words, and the language once it is known."""

    def __init__(self, language: str | None) -> None:
        self.language = language
        self.probability = 1.0
        self.words: list[Word] = []
        self.segments: list[SegmentText] = []

    def resume(self, done: PartialTranscript) -> None:
        self.words.extend(done.words)
        self.segments.extend(done.segments)
        if done.language is not None:  # fixed by the earlier run, as by an earlier chunk
            self.language, self.probability = done.language, done.language_probability

    def add(self, segment: Any, offset: float, chunk_end: float) -> None:
        def clamp(t: float) -> float:
            # Word times may spill past the padded end of the chunk by a frame.
            return min(max(offset + float(t), offset), chunk_end)

        text = segment.text.strip()
        if not text:
            return
        words = [
            Word(
                start=clamp(w.start),
                end=max(clamp(w.start), clamp(w.end)),
                text=w.word,
                probability=float(w.probability),
            )
            for w in segment.words or ()
        ]
        kept = drop_collapsed_runs(words)
        if len(kept) < len(words):
            text = "".join(word.text for word in kept).strip()
            if not text:
                return
        self.segments.append(SegmentText(clamp(segment.start), clamp(segment.end), text))
        self.words.extend(kept)

    def settle_language(self, info: Any) -> None:
        # Fixed by the first chunk that produced text, so that later chunks of
        # the same film are not each re-detected (and possibly disagree).
        if self.language is None and self.segments:
            self.language = info.language
            self.probability = float(info.language_probability)


class _Checkpoints:
    """Marks the pauses a run reaches and hands out checkpoints (``PartialTranscript``) at some of them.

    One is handed out once ``every`` seconds of audio passed since the last (0: never),
    at the next pause; with ``whole_windows`` only at a pause where a new window starts or
    a chunk ends, or at any pause once three times that passed (the batched pipeline decodes
    its windows each on its own, so that a run resumed where one starts decodes the same
    ones). With ``exact_windows`` (the sequential pipeline, whose windows follow on from each
    other) only where a window starts or a chunk ends, with the window (``PartialTranscript.window``)
    from which a resumed run decodes the same windows again. Also at a cancel (the last
    such point reached) and at the end.
    """

    def __init__(
        self,
        found: _Found,
        speech: list[tuple[float, float]] | None,
        save: Callable[[PartialTranscript], None] | None,
        *,
        every: float,
        start: float,
        whole_windows: bool,
        exact_windows: bool = False,
    ) -> None:
        self._found = found
        self._whole_windows = whole_windows
        self._exact_windows = exact_windows
        self._speech = speech
        self._save = save
        self._every = every
        self._saved_at = start
        # The last pause reached and not handed out yet: (offset, words, segments, window) then.
        # Counts, not copies: words and segments are only ever appended.
        self._last: tuple[float, int, int, tuple[float, int] | None] | None = None

    def reached(
        self,
        offset: float,
        *,
        new_window: bool = False,
        chunk_end: bool = False,
        window: tuple[float, int] | None = None,
        force: bool = False,
    ) -> None:
        """Everything before ``offset`` (a pause) is done; ``window``: the window that starts there.

        ``force``: hand this one out now (it corrects a checkpoint already handed out)."""
        if self._save is None or (offset <= self._saved_at and not force):
            return
        if self._exact_windows and not (window is not None or chunk_end):
            return  # resuming here would decode other windows than the interrupted run
        self._last = (offset, len(self._found.words), len(self._found.segments), window)
        if force:
            self._hand_out()
            return
        since = offset - self._saved_at
        at_window = new_window or chunk_end or not self._whole_windows
        late = since >= 3 * self._every and not self._exact_windows
        if self._every > 0 and since >= self._every and (at_window or late):
            self._hand_out()

    def check(self, cancelled: Callable[[], bool]) -> None:
        """Raise ``TranscriptionCancelled`` when asked to stop, handing out the last pause reached first."""
        if cancelled():
            self._hand_out()
            raise TranscriptionCancelled

    def finish(self, duration: float) -> None:
        """The whole audio is done: a later run (after a crash before the result was stored) has nothing to do."""
        self.reached(duration)
        self._hand_out()

    def _hand_out(self) -> None:
        if self._save is None or self._last is None:
            return
        offset, words, segments, window = self._last
        found, speech = self._found, None
        if self._speech is not None:  # regions after the pause belong to the resumed run
            speech = tuple((s, min(e, offset)) for s, e in self._speech if s < offset)
        self._save(
            PartialTranscript(
                offset,
                found.language,
                found.probability,
                tuple(found.words[:words]),
                tuple(found.segments[:segments]),
                speech,
                window,
            )
        )
        self._saved_at, self._last = offset, None


class _Progress:
    def __init__(self, duration: float, callback: Callable[[float], None] | None) -> None:
        self._duration = duration
        self._callback = callback
        self._last = 0.0

    def report(self, seconds: float) -> None:
        if self._callback is None:
            return
        fraction = 1.0 if self._duration <= 0 else min(1.0, max(0.0, float(seconds) / self._duration))
        if fraction > self._last:
            self._last = fraction
            self._callback(fraction)


def _check(cancelled: Callable[[], bool]) -> None:
    if cancelled():
        raise TranscriptionCancelled


def _never() -> bool:
    return False
