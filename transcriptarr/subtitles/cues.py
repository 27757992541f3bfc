"""Turn Whisper word timestamps into readable subtitle cues.

Whisper's own segments run 7-28 s and up to ~380 characters: unreadable as
subtitles. This module regroups the *words* into cues that follow the
broadcast/streaming style guides (Netflix, BBC). Every rule and default is
documented in ``docs/cues.md``.

Pipeline of :func:`build_cues`:

1. drop empty words and (with ``speech``) words outside every VAD region;
2. repair timestamps: clamp to the media, make them monotonic and
   non-overlapping without reordering the text;
3. glue words that must never be separated into *atoms*;
4. drop hallucinated repeats (the same phrase a third time in a row);
5. choose cue boundaries with a small dynamic programme: hard limits (lines,
   characters per line, duration) plus costs encoding the split preferences;
6. time each cue (linger, minimum duration, gaps) and enforce the reading speed:
   lengthen into the silence after, then start a little early (lead-in), then
   re-divide it with a neighbour (merge, or move the cut); wrap it into balanced
   lines and shift it by ``offset``.
"""

from __future__ import annotations

import bisect
import itertools
import math
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import Enum, IntEnum
from typing import Final, TypeVar

__all__ = ["DEFAULT_RULES", "Cue", "CueRules", "Word", "build_cues", "join_lines"]


@dataclass(frozen=True)
class Word:
    """One recognised word; ``text`` as faster-whisper gives it (usually with a leading space)."""

    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass(frozen=True)
class Cue:
    """One subtitle: display interval, wrapped lines and the words it shows."""

    start: float
    end: float
    lines: tuple[str, ...]
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        """The lines as shown, separated by newlines."""
        return "\n".join(self.lines)

    @property
    def flat_text(self) -> str:
        """The text on one line (for txt/tsv/json/lrc), without a space inside CJK text."""
        return join_lines(self.lines)


@dataclass(frozen=True)
class CueRules:
    """Limits for cues; defaults follow the Netflix/BBC timed-text style guides (see docs/cues.md)."""

    max_lines: int = 2
    max_line_chars: int = 42
    max_line_chars_cjk: int = 16
    max_duration: float = 7.0
    min_duration: float = 0.8
    min_gap: float = 0.08
    max_cps: float = 20.0
    linger: float = 0.3
    pause_split: float = 0.5
    max_repeats: int = 2
    max_lead_in: float = 0.5

    def __post_init__(self) -> None:
        if self.max_lines < 1 or self.max_line_chars < 1 or self.max_line_chars_cjk < 1:
            raise ValueError("max_lines and the line lengths must be at least 1")
        if self.max_duration <= 0 or not 0 <= self.min_duration <= self.max_duration:
            raise ValueError("need 0 <= min_duration <= max_duration and max_duration > 0")
        if min(self.min_gap, self.linger, self.max_lead_in) < 0 or self.pause_split <= 0 or self.max_cps <= 0:
            raise ValueError("min_gap, linger and max_lead_in must be >= 0; pause_split and max_cps must be > 0")
        if self.max_repeats < 0:
            raise ValueError("max_repeats must be >= 0 (0 disables repeat dropping)")


DEFAULT_RULES: Final = CueRules()

# Shortest cue ever emitted when timestamps leave no room; anything shorter is merged
# into its neighbour instead, because a flash is unreadable.
_MIN_SHOW: Final = 0.1
# Words starting closer than _CROWDED (faster than anyone speaks) were collapsed by the
# aligner; they are spread out at _CROWD_STEP (a brisk speaking rate) where there is room.
_CROWDED: Final = 0.05
_CROWD_STEP: Final = 0.25

# Costs of the boundary search. Only their order matters much: a cut after a sentence
# end is cheapest, then after clause punctuation, then at a pause, then anywhere.
_CUT_COST: Final = (3.0, 1.0, 0.0)  # indexed by _Punct: none, clause, sentence
_PAUSE_BONUS: Final = 0.75  # a pause makes any cut cheaper (keeps the order above)
_KEEP_SENTENCE: Final = 0.6  # two sentences in one cue are fine, one per cue is nicer
_KEEP_GAP_PER_S: Final = 6.0  # showing text through silence is bad, more so the longer it is
_CUE_COST: Final = 1.0  # per cue: avoids needless fragmentation
_FILL_COST: Final = 1.5  # times fill ratio squared: convex, so splits come out balanced
_SHORT_COST: Final = 0.5  # a cue shorter than half a line (a "stub") reads badly
_SLOW_COST: Final = 2.0  # per unit of reading-speed excess
_BAD_CUT_COST: Final = 1000.0  # a cut that leaves no time to show the cue (merged later)

