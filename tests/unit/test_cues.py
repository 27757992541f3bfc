"""Cue building: limits, split preferences, input robustness and the word-preservation invariant."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# _atoms and _timed_cues: the merge test needs a split that the boundary search never makes.
from transcriptarr.subtitles.cues import (
    DEFAULT_RULES,
    Cue,
    CueRules,
    Word,
    _atoms,
    _timed_cues,
    build_cues,
    join_lines,
)

EPS = 1e-9


def words_from(text: str, start: float = 0.0, step: float = 0.3, pauses: dict[int, float] | None = None) -> list[Word]:
    """Whisper-style words (leading space), one every ``step`` seconds; ``pauses`` adds silence after word i."""
    out = []
    t = start
    for i, token in enumerate(text.split()):
        out.append(Word(t, t + step, " " + token))
        t += step + (pauses or {}).get(i, 0.0)
    return out


def flat_words(cues: list[Cue]) -> list[Word]:
    return [w for cue in cues for w in cue.words]


def cut_after(cues: list[Cue]) -> list[str]:
    """The word text each cue ends with (except the last cue)."""
    return [cue.words[-1].text.strip() for cue in cues[:-1]]


def assert_valid(cues: list[Cue], rules: CueRules = DEFAULT_RULES, duration: float | None = None) -> None:
    for cue in cues:
        assert cue.start < cue.end, cue
        assert cue.lines and all(line.strip() == line and line for line in cue.lines), cue
        assert cue.words
        assert cue.start >= -EPS
        if duration is not None:
            assert cue.end <= duration + EPS
    for a, b in itertools.pairwise(cues):
        assert a.start < b.start
        assert a.end + rules.min_gap <= b.start + 1e-6, (a, b)


LONG_TEXT = (
    "Well, I don't know what you're talking about. We went to the store yesterday and bought some milk, "
    "bread and eggs, but when we came back the door was open. Nobody was there. I called the police "
    "immediately, and they told me to wait outside until they arrived, which took about forty five "
    "minutes because of the traffic on the highway near the old bridge."
)


# --------------------------------------------------------------------------- rules


def test_defaults_follow_the_style_guides() -> None:
    rules = CueRules()
    assert (rules.max_lines, rules.max_line_chars, rules.max_line_chars_cjk) == (2, 42, 16)
    assert (rules.max_duration, rules.min_duration, rules.min_gap) == (7.0, 0.8, 0.08)
    assert (rules.max_cps, rules.linger, rules.pause_split, rules.max_repeats) == (20.0, 0.3, 0.5, 2)
    assert rules.max_lead_in == 0.5


@pytest.mark.parametrize(
    "bad",
    [
        {"max_lines": 0},
        {"max_line_chars": 0},
        {"max_duration": 0},
        {"min_duration": 8.0},
        {"min_gap": -1},
        {"max_cps": 0},
        {"pause_split": 0},
        {"max_repeats": -1},
        {"max_lead_in": -0.1},
    ],
)
def test_invalid_rules_are_rejected(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CueRules(**bad)  # type: ignore[arg-type]


def test_cue_text_joins_lines() -> None:
    cue = Cue(0.0, 1.0, ("Hello there,", "general Kenobi."), ())
    assert cue.text == "Hello there,\ngeneral Kenobi."
    assert cue.flat_text == "Hello there, general Kenobi."


# --------------------------------------------------------------------------- limits


def test_line_length_and_line_count_limits() -> None:
    cues = build_cues(words_from(LONG_TEXT))
    assert_valid(cues)
    assert len(cues) > 3
    for cue in cues:
        assert len(cue.lines) <= 2
        assert all(len(line) <= 42 for line in cue.lines), cue.lines


def test_custom_line_limits() -> None:
    cues = build_cues(words_from(LONG_TEXT), CueRules(max_lines=1, max_line_chars=30))
    assert_valid(cues)
    assert all(len(cue.lines) == 1 and len(cue.lines[0]) <= 30 for cue in cues)


def test_max_duration() -> None:
    # Slow speech: one short word a second, no punctuation, fits the character limits easily.
    cues = build_cues(words_from(" ".join(f"go{i}" for i in range(40)), step=1.0))
    assert_valid(cues)
    assert len(cues) >= 6
    assert all(cue.end - cue.start <= 7.0 + EPS for cue in cues)
    assert all(cue.words[-1].end - cue.words[0].start <= 7.0 + EPS for cue in cues)


def test_a_single_overlong_word_is_shown_at_most_max_duration() -> None:
    [cue] = build_cues([Word(2.0, 15.0, " Ooooh")])
    assert (cue.start, cue.end) == (2.0, 9.0)


def test_min_duration_extends_a_short_cue_into_silence() -> None:
    cues = build_cues([Word(1.0, 1.2, " Hi."), Word(5.0, 5.5, " Who's"), Word(5.5, 6.0, " there?")])
    assert [c.text for c in cues] == ["Hi.", "Who's there?"]
    assert cues[0].end == pytest.approx(1.8)


def test_min_duration_never_overlaps_the_next_cue() -> None:
    words = [Word(1.0, 1.2, " Hi."), Word(1.6, 2.0, " Who's"), Word(2.0, 2.3, " standing"), Word(2.3, 2.6, " there?")]
    cues = build_cues(words, CueRules(max_lines=1, max_line_chars=21))  # too long for one cue
    assert [c.text for c in cues] == ["Hi.", "Who's standing there?"]
    assert cues[0].end == pytest.approx(1.6 - 0.08)


def test_linger_after_the_last_word() -> None:
    # Slow speech: neither min_duration nor reading speed needs more than the words themselves.
    cues = build_cues([*words_from("We walked home slowly.", start=1.0, step=0.8), Word(10.0, 10.5, " Later.")])
    assert cues[0].end == pytest.approx(1.0 + 4 * 0.8 + 0.3)


def test_linger_stops_min_gap_before_the_next_cue() -> None:
    words = [*words_from("We walked home slowly.", start=1.0, step=0.8), Word(4.25, 4.5, " Then")]
    words += words_from("something else happened after that.", start=4.5)
    cues = build_cues(words)
    assert cut_after(cues)[0] == "slowly."
    assert cues[0].end == pytest.approx(4.25 - 0.08)


def test_reading_speed_lengthens_a_cue_into_following_silence() -> None:
    # 40 characters said in one second: at 20 characters a second it needs two seconds on screen.
    words = [Word(0.0, 0.5, " Supercalifragilistic"), Word(0.5, 1.0, " expialidocious words.")]
    cues = build_cues([*words, Word(6.0, 6.5, " Next.")])
    assert len(cues[0].flat_text) == 42
    assert cues[0].end == pytest.approx(42 / 20)


def test_reading_speed_never_pushes_into_the_next_cue() -> None:
    words = [Word(0.0, 0.5, " Supercalifragilistic"), Word(0.5, 1.0, " expialidocious words.")]
    words += words_from("And here comes a second sentence that is far too long to join.", start=1.5)
    cues = build_cues(words)
    assert_valid(cues)
    assert cut_after(cues) == ["expialidocious words."]
    assert cues[0].end == pytest.approx(1.5 - 0.08)


def cps(cue: Cue) -> float:
    """Reading speed as build_cues counts it: the text on one line, spaces included."""
    return len(cue.flat_text) / (cue.end - cue.start)


# A 42-character cue said in one second (at 2.0 s): it needs 2.1 s on screen at 20 characters a second.
FAST = [Word(2.0, 2.5, " Supercalifragilistic"), Word(2.5, 3.0, " expialidocious words.")]


def after_fast(start: float) -> list[Word]:
    """A long sentence right after FAST: too long to join it, and it limits FAST's end to start - 0.08."""
    return words_from("And here comes a second sentence that is far too long to join.", start=start)


def test_lead_in_starts_a_fast_cue_early_by_just_what_reading_needs() -> None:
    cues = build_cues([Word(0.0, 0.4, " Hi."), *FAST, *after_fast(3.9)])
    assert_valid(cues)
    assert [c.flat_text for c in cues][:2] == ["Hi.", "Supercalifragilistic expialidocious words."]
    fast = cues[1]
    assert fast.end == pytest.approx(3.9 - 0.08)  # (a) no more room after it
    assert fast.start == pytest.approx(fast.end - 42 / 20)  # (b) 0.28 s before its first word
    assert fast.words[0].start == 2.0  # the words keep their own times
    assert cps(fast) == pytest.approx(20.0)


def test_lead_in_is_at_most_max_lead_in() -> None:
    words = [Word(0.0, 0.4, " Hi."), *FAST, *after_fast(3.5)]  # would need 0.58 s
    cues = build_cues(words)
    assert_valid(cues)
    assert cues[1].start == pytest.approx(2.0 - 0.5)
    assert cps(cues[1]) > 20  # (d) still too fast, but complete
    assert flat_words(cues) == words
    assert build_cues(words, CueRules(max_lead_in=0.2))[1].start == pytest.approx(2.0 - 0.2)
    assert build_cues(words, CueRules(max_lead_in=0.0))[1].start == 2.0