# Line-break preference inside a cue, as a share of limit**2 (the balance scale).
_LINE_BREAK_BONUS: Final = (0.0, 0.06, 0.1)  # indexed by _Punct

_SENTENCE_END: Final = frozenset(".!?…。！？‼⁇؟।۔")
_CLAUSE_END: Final = frozenset(",;:—–、，；：،؛")
_TRAILING_CLOSERS: Final = "\"'”’»)]}」』）】"
_ABBREVIATIONS: Final = frozenset({"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "prof", "mt"})
_NO_SPACE_BEFORE: Final = frozenset(",.!?;:…)]}%”’»。、，！？；：）」』】")

# Scripts counted as CJK for the shorter line limit (Hangul included: Netflix uses 16
# characters for Korean too). Ranges are (first, last) code points.
_CJK_RANGES: Final = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi
    (0x3000, 0x33FF),  # CJK symbols and punctuation, kana, Bopomofo, compatibility
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7FF),  # Hangul syllables, Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # half- and full-width forms
    (0x20000, 0x3134F),  # CJK extensions B-G
)
# Scripts written without spaces: a line may break between two of their characters.
# Hangul is spaced, so it is not here.
_UNSPACED_RANGES: Final = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x2E80, 0x2FDF),
    (0x3000, 0x33FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFE30, 0xFE4F),
    (0xFF00, 0xFF9F),
    (0x20000, 0x3134F),
)

_T = TypeVar("_T")


class _Punct(IntEnum):
    NONE = 0
    CLAUSE = 1
    SENTENCE = 2


class _Join(Enum):
    SPACE = "space"  # separate words with a space: a cut is allowed
    TOUCH = "touch"  # no space (CJK, Thai): a cut is still allowed
    GLUE = "glue"  # same word or attached punctuation: never cut


@dataclass(frozen=True)
class _Atom:
    """Words that must stay together (a word plus glued tokens and punctuation)."""

    words: tuple[Word, ...]
    text: str
    space_before: bool
    cjk: bool

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end


@dataclass(frozen=True)
class _Boundary:
    """What it costs to cut after an atom, and what it costs not to."""

    cut: float
    keep: float


# --------------------------------------------------------------------------- public API


def build_cues(
    words: Sequence[Word],
    rules: CueRules = DEFAULT_RULES,
    *,
    duration: float | None = None,
    offset: float = 0.0,
    speech: Sequence[tuple[float, float]] | None = None,
) -> list[Cue]:
    """Group words into readable cues.

    ``duration`` is the media length on the output timeline (no cue outlasts it);
    ``offset`` (the audio stream's start_time) is added to every output timestamp;
    ``speech`` (VAD regions, audio time) drops words lying entirely outside them.
    Output cues are strictly increasing and never overlap.
    """
    lo = max(0.0, -offset)  # audio-relative window that maps into [0, duration]
    hi = None if duration is None else duration - offset
    if hi is not None and hi <= lo:
        return []
    kept = [w for w in words if w.text.strip()]
    if speech is not None:
        kept = _inside_speech(kept, speech)
    atoms = _atoms(_repair_times(kept, lo, hi))
    atoms = _drop_repeated_phrases(atoms, rules)
    groups = _merge_crowded(_split(atoms, rules, hi), rules)
    groups = _drop_repeats(groups, lambda g: _norm(_join_atoms(g)), rules.max_repeats)
    cues = _timed_cues(groups, rules, lo, hi)
    return [_shifted(c, offset) for c in cues] if offset else cues


def join_lines(lines: Sequence[str]) -> str:
    """Join wrapped lines back into one line: a space, except between unspaced-script characters."""
    out = ""
    for line in lines:
        if out and line:
            out += "" if _unspaced(out[-1]) and _unspaced(line[0]) else " "
        out += line
    return out


# --------------------------------------------------------------------------- characters