def test_lead_in_keeps_min_gap_after_the_previous_cue() -> None:
    # "Hello there." lingers until 1.8 s: the lead-in may only use what it leaves.
    cues = build_cues([*words_from("Hello there.", step=0.75), *FAST, *after_fast(3.9)])
    assert_valid(cues)
    assert cues[0].end == pytest.approx(1.8)
    assert cues[1].start == pytest.approx(1.8 + 0.08)


def test_lead_in_never_starts_before_the_media() -> None:
    words = [replace_times(w, -1.8) for w in FAST] + after_fast(1.7)  # FAST at 0.2 s
    assert build_cues(words)[0].start == 0.0
    # With a negative offset the media starts 0.1 s into the audio: that is as early as it goes.
    assert build_cues(words, offset=-0.1)[0].start == pytest.approx(0.0)
    assert build_cues(words, offset=-0.1)[0].words[0].start == pytest.approx(0.1)


def replace_times(word: Word, shift: float) -> Word:
    return Word(word.start + shift, word.end + shift, word.text, word.probability)


def test_a_cue_fast_enough_gets_no_lead_in() -> None:
    cues = build_cues([Word(0.0, 0.4, " Hi."), *words_from("We walked home.", start=2.0)])
    assert [c.start for c in cues] == [0.0, 2.0]


# Real timestamps (tiny.en on espeak-ng speech): "shaping the mountain along the way." is said at
# 28 characters a second, with 80 ms to the cues on either side; neither neighbour fits in one cue with it.
RIVERS = [
    Word(s, e, t)
    for s, e, t in [
        (0.33, 0.53, " Part"), (0.53, 0.99, " two,"), (1.45, 1.53, " rivers"), (1.53, 1.89, " carry"),
        (1.89, 2.13, " water"), (2.13, 2.45, " from"), (2.45, 2.59, " the"), (2.59, 2.89, " mountains"),
        (2.89, 3.21, " to"), (3.21, 3.35, " the"), (3.35, 3.73, " sea,"),
        (4.09, 4.09, " shaping"), (4.09, 4.33, " the"), (4.33, 4.49, " mountain"), (4.49, 4.81, " along"),
        (4.81, 5.03, " the"), (5.03, 5.25, " way."),
        (5.43, 5.89, " Part"), (5.89, 6.37, " 3,"), (6.55, 6.85, " over"), (6.85, 7.27, " thousands"),
        (7.27, 7.49, " of"), (7.49, 7.85, " years,"), (8.19, 8.23, " the"), (8.23, 8.45, " slow"),
        (8.45, 8.73, "-working"), (8.73, 9.13, " water"), (9.13, 9.45, " turns"), (9.45, 9.75, " rock"),
        (9.75, 10.05, " into"), (10.05, 10.57, " sand."),
    ]
]  # fmt: skip


def test_a_fast_cue_without_room_moves_the_cut_to_a_neighbour() -> None:
    cues = build_cues(RIVERS)
    assert_valid(cues)
    assert [w.text for w in flat_words(cues)] == [w.text for w in RIVERS]  # (" the" at 4.09 is spread out)
    assert all(cps(cue) <= 20 + 1e-6 for cue in cues), [(c.flat_text, cps(c)) for c in cues]
    assert all(len(cue.lines) <= 2 and all(len(line) <= 42 for line in cue.lines) for cue in cues)
    assert "shaping the mountain along the way." not in [c.flat_text for c in cues]  # no longer alone
    assert all(cue.start == cue.words[0].start for cue in cues)  # no silence to lead into


def test_a_fast_cue_merges_with_a_neighbour_when_they_fit() -> None:
    # The boundary search merges such a pair itself, so time a split it would not make.
    words = [*words_from("We should go.", step=0.33)]
    words += [Word(1.1, 1.2, " Right"), Word(1.2, 1.35, " now,"), Word(1.35, 1.5, " quickly!")]  # 19 chars in 0.4 s
    words += words_from("Then we waited.", start=1.9, step=0.6)
    atoms = _atoms(words)
    cues = _timed_cues([atoms[:3], atoms[3:6], atoms[6:]], DEFAULT_RULES, 0.0, None)
    assert_valid(cues)
    assert [c.flat_text for c in cues] == ["We should go. Right now, quickly!", "Then we waited."]
    assert (cues[0].start, cues[0].end) == pytest.approx((0.0, 1.5 + 0.3))  # its linger fits now
    assert cps(cues[0]) <= 20
    assert flat_words(cues) == words


def test_a_fast_cue_never_merges_across_a_pause() -> None:
    # Merged with "Hi.", FAST would be readable, but shown from 0 s: 2 s before it is said.
    cues = build_cues([Word(0.0, 0.4, " Hi."), *FAST, *after_fast(3.5)])
    assert [c.flat_text for c in cues][:2] == ["Hi.", "Supercalifragilistic expialidocious words."]


def test_fast_speech_with_no_room_at_all_keeps_every_word() -> None:
    # 16 words a second, no pause: no silence to borrow and no neighbour slow enough to share with.
    words = words_from(LONG_TEXT, start=1.0, step=0.06)
    cues = build_cues(words)
    assert_valid(cues)
    assert flat_words(cues) == words
    assert sum(cps(cue) > 20 for cue in cues) >= 3  # (d) left too fast: words are never dropped for speed
    assert cues[0].start == pytest.approx(0.5)  # the silence before the first cue is still used
    for a, b in itertools.pairwise(cues):
        assert b.start == b.words[0].start  # back to back: no lead-in possible
        assert b.start - a.end == pytest.approx(0.08)
    assert all(len(cue.lines) <= 2 and all(len(line) <= 42 for line in cue.lines) for cue in cues)


def test_min_gap_between_back_to_back_cues() -> None:
    cues = build_cues(words_from(LONG_TEXT, step=0.2))
    assert_valid(cues)
    gaps = [b.start - a.end for a, b in itertools.pairwise(cues)]
    assert min(gaps) >= 0.08 - 1e-6


# --------------------------------------------------------------------------- split preferences


def test_sentence_end_is_preferred_over_clause_punctuation() -> None:
    text = "This is the first part of a rather long sentence. And then, we go on with a bunch of words"
    assert len(text) > 84  # needs a split
    cues = build_cues(words_from(text))
    assert cut_after(cues) == ["sentence."]


def test_clause_punctuation_is_preferred_over_a_pause() -> None:
    text = "We went down to the old harbour in the morning, and we looked at the boats for hours on end"
    pause_after = text.split().index("harbour")
    cues = build_cues(words_from(text, pauses={pause_after: 0.6}))
    assert cut_after(cues) == ["morning,"]


def test_a_pause_is_preferred_over_the_balanced_point() -> None:
    text = "so we went down to the old harbour to look at all the boats that came in from the sea that day"
    pause_after = text.split().index("harbour")  # a third of the way in
    cues = build_cues(words_from(text, pauses={pause_after: 0.6}))
    assert cut_after(cues) == ["harbour"]


def test_without_punctuation_or_pauses_the_split_is_balanced() -> None:
    text = "so we went down to the old harbour to look at all the boats that came in from the sea that day"
    cues = build_cues(words_from(text, step=0.4))
    assert len(cues) == 2
    a, b = (len(c.flat_text) for c in cues)
    assert abs(a - b) <= 12, (a, b)


def test_a_long_pause_always_splits() -> None:
    cues = build_cues(words_from("I see you there", pauses={1: 1.5}))
    assert [c.flat_text for c in cues] == ["I see", "you there"]


def test_abbreviations_are_not_sentence_ends() -> None:
    text = "I asked Mr. Henderson about the broken window, and then he told me the whole story of it"
    cues = build_cues(words_from(text))
    assert "Mr." not in cut_after(cues)


def test_two_line_cues_are_balanced() -> None:
    text = "I never thought I would see the day when you would come back here"
    [cue] = build_cues(words_from(text, step=0.4))
    assert len(cue.lines) == 2
    first, second = (len(line) for line in cue.lines)
    assert abs(first - second) <= 10, cue.lines


def test_short_text_stays_on_one_line() -> None:
    [cue] = build_cues(words_from("Come here, quickly."))
    assert cue.lines == ("Come here, quickly.",)