def _in_ranges(ch: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    cp = ord(ch)
    return any(first <= cp <= last for first, last in ranges)


def _is_cjk(ch: str) -> bool:
    return _in_ranges(ch, _CJK_RANGES)


def _unspaced(ch: str) -> bool:
    return _in_ranges(ch, _UNSPACED_RANGES)


def _may_start_line(ch: str) -> bool:
    # Closing punctuation, prolonged-sound marks and combining marks cling to what precedes them.
    return ch not in _NO_SPACE_BEFORE and unicodedata.category(ch) not in {"Pe", "Pf", "Lm", "Mn", "Mc", "Me"}


def _may_end_line(ch: str) -> bool:
    return unicodedata.category(ch) not in {"Ps", "Pi"}


def _punct(text: str) -> _Punct:
    core = text.rstrip(_TRAILING_CLOSERS)
    if not core:
        return _Punct.NONE
    last = core[-1]
    if last in _SENTENCE_END:
        # "Mr. Smith" is not a sentence end.
        is_abbreviation = last == "." and core[:-1].rsplit(" ", 1)[-1].casefold() in _ABBREVIATIONS
        return _Punct.NONE if is_abbreviation else _Punct.SENTENCE
    return _Punct.CLAUSE if last in _CLAUSE_END else _Punct.NONE


def _norm(text: str) -> str:
    """Comparison key for repeats: case, spacing and punctuation do not matter."""
    key = "".join(ch for ch in text.casefold() if ch.isalnum())
    return key or text.strip()


# --------------------------------------------------------------------------- input repair


def _inside_speech(words: Sequence[Word], speech: Sequence[tuple[float, float]]) -> list[Word]:
    """Drop words touching no speech region; trim the others to the regions they touch."""
    regions = _merge_regions(speech)
    starts = [s for s, _ in regions]
    ends = [e for _, e in regions]
    out: list[Word] = []
    for w in words:
        first = bisect.bisect_left(ends, w.start)  # first region ending at/after the word starts
        last = bisect.bisect_right(starts, w.end) - 1  # last region starting at/before it ends
        if first <= last:
            start, end = max(w.start, starts[first]), min(w.end, ends[last])
            out.append(w if (start, end) == (w.start, w.end) else replace(w, start=start, end=end))
    return out


def _merge_regions(speech: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted((min(s, e), max(s, e)) for s, e in speech):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _repair_times(words: Sequence[Word], lo: float, hi: float | None) -> list[Word]:
    """Clamp into the media and make times monotonic and non-overlapping, keeping the text order.

    Whisper's text order is reliable, its timestamps less so, so words are never reordered.
    Non-finite times count as unknown (NaN start; an unknown end is the start).
    """
    # The latest start that still leaves a moment to show the word before the media ends.
    latest = math.inf if hi is None else max(lo, hi - _MIN_SHOW)
    top = math.inf if hi is None else hi
    starts = [min(max(w.start, lo), latest) if math.isfinite(w.start) else math.nan for w in words]
    ends = [min(max(w.end, lo), top) if math.isfinite(w.end) else -math.inf for w in words]
    _make_monotonic(starts, lo)
    _spread_crowds(starts, latest)
    out = []
    for i, w in enumerate(words):
        ceiling = starts[i + 1] if i + 1 < len(words) else math.inf  # no overlap with the next word
        start, end = starts[i], min(max(ends[i], starts[i]), ceiling)
        out.append(w if (start, end) == (w.start, w.end) else replace(w, start=start, end=end))
    return out


def _make_monotonic(starts: list[float], lo: float) -> None:
    """Trust the longest non-decreasing run of start times; pull the others between their neighbours.

    One wild timestamp (high or low) thus moves only its own word, not everything after it.
    """
    trusted = _longest_non_decreasing(starts)  # NaN (unknown) is never trusted
    next_trusted = math.inf
    for i in reversed(range(len(starts))):  # an outlier may not start after the next trusted word...
        if trusted[i]:
            next_trusted = starts[i]
        elif not starts[i] <= next_trusted:  # (also true for NaN)
            starts[i] = next_trusted
    previous = lo
    for i, start in enumerate(starts):  # ...nor before the word said just before it
        starts[i] = previous = start if previous <= start < math.inf else previous


def _spread_crowds(starts: list[float], latest: float) -> None:
    """Words stamped (nearly) at one instant get spread at a speaking pace into the time after them.

    Whisper collapses words it cannot align onto one timestamp; left alone they could
    not be cut into separate cues, since every cue needs time to be read.
    """
    i = 0
    while i < len(starts):
        k = i + 1
        while k < len(starts) and starts[k] - starts[k - 1] < _CROWDED:
            k += 1
        room = (starts[k] if k < len(starts) else latest) - starts[i]
        step = min(room / (k - i), _CROWD_STEP)
        for t in range(1, k - i):
            starts[i + t] = max(starts[i + t], starts[i] + t * step)
        i = k


def _longest_non_decreasing(values: Sequence[float]) -> list[bool]:
    """Mark one longest non-decreasing subsequence (patience sorting, O(n log n))."""
    tails: list[float] = []  # smallest last value of a run of each length
    tail_at: list[int] = []
    previous = [-1] * len(values)
    for i, v in enumerate(values):
        if math.isnan(v):
            continue
        k = bisect.bisect_right(tails, v)
        previous[i] = tail_at[k - 1] if k else -1
        if k == len(tails):
            tails.append(v)
            tail_at.append(i)
        else:
            tails[k], tail_at[k] = v, i
    marked = [False] * len(values)
    i = tail_at[-1] if tail_at else -1
    while i >= 0:
        marked[i] = True
        i = previous[i]
    return marked


# --------------------------------------------------------------------------- atoms


def _atoms(words: Sequence[Word]) -> list[_Atom]:
    """Group words into atoms; cues and lines are only ever cut between atoms."""
    # faster-whisper marks word starts with a leading space; without any, words are bare tokens.
    spaced = any(w.text[:1].isspace() for w in words[1:])
    members: list[list[Word]] = []
    texts: list[str] = []
    space_before: list[bool] = []
    for w in words:
        core = " ".join(w.text.split())
        join = _join_kind(texts[-1], w.text, core, spaced) if texts else _Join.SPACE
        if join is _Join.GLUE:
            members[-1].append(w)
            texts[-1] += core
        else:
            space_before.append(join is _Join.SPACE and bool(texts))
            members.append([w])
            texts.append(core)
    return [
        _Atom(tuple(ws), text, space, any(map(_is_cjk, text)))
        for ws, text, space in zip(members, texts, space_before, strict=True)
    ]


def _join_kind(previous: str, raw: str, core: str, spaced: bool) -> _Join:
    before, after = previous[-1], core[0]
    if spaced and raw[:1].isspace():
        return _Join.SPACE
    if not _may_start_line(after) or not _may_end_line(before):
        return _Join.GLUE
    if _unspaced(before) or _unspaced(after):  # CJK, Thai...: any character boundary may break
        return _Join.TOUCH
    return _Join.GLUE if spaced else _Join.SPACE


def _join_atoms(atoms: Sequence[_Atom]) -> str:
    return "".join((" " if a.space_before and i else "") + a.text for i, a in enumerate(atoms))


def _drop_repeated_phrases(atoms: list[_Atom], rules: CueRules) -> list[_Atom]:
    """Whisper loops repeat a phrase many times; drop it beyond max_repeats in a row."""
    phrases: list[list[_Atom]] = []
    for i, atom in enumerate(atoms):
        if not phrases or _ends_phrase(atoms[i - 1], atom, rules):
            phrases.append([])
        phrases[-1].append(atom)
    kept = _drop_repeats(phrases, lambda p: _norm(_join_atoms(p)), rules.max_repeats)
    return [atom for phrase in kept for atom in phrase]


def _ends_phrase(previous: _Atom, atom: _Atom, rules: CueRules) -> bool:
    return _punct(previous.text) is _Punct.SENTENCE or atom.start - previous.end >= rules.pause_split


def _drop_repeats(items: list[_T], key: Callable[[_T], str], max_repeats: int) -> list[_T]:
    """Keep at most max_repeats consecutive items with the same key (0 keeps everything)."""
    if max_repeats <= 0:
        return items
    out: list[_T] = []
    last, run = "", 0
    for item in items:
        k = key(item)
        run = run + 1 if out and k == last else 1
        last = k
        if run <= max_repeats:
            out.append(item)
    return out


# --------------------------------------------------------------------------- cue boundaries


class _LineFit:
    """Greedy line packing grown one atom at a time; greedy gives the fewest lines.

    Packs for both line limits are kept, since one CJK word switches the cue to the CJK limit.
    """

    def __init__(self, rules: CueRules) -> None:
        self.rules = rules
        self.chars = 0
        self.cjk = False
        self._latin = (0, 0)  # (lines, characters on the last line)
        self._cjk = (0, 0)

    def add(self, atom: _Atom) -> None:
        sep = 1 if self.chars and atom.space_before else 0
        size = len(atom.text)
        self.chars += sep + size
        self.cjk = self.cjk or atom.cjk
        self._latin = _pack(self._latin, sep, size, self.rules.max_line_chars)
        self._cjk = _pack(self._cjk, sep, size, self.rules.max_line_chars_cjk)

    @property
    def limit(self) -> int:
        return self.rules.max_line_chars_cjk if self.cjk else self.rules.max_line_chars

    @property
    def lines(self) -> int:
        return self._cjk[0] if self.cjk else self._latin[0]


def _pack(state: tuple[int, int], sep: int, size: int, limit: int) -> tuple[int, int]:
    lines, used = state
    if lines and used + sep + size <= limit:
        return lines, used + sep + size
    return lines + 1, size  # a word longer than the line gets a line of its own


def _boundary(previous: _Atom, nxt: _Atom, rules: CueRules) -> _Boundary:
    punct = _punct(previous.text)
    cut = _CUT_COST[punct]
    keep = _KEEP_SENTENCE if punct is _Punct.SENTENCE else 0.0
    gap = nxt.start - previous.end
    if gap >= rules.pause_split:
        cut -= _PAUSE_BONUS
        keep += _KEEP_GAP_PER_S * (gap - rules.pause_split)
    return _Boundary(cut, keep)


def _split(atoms: Sequence[_Atom], rules: CueRules, hi: float | None) -> list[list[_Atom]]:
    """Cheapest segmentation of the atoms into cues (dynamic programming over cut points)."""
    boundaries = [_boundary(a, b, rules) for a, b in itertools.pairwise(atoms)]
    best = [0.0] + [math.inf] * len(atoms)  # best[k]: cost of cueing atoms[:k]
    back = [0] * (len(atoms) + 1)
    for i in range(len(atoms)):
        for j, cost in _cue_options(atoms, boundaries, i, rules, hi):
            if best[i] + cost < best[j + 1]:
                best[j + 1], back[j + 1] = best[i] + cost, i
    groups = []
    end = len(atoms)
    while end:
        groups.append(list(atoms[back[end] : end]))
        end = back[end]
    return groups[::-1]


def _cue_options(
    atoms: Sequence[_Atom], boundaries: Sequence[_Boundary], i: int, rules: CueRules, hi: float | None
) -> Iterator[tuple[int, float]]:
    """Yield (j, cost) for every cue atoms[i..j] within the hard limits; one atom always fits."""
    fit = _LineFit(rules)
    keep = 0.0
    start = atoms[i].start
    for j in range(i, len(atoms)):
        fit.add(atoms[j])
        if j > i:
            if fit.lines > rules.max_lines or atoms[j].end - start > rules.max_duration:
                return
            keep += boundaries[j - 1].keep
        yield j, keep + _cue_cost(atoms, boundaries, i, j, fit, rules, hi)


def _cue_cost(
    atoms: Sequence[_Atom],
    boundaries: Sequence[_Boundary],
    i: int,
    j: int,
    fit: _LineFit,
    rules: CueRules,
    hi: float | None,
) -> float:
    """Cost of showing atoms[i..j] as one cue and cutting after it (lower is better)."""
    start = atoms[i].start
    if j + 1 < len(atoms):
        room_end = atoms[j + 1].start - rules.min_gap
        cut = boundaries[j].cut
        if room_end - start < _MIN_SHOW:
            cut += _BAD_CUT_COST
    else:
        room_end, cut = (math.inf if hi is None else hi), 0.0
    room = max(min(room_end - start, rules.max_duration), 1e-3)
    cps = fit.chars / room
    return (
        cut
        + _CUE_COST
        + _FILL_COST * (fit.chars / (rules.max_lines * fit.limit)) ** 2
        + _SHORT_COST * max(0.0, 1.0 - 2.0 * fit.chars / fit.limit)
        + _SLOW_COST * max(0.0, cps / rules.max_cps - 1.0)
    )


def _merge_crowded(groups: list[list[_Atom]], rules: CueRules) -> list[list[_Atom]]:
    """Merge a cue into the previous one when there is no time to show it on its own.

    Only degenerate timestamps (many words at one instant) get here; the merged cue
    may then exceed the line limits, but no word is lost and timing stays valid.
    """
    out: list[list[_Atom]] = []
    for group in groups:
        if out and group[0].start - out[-1][0].start < rules.min_gap + _MIN_SHOW:
            out[-1].extend(group)
        else:
            out.append(group)
    return out


# --------------------------------------------------------------------------- timing and lines


def _timed_cues(groups: Sequence[list[_Atom]], rules: CueRules, lo: float, hi: float | None) -> list[Cue]:
    """Time every cue, re-divide those still read too fast where a neighbour allows, then wrap the lines."""
    groups = list(groups)
    spans = _spans(groups, rules, lo, hi)
    _recut_fast_cues(groups, spans, rules, lo, hi)
    return [_cue(group, span, rules) for group, span in zip(groups, spans, strict=True)]


def _cue(group: Sequence[_Atom], span: tuple[float, float], rules: CueRules) -> Cue:
    limit_chars = rules.max_line_chars_cjk if any(a.cjk for a in group) else rules.max_line_chars
    lines = _wrap(group, limit_chars, rules.max_lines)
    return Cue(span[0], span[1], lines, tuple(w for a in group for w in a.words))


# Reading speed is enforced in this order, each step only for a cue still too fast after
# the one before: (a) _end lengthens it into the silence after it; (b) _lead_in starts
# it early, into the silence before; (c) _recut_fast_cues merges it with a neighbour or
# moves the cut between them; (d) otherwise it stays too fast: words are never dropped.


def _spans(
    groups: Sequence[Sequence[_Atom]], rules: CueRules, lo: float, hi: float | None
) -> list[tuple[float, float]]:
    """(start, end) of every cue, left to right: a lead-in may only use what the previous cue left."""
    spans: list[tuple[float, float]] = []
    previous_end = -math.inf
    for k, group in enumerate(groups):
        spans.append(_span(group, _next_start(groups, k), previous_end, rules, lo, hi))
        previous_end = spans[-1][1]
    return spans


def _next_start(groups: Sequence[Sequence[_Atom]], k: int) -> float | None:
    """First word of the cue after groups[k]: its end limit (a lead-in never reaches back past it)."""
    return groups[k + 1][0].start if k + 1 < len(groups) else None


def _span(
    group: Sequence[_Atom],
    next_start: float | None,
    previous_end: float,
    rules: CueRules,
    lo: float,
    hi: float | None,
) -> tuple[float, float]:
    """Display interval of one cue: the end first, then the start (a lead-in only if still too fast)."""
    chars = _chars(group)
    end = _end(group, chars, next_start, rules, hi)
    return _lead_in(group[0].start, end, chars, previous_end, rules, lo), end


def _end(group: Sequence[_Atom], chars: int, next_start: float | None, rules: CueRules, hi: float | None) -> float:
    """When a cue leaves the screen, computed from its first word (so a later lead-in cannot shorten it)."""
    start = group[0].start
    limit = start + rules.max_duration
    if next_start is not None:
        limit = min(limit, next_start - rules.min_gap)
    elif hi is not None:
        limit = min(limit, hi)
    wanted = max(
        group[-1].end + rules.linger,  # let the eye finish the last word
        start + rules.min_duration,
        start + chars / rules.max_cps,  # (a) reading speed: lengthen into the silence after
        start + _MIN_SHOW,
    )
    return min(wanted, limit)


def _lead_in(first: float, end: float, chars: int, previous_end: float, rules: CueRules, lo: float) -> float:
    """(b) Start a cue still too fast before its first word, into the silence before it.

    Only as early as reading speed needs and at most max_lead_in (text slightly ahead of
    speech goes unnoticed, far ahead it gives the dialogue away); min_gap after the
    previous cue, within max_duration, never before the media starts.
    """
    needed = end - chars / rules.max_cps
    if needed >= first:
        return first
    earliest = max(first - rules.max_lead_in, previous_end + rules.min_gap, end - rules.max_duration, lo)
    return min(first, max(needed, earliest))


def _chars(group: Sequence[_Atom]) -> int:
    """Characters to read, spaces included (a line break counts as the space it replaces)."""
    return len(_join_atoms(group))


def _too_fast(group: Sequence[_Atom], span: tuple[float, float], rules: CueRules) -> bool:
    start, end = span
    return _chars(group) > rules.max_cps * (end - start) * (1 + 1e-9)  # tolerance: rounding in _lead_in


def _readable(group: Sequence[_Atom], span: tuple[float, float], rules: CueRules) -> bool:
    """Shown long enough to be noticed (a new cut may leave no time at all) and to be read."""
    return span[1] - span[0] >= _MIN_SHOW and not _too_fast(group, span, rules)


@dataclass(frozen=True)
class _Recut:
    """Another division of two neighbouring cues' words: one cue (a merge) or two, with their spans."""

    cost: float  # change in the boundary search's cost; lower is better
    first: int  # index of the first of the two cues replaced
    groups: list[list[_Atom]]
    spans: list[tuple[float, float]]


def _recut_fast_cues(
    groups: list[list[_Atom]], spans: list[tuple[float, float]], rules: CueRules, lo: float, hi: float | None
) -> None:
    """(c) Re-divide each cue still too fast together with a neighbour, in place.

    Fast speech leaves no silence to borrow, but two neighbouring cues can share their
    time differently: merged into one cue (which also gets the gap between them), or
    cut at another word, so that the fast stretch shares a cue with slower speech.
    Only neighbours less than pause_split apart are re-divided. Among the divisions
    keeping every limit for the new cues (lines, characters, max_duration, max_cps,
    _MIN_SHOW) and not making the cue after them too fast, the one the boundary search
    rates cheapest is taken; with none, the cue stays as it is (d).

    The search itself merges every such pair that fits, so in practice the cut moves:
    it only kept the fast cue because reading speed is a cost there, not a limit.
    """
    k = 0
    while k < len(groups):
        if _too_fast(groups[k], spans[k], rules):
            options = [o for first in (k - 1, k) for o in _recut_options(groups, spans, first, rules, lo, hi)]
            if options:
                best = min(options, key=lambda o: o.cost)  # ties: the earlier option
                groups[best.first : best.first + 2] = best.groups
                spans[best.first : best.first + 2] = best.spans
                after = best.first + len(best.groups)
                if after < len(groups):  # its lead-in room depends on the end before it
                    spans[after] = _restarted(groups[after], spans[after], best.spans[-1][1], rules, lo)
                k = after - 1  # the new cues are within the limits: go on after them
        k += 1


def _recut_options(
    groups: Sequence[list[_Atom]],
    spans: Sequence[tuple[float, float]],
    first: int,
    rules: CueRules,
    lo: float,
    hi: float | None,
) -> Iterator[_Recut]:
    """Every division of groups[first] + groups[first + 1] into one or two cues that is readable."""
    if first < 0 or first + 1 >= len(groups):
        return
    if groups[first + 1][0].start - groups[first][-1].end >= rules.pause_split:
        return  # joining across a pause would show text through silence, long before it is said
    atoms = groups[first] + groups[first + 1]
    after = first + 2
    # With the first atom after the pair, the costs price the last cut as the search did.
    priced = atoms + groups[after][:1] if after < len(groups) else atoms
    boundaries = [_boundary(a, b, rules) for a, b in itertools.pairwise(priced)]
    n = len(atoms)

    def cost(cut: int) -> float:  # of atoms[:cut] and atoms[cut:] as cues (one cue when cut == n)
        parts = [(0, cut - 1), (cut, n - 1)] if cut < n else [(0, n - 1)]
        return sum(_group_cost(priced, boundaries, i, j, rules, hi) for i, j in parts)

    old_cost = cost(len(groups[first]))
    previous_end = spans[first - 1][1] if first else -math.inf
    for cut in range(1, n + 1):
        parts = [atoms[:cut], atoms[cut:]] if cut < n else [atoms]
        if not all(_fits(part, rules) for part in parts):
            continue
        part_spans = _spans_between(parts, previous_end, _next_start(groups, first + 1), rules, lo, hi)
        if not all(_readable(part, span, rules) for part, span in zip(parts, part_spans, strict=True)):
            continue
        if after < len(groups):
            restarted = _restarted(groups[after], spans[after], part_spans[-1][1], rules, lo)
            if _too_fast(groups[after], restarted, rules) and not _too_fast(groups[after], spans[after], rules):
                continue  # fixing one cue by breaking the next gains nothing
        yield _Recut(cost(cut) - old_cost, first, parts, part_spans)


def _spans_between(
    parts: Sequence[Sequence[_Atom]],
    previous_end: float,
    next_start: float | None,
    rules: CueRules,
    lo: float,
    hi: float | None,
) -> list[tuple[float, float]]:
    """Spans of consecutive cues placed between a previous cue's end and a next cue's first word."""
    out: list[tuple[float, float]] = []
    for k, part in enumerate(parts):
        following = parts[k + 1][0].start if k + 1 < len(parts) else next_start
        out.append(_span(part, following, out[-1][1] if out else previous_end, rules, lo, hi))
    return out


def _fits(atoms: Sequence[_Atom], rules: CueRules) -> bool:
    """The hard limits of the boundary search: lines, characters per line, speech span."""
    fit = _LineFit(rules)
    for atom in atoms:
        fit.add(atom)
    return fit.lines <= rules.max_lines and atoms[-1].end - atoms[0].start <= rules.max_duration


def _group_cost(
    atoms: Sequence[_Atom], boundaries: Sequence[_Boundary], i: int, j: int, rules: CueRules, hi: float | None
) -> float:
    """What the boundary search charges for atoms[i..j] as one cue (as _cue_options adds it up)."""
    fit = _LineFit(rules)
    for atom in atoms[i : j + 1]:
        fit.add(atom)
    keep = sum(b.keep for b in boundaries[i:j])
    return keep + _cue_cost(atoms, boundaries, i, j, fit, rules, hi)


def _restarted(
    group: Sequence[_Atom], span: tuple[float, float], previous_end: float, rules: CueRules, lo: float
) -> tuple[float, float]:
    """The span with its lead-in redone after the previous cue's end moved (its end does not depend on it)."""
    return _lead_in(group[0].start, span[1], _chars(group), previous_end, rules, lo), span[1]


def _wrap(atoms: Sequence[_Atom], limit: int, max_lines: int) -> tuple[str, ...]:
    """Fewest lines possible, balanced in length, preferring breaks after punctuation."""
    greedy = _greedy_lines(atoms, limit)
    if len(greedy) <= 1 or len(greedy) > max_lines:
        return tuple(_join_atoms(line) for line in greedy)
    return _balanced_lines(atoms, len(greedy), limit)


def _greedy_lines(atoms: Sequence[_Atom], limit: int) -> list[list[_Atom]]:
    lines: list[list[_Atom]] = []
    for atom in atoms:
        if lines and len(_join_atoms([*lines[-1], atom])) <= limit:
            lines[-1].append(atom)
        else:
            lines.append([atom])
    return lines


def _balanced_lines(atoms: Sequence[_Atom], n_lines: int, limit: int) -> tuple[str, ...]:
    """Split into exactly n_lines lines minimising the sum of squared lengths (so no stubs)."""
    n = len(atoms)
    offsets = list(itertools.accumulate((len(a.text) + (1 if a.space_before else 0) for a in atoms), initial=0))

    def length(i: int, end: int) -> int:  # of atoms[i:end] on one line (no leading space)
        return offsets[end] - offsets[i] - (1 if atoms[i].space_before else 0)

    bonus = [_LINE_BREAK_BONUS[_punct(a.text)] * limit**2 for a in atoms]
    # cost[k][i]: best cost of putting atoms[i:] on k lines; choice[k][i]: end of the first line.
    cost = [[math.inf] * (n + 1) for _ in range(n_lines + 1)]
    choice = [[n] * (n + 1) for _ in range(n_lines + 1)]
    cost[0][n] = 0.0
    for k in range(1, n_lines + 1):
        for i in range(n - 1, -1, -1):
            for end in range(i + 1, n + 1):
                size = length(i, end)
                if size > limit and end - i > 1:
                    break
                total = size**2 - (bonus[end - 1] if end < n else 0.0) + cost[k - 1][end]
                if total < cost[k][i]:
                    cost[k][i], choice[k][i] = total, end
    lines, i = [], 0
    for k in range(n_lines, 0, -1):
        lines.append(_join_atoms(atoms[i : choice[k][i]]))
        i = choice[k][i]
    return tuple(lines)


def _shifted(cue: Cue, offset: float) -> Cue:
    words = tuple(replace(w, start=w.start + offset, end=w.end + offset) for w in cue.words)
    return replace(cue, start=cue.start + offset, end=cue.end + offset, words=words)