def test_never_split_inside_a_word() -> None:
    # faster-whisper marks new words with a leading space; tokens without one belong to the previous word.
    words = []
    t = 0.0
    for k in range(12):
        for token in (" I", " don", "'t", " think", " it", "'s", " super", "cal", "ifragilistic", f" {k}."):
            words.append(Word(t, t + 0.2, token))
            t += 0.2
    cues = build_cues(words)
    assert len(cues) > 3
    for cue in cues:
        assert cue.words[0].text.startswith(" ")
        assert "don 't" not in cue.flat_text and "super cal" not in cue.flat_text
        for line in cue.lines:
            assert not line.startswith(("'", "cal", "ifrag"))


def test_bare_tokens_get_spaces() -> None:
    words = [Word(0.0, 0.3, "Hello"), Word(0.3, 0.6, "world"), Word(0.6, 0.7, ","), Word(0.8, 1.2, "how")]
    words += [Word(1.2, 1.5, "are"), Word(1.5, 1.8, "you?")]
    [cue] = build_cues(words)
    assert cue.text == "Hello world, how are you?"


# --------------------------------------------------------------------------- scripts and odd words


def test_cjk_uses_the_cjk_line_limit_and_no_spaces() -> None:
    text = "今日はとても良い天気ですね。明日も晴れるといいな、と思いながら、私は駅まで歩いて行きました。"
    words = [Word(1 + 0.15 * i, 1 + 0.15 * i + 0.14, ch) for i, ch in enumerate(text)]
    cues = build_cues(words)
    assert_valid(cues)
    assert "".join(c.flat_text for c in cues) == text
    for cue in cues:
        assert all(len(line) <= 16 and " " not in line for line in cue.lines), cue.lines
        assert not any(line.startswith(("。", "、")) for line in cue.lines)
    assert cut_after(cues)[0] == "。"  # the sentence end


def test_cjk_is_detected_per_text() -> None:
    english = words_from("This line is clearly longer than sixteen characters.")
    chinese = [Word(10 + 0.2 * i, 10 + 0.2 * i + 0.2, ch) for i, ch in enumerate("我们明天早上一起去公园散步吧。")]
    cues = build_cues(english + chinese)
    assert cues[0].flat_text == "This line is clearly longer than sixteen characters."
    assert max(len(line) for line in cues[0].lines) > 16
    assert all(len(line) <= 16 for cue in cues[1:] for line in cue.lines)


def test_korean_keeps_its_spaces_and_the_shorter_limit() -> None:
    cues = build_cues(words_from("안녕하세요 오늘 날씨가 정말 좋네요 그렇죠 우리 같이 산책하러 갈까요"))
    assert all(len(line) <= 16 for cue in cues for line in cue.lines)
    assert " ".join(c.flat_text for c in cues) == "안녕하세요 오늘 날씨가 정말 좋네요 그렇죠 우리 같이 산책하러 갈까요"


def test_a_word_longer_than_a_line_is_kept_whole() -> None:
    long = "Pneumonoultramicroscopicsilicovolcanoconiosis-supercalifragilistic"
    words = [Word(0.0, 0.5, " a"), Word(0.5, 2.0, " " + long), Word(2.0, 2.3, " b.")]
    cues = build_cues(words)
    assert_valid(cues)
    assert flat_words(cues) == words
    assert sum(line == long for cue in cues for line in cue.lines) == 1


def test_empty_input_and_blank_words() -> None:
    assert build_cues([]) == []
    assert build_cues([Word(0, 1, " "), Word(1, 2, "")]) == []
    cues = build_cues([Word(0, 0.5, " Hi"), Word(0.5, 0.6, "  "), Word(0.6, 1.0, " there")])
    assert [w.text for w in flat_words(cues)] == [" Hi", " there"]


def test_words_with_newlines_are_single_spaced() -> None:
    [cue] = build_cues([Word(0, 0.5, " Hello\nthere"), Word(0.5, 1.0, "  friend")])
    assert cue.lines == ("Hello there friend",)


# --------------------------------------------------------------------------- timestamp robustness


def test_zero_duration_words() -> None:
    words = [Word(0.3 * i, 0.3 * i, f" w{i}") for i in range(30)]
    cues = build_cues(words)
    assert_valid(cues)
    assert flat_words(cues) == words


def test_words_stamped_at_one_instant_are_spread_into_readable_cues() -> None:
    words = [Word(1.0, 1.0, f" word{i}") for i in range(40)] + [Word(12.0, 12.5, " after.")]
    cues = build_cues(words)
    assert_valid(cues)
    assert [w.text for w in flat_words(cues)] == [w.text for w in words]
    assert len(cues) > 3
    assert all(len(cue.lines) <= 2 for cue in cues)


def test_overlapping_and_non_monotonic_timestamps() -> None:
    words = [
        Word(0.0, 0.9, " one"),
        Word(0.3, 0.6, " two"),  # overlaps "one"
        Word(100.0, 100.2, " three"),  # wild outlier
        Word(0.9, 1.2, " four"),
        Word(0.0, 0.1, " five"),  # goes back in time
        Word(1.5, 1.4, " six."),  # ends before it starts
        Word(5.0, 5.5, " Seven"),
        Word(4.9, 6.0, " eight."),
    ]
    cues = build_cues(words)
    assert_valid(cues)
    out = flat_words(cues)
    assert [w.text for w in out] == [w.text for w in words]  # spoken order kept
    for a, b in itertools.pairwise(out):
        assert a.start <= a.end <= b.start
    assert cues[-1].end < 10  # the outlier did not drag anything to 100 s


def test_non_finite_timestamps() -> None:
    words = [Word(0.0, 0.5, " a"), Word(math.nan, math.nan, " b"), Word(1.0, math.inf, " c."), Word(math.inf, 3, " d")]
    cues = build_cues(words)
    assert_valid(cues)
    out = flat_words(cues)
    assert [w.text for w in out] == [" a", " b", " c.", " d"]
    assert all(math.isfinite(w.start) and math.isfinite(w.end) for w in out)


# --------------------------------------------------------------------------- drops


def test_repeated_hallucination_is_dropped_after_max_repeats() -> None:
    words: list[Word] = []
    for k in range(6):
        words += [Word(2 * k, 2 * k + 0.4, " Thank"), Word(2 * k + 0.4, 2 * k + 0.8, " you.")]
    words += [Word(20, 20.5, " Goodbye.")]
    cues = build_cues(words)
    assert [c.text for c in cues] == ["Thank you.", "Thank you.", "Goodbye."]


def test_repeat_comparison_ignores_case_and_punctuation() -> None:
    texts = ["Thank you.", "thank you!", "Thank you", "Thank, you."]
    words = [Word(2 * k, 2 * k + 0.5, " " + t) for k, t in enumerate(texts)]
    assert len(build_cues(words)) == 2


def test_repeats_limit_is_configurable() -> None:
    words = [Word(2 * k, 2 * k + 0.5, " Hello.") for k in range(5)]
    assert len(build_cues(words, CueRules(max_repeats=1))) == 1
    assert len(build_cues(words, CueRules(max_repeats=0))) == 5  # 0 disables


def test_different_text_is_never_dropped() -> None:
    words = [Word(2 * k, 2 * k + 0.5, f" Line {k}.") for k in range(6)]
    assert len(flat_words(build_cues(words))) == 6


def test_words_outside_speech_are_dropped() -> None:
    words = [
        Word(0.5, 1.0, " inside"),
        Word(5.5, 6.0, " outside"),
        Word(4.8, 5.4, " straddling"),
        Word(9.0, 9.5, " second."),
        Word(10.2, 10.2, " edge"),  # zero-length, exactly on a region end
    ]
    cues = build_cues(words, speech=[(8.0, 10.2), (0.0, 5.0)])
    out = flat_words(cues)
    assert [w.text for w in out] == [" inside", " straddling", " second.", " edge"]
    assert out[1].end == 5.0  # trimmed to the region it touches
    assert build_cues(words, speech=[]) == []


# --------------------------------------------------------------------------- offset and duration


def test_offset_is_added_to_every_timestamp() -> None:
    words = words_from(LONG_TEXT)
    plain = build_cues(words)
    shifted = build_cues(words, offset=1.5)
    assert len(plain) == len(shifted)
    for a, b in zip(plain, shifted, strict=True):
        assert b.start == pytest.approx(a.start + 1.5) and b.end == pytest.approx(a.end + 1.5)
        assert a.lines == b.lines
        for wa, wb in zip(a.words, b.words, strict=True):
            assert (wb.start, wb.end, wb.text) == pytest.approx((wa.start + 1.5, wa.end + 1.5, wa.text))


def test_duration_clamps_cues_to_the_media_length() -> None:
    words = words_from(LONG_TEXT)  # about 18 s of speech
    cues = build_cues(words, duration=10.0)
    assert_valid(cues, duration=10.0)
    assert [w.text for w in flat_words(cues)] == [w.text for w in words]  # squeezed, not lost
    assert all(w.end <= 10.0 for w in flat_words(cues))


def test_duration_is_on_the_output_timeline() -> None:
    cues = build_cues([Word(0, 1, " hello"), Word(9.5, 10.5, " there")], duration=10.0, offset=0.5)
    assert_valid(cues, duration=10.0)
    assert cues[0].start == 0.5
    assert [w.text for w in flat_words(cues)] == [" hello", " there"]


def test_zero_duration_media_has_no_cues() -> None:
    assert build_cues(words_from("hello there"), duration=0.0) == []


# --------------------------------------------------------------------------- invariants


def test_join_lines() -> None:
    assert join_lines(["Hello there,", "friend."]) == "Hello there, friend."
    assert join_lines(["今日は", "天気"]) == "今日は天気"
    assert join_lines([]) == ""


TOKENS = st.sampled_from(
    [
        *(" the", " a", " house", " running", " I", " don", "'t", " know.", " yes,", " really?", " —", " ok;"),
        " Supercalifragilisticexpialidocious-and-then-some-more-letters",
        *("今日", "は", "。", " 안녕하세요"),
    ]
)


@st.composite
def well_formed_words(draw: st.DrawFn, min_step: float = 0.06) -> list[Word]:
    """Monotonic, non-overlapping words at a humanly possible pace, as faster-whisper gives them.

    (Words closer than 50 ms are an aligner collapse and get spread out: see the crowd tests.)
    """
    count = draw(st.integers(0, 120))
    t = draw(st.floats(0, 5))
    words = []
    for _ in range(count):
        length = draw(st.floats(0.0, 1.5))
        words.append(Word(t, t + length, draw(TOKENS), draw(st.floats(0, 1))))
        t += max(length + draw(st.floats(0.0, 3.0)), min_step)
    return words


@settings(max_examples=150, deadline=None)
@given(well_formed_words())
def test_every_word_is_kept_unchanged(words: list[Word]) -> None:
    rules = CueRules(max_repeats=0)  # repeat dropping is the one allowed loss; tested above
    cues = build_cues(words, rules)
    assert_valid(cues, rules)
    assert flat_words(cues) == words


@settings(max_examples=100, deadline=None)
@given(well_formed_words())
def test_a_cue_starts_at_most_max_lead_in_before_its_first_word(words: list[Word]) -> None:
    rules = CueRules(max_repeats=0)
    for cue in build_cues(words, rules):
        assert cue.words[0].start - rules.max_lead_in - EPS <= cue.start <= cue.words[0].start


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-5, 60), st.floats(-5, 60), TOKENS | st.sampled_from(["", " ", " x"])),
        max_size=80,
    ),
    st.one_of(st.none(), st.floats(0.5, 70)),
    st.floats(-0.5, 3.0),
)
def test_messy_input_gives_valid_cues_and_keeps_the_text(
    raw: list[tuple[float, float, str]], duration: float | None, offset: float
) -> None:
    words = [Word(s, e, text) for s, e, text in raw]
    rules = CueRules(max_repeats=0)
    cues = build_cues(words, rules, duration=duration, offset=offset)
    assert_valid(cues, rules, duration)
    if duration is not None and duration <= offset:
        assert cues == []  # the audio starts after the media ends: nothing can be shown
        return
    assert [w.text for w in flat_words(cues)] == [w.text for w in words if w.text.strip()]
    for a, b in itertools.pairwise(flat_words(cues)):
        assert a.start <= a.end <= b.start + EPS


@settings(max_examples=100, deadline=None)
@given(well_formed_words(min_step=0.1), st.sampled_from([CueRules(), CueRules(max_lines=3, max_line_chars=30)]))
def test_limits_hold_unless_a_single_word_is_too_long(words: list[Word], rules: CueRules) -> None:
    for cue in build_cues(words, rules):
        assert len(cue.lines) <= rules.max_lines
        limit = rules.max_line_chars_cjk if any("\u3000" <= c <= "\uffef" for c in cue.flat_text) else None
        for line in cue.lines:
            if " " in line or len(line) <= rules.max_line_chars_cjk:
                assert len(line) <= (limit or rules.max_line_chars), cue.lines
