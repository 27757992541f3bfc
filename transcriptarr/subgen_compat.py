"""SubGen's settings, read as Transcriptarr's: a SubGen user's env file works unchanged.

`RULES` is the one table: each SubGen variable (with the legacy name SubGen still
reads, e.g. WEBHOOKPORT for WEBHOOK_PORT) and what it becomes here, converted from
SubGen's value formats (``|`` lists, ``True``/``1``/``yes`` as SubGen's
``convert_to_bool`` reads them, ``gpu`` for cuda). A variable without an equivalent
says why. Read from SubGen v2026.07.2's own code (subgen.py, get_env_with_fallback).

How it is read (`SubgenSource`, a pydantic-settings source behind the environment
and the .env file, so both work):

- Transcriptarr's own name wins when both are set: HTTP_PORT beats WEBHOOK_PORT.
- SubGen's current name wins over its legacy name, as in SubGen.
- An empty SubGen variable counts as unset (compose files are full of ``NAME=``).
- A bad SubGen value is one ConfigError line naming the SubGen variable.
- Names both projects share with the same meaning (`SHARED_NAMES`) need no alias;
  their parsers accept SubGen's ``|`` lists.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import structlog
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource

from transcriptarr.policy.naming import MODEL_PLACEHOLDER, language_from_label

__all__ = [
    "REPORT_KEY",
    "RULES",
    "SHARED_NAMES",
    "Rule",
    "SubgenReport",
    "SubgenSource",
    "SubgenValueError",
    "Use",
    "log_subgen_settings",
    "read_subgen",
]

log = structlog.get_logger(__name__)

# Where SubgenSource hands its report to Settings (popped before validation).
REPORT_KEY: Final = "__subgen_report__"

# SubGen's convert_to_bool: these are true, anything else false. A typo is refused here instead.
_TRUE: Final = frozenset({"true", "on", "1", "y", "yes"})
_FALSE: Final = frozenset({"false", "off", "0", "n", "no"})

# SubGen's own placeholder default for its tokens: not a token.
_PLACEHOLDER_TOKEN: Final = "token here"  # noqa: S105 - a placeholder, not a secret

# Names SubGen and Transcriptarr both read, with the same meaning: nothing to alias.
SHARED_NAMES: Final = ("WHISPER_MODEL", "WHISPER_THREADS", "PREFERRED_AUDIO_LANGUAGES", "PLEX_TOKEN", "PUID", "PGID")

_SECRET_SETTINGS: Final = frozenset({"plex_token", "jellyfin_api_key"})


class SubgenValueError(ValueError):
    """A SubGen variable whose value cannot be used; the message is one line naming it."""


# --------------------------------------------------------------------------- the table's parts


@dataclass(frozen=True)
class Var:
    """A SubGen variable; `old` is the legacy name SubGen falls back to."""

    name: str
    old: str | None = None
    ours: bool = False  # the current name is also Transcriptarr's (PLEX_TOKEN): only `old` is an alias


@dataclass(frozen=True)
class Result:
    """What a rule makes of the values it found."""

    settings: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""
    supported: bool = True


def _to(note: str = "", **settings: Any) -> Result:
    return Result(settings, note)


def _same(note: str) -> Result:
    """Nothing to set: this is already how Transcriptarr works."""
    return Result({}, note)


def _unsupported(note: str) -> Result:
    return Result({}, note, supported=False)


@dataclass(frozen=True)
class Found:
    """The values one rule found, by SubGen's current names, and how the user spelled each."""

    values: Mapping[str, str]
    spelled: Mapping[str, str]
    taken: frozenset[str]  # our settings set by our own names
    settings: tuple[str, ...] = ()  # the rule's settings, to name them in errors

    def text(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name, default)

    def first(self) -> str:
        return next(iter(self.values.values()))

    def fail(self, name: str, message: str) -> SubgenValueError:
        ours = " and ".join(setting.upper() for setting in self.settings)
        what = f"SubGen's name for {ours}" if ours else "a SubGen setting"
        return SubgenValueError(f"{self.spelled.get(name, name)} ({what}): {message}")

    def flag(self, name: str, default: bool) -> bool:
        raw = self.values.get(name)
        if raw is None:
            return default
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise self.fail(name, f"'{raw}' is not a yes/no value (SubGen would read it as False); write True or False")

    def integer(self, name: str, default: int) -> int:
        raw = self.values.get(name)
        if raw is None:
            return default
        try:
            return int(raw.strip())
        except ValueError:
            raise self.fail(name, f"'{raw}' is not a whole number") from None


@dataclass(frozen=True)
class Rule:
    """SubGen variables -> our settings. `convert` gets what was set and says what it becomes."""

    reads: tuple[Var, ...]
    settings: tuple[str, ...]  # our settings it can set; empty: no equivalent
    convert: Callable[[Found], Result]
    meaning: str  # one line for the documentation


def _alias(var: Var, setting: str, meaning: str = "") -> Rule:
    """Same value format, another name: the value goes to our setting as written."""
    return Rule((var,), (setting,), lambda found: _to("", **{setting: found.first()}), meaning or "same values")


def _flag_rule(var: Var, setting: str, default: bool, *, invert: bool = False, meaning: str = "") -> Rule:
    def convert(found: Found) -> Result:
        return _to("", **{setting: found.flag(var.name, default) != invert})

    return Rule((var,), (setting,), convert, meaning or ("the opposite yes/no" if invert else "yes/no"))


def _off_is_same(var: Var, default: bool, same: str, unsupported: str) -> Rule:
    """A SubGen switch whose off state is our behaviour and whose on state has no equivalent."""

    def convert(found: Found) -> Result:
        return _unsupported(unsupported) if found.flag(var.name, default) else _same(same)

    return Rule((var,), (), convert, f"off: {same}; on: no equivalent, {unsupported}")


def _on_is_same(var: Var, default: bool, same: str, unsupported: str) -> Rule:
    def convert(found: Found) -> Result:
        return _same(same) if found.flag(var.name, default) else _unsupported(unsupported)

    return Rule((var,), (), convert, f"on: {same}; off: no equivalent, {unsupported}")


def _never(var: Var, why: str) -> Rule:
    return Rule((var,), (), lambda found: _unsupported(why), f"no equivalent: {why}")


# --------------------------------------------------------------------------- converters


def _device(found: Found) -> Result:
    device = found.first().strip().lower()
    return _to("gpu means cuda" if device == "gpu" else "", whisper_device="cuda" if device == "gpu" else device)


def _path_mapping(found: Found) -> Result:
    if not found.flag("USE_PATH_MAPPING", False):
        return _same("USE_PATH_MAPPING is not true, so SubGen does not map paths either")
    # SubGen's own defaults when only USE_PATH_MAPPING is set.
    source = found.text("PATH_MAPPING_FROM", "/tv") or "/tv"
    target = found.text("PATH_MAPPING_TO", "/Volumes/TV") or "/Volumes/TV"
    note = "the leading part of a path is replaced; SubGen replaced it anywhere in the path"
    return _to(note, path_mappings=[f"{source}:{target}"])


def _token(setting: str) -> Callable[[Found], Result]:
    def convert(found: Found) -> Result:
        token = found.first().strip()
        if token.lower() == _PLACEHOLDER_TOKEN:
            return _same(f"'{_PLACEHOLDER_TOKEN}' is SubGen's placeholder, not a token")
        return _to("", **{setting: token})

    return convert


def _events(found: Found) -> Result:
    added = found.flag("PROCESS_ADDED_MEDIA", True)
    played = found.flag("PROCESS_MEDIA_ON_PLAY", True)
    return _to("", webhook_events=[name for name, on in (("added", added), ("played", played)) if on])


def _plex_queue_ahead(found: Found) -> Result:
    # SubGen queues the next episode and then walks the season or series: together, the widest of them.
    for name, scope in (("PLEX_QUEUE_SERIES", "series"), ("PLEX_QUEUE_SEASON", "season")):
        if found.flag(name, False):
            return _to("", plex_queue_ahead=scope)
    if found.flag("PLEX_QUEUE_NEXT_EPISODE", False):
        return _to("", plex_queue_ahead="next-episode")
    return _same("nothing queued beyond the file")


def _debug(found: Found) -> Result:
    return _to("", log_level="debug" if found.flag("DEBUG", True) else "info")


def _model_unload(found: Found) -> Result:
    if not found.flag("CLEAR_VRAM_ON_COMPLETE", True):
        return _to("0 keeps the model loaded", model_idle_unload_seconds=0)
    delay = found.integer("MODEL_CLEANUP_DELAY", 30)
    if delay < 0:
        raise found.fail("MODEL_CLEANUP_DELAY", f"'{delay}' is negative; write the seconds to wait, e.g. 30")
    # 0 means "never" here; SubGen's 0 means "at once", the nearest is one second.
    return _to("", model_idle_unload_seconds=max(delay, 1))


def _task(found: Found) -> Result:
    task = found.first().strip().lower()
    if task == "transcribe":
        return _to("subtitles in the audio's language", target_languages=["original"])
    if task == "translate":
        return _to("English subtitles: other languages are translated", target_languages=["en"])
    raise found.fail("TRANSCRIBE_OR_TRANSLATE", f"'{found.first()}' is neither transcribe nor translate")


def _language(found: Found, name: str, raw: str) -> str:
    code = language_from_label(raw)
    if code is None:
        raise found.fail(name, f"'{raw}' is not a language code or name; write e.g. en, eng or English")
    return code


def _force_language(found: Found) -> Result:
    return _to("", force_language=_language(found, "FORCE_DETECTED_LANGUAGE_TO", found.first()))


def _skip_audio(found: Found) -> Result:
    name = "SKIP_IF_AUDIO_LANGUAGES"
    codes = [_language(found, name, part) for part in found.first().split("|") if part.strip()]
    return _to("", skip_audio_languages=codes)


def _limit_preferred(found: Found) -> Result:
    on = found.flag("LIMIT_TO_PREFERRED_AUDIO_LANGUAGE", False)
    if on and "preferred_audio_languages" not in found.taken:
        # SubGen's PREFERRED_AUDIO_LANGUAGES defaults to eng; ours to none.
        note = "with SubGen's default PREFERRED_AUDIO_LANGUAGES=eng"
        return _to(note, limit_to_preferred_audio_languages=True, preferred_audio_languages=["eng"])
    return _to("", limit_to_preferred_audio_languages=on)


def _kwargs(found: Found) -> Result:
    raw = found.first()
    try:
        kwargs = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        raise found.fail("SUBGEN_KWARGS", f"'{raw}' is not a Python dictionary like {{'beam_size': 5}}") from None
    if not isinstance(kwargs, dict):
        raise found.fail("SUBGEN_KWARGS", f"'{raw}' is not a dictionary like {{'beam_size': 5}}")
    # SubGen's README example {'vad': True} is stable-ts's name for what faster-whisper calls vad_filter.
    if "vad" in kwargs and "vad_filter" not in kwargs:
        kwargs["vad_filter"] = kwargs.pop("vad")
    try:
        text = json.dumps(kwargs)
    except (TypeError, ValueError):
        raise found.fail("SUBGEN_KWARGS", f"'{raw}' holds values JSON cannot hold; use numbers, text, lists") from None
    return _to("", whisper_extra_args=text)


_NAMING_TYPES: Final = {
    "ISO_639_1": "alpha2",
    "ISO_639_2_T": "alpha3t",
    "ISO_639_2_B": "alpha3",
    "NAME": "name",
    "NATIVE": "native",
}


def _naming(found: Found) -> Result:
    # Any of SubGen's three naming variables means SubGen's naming, its defaults for the others.
    kind = (found.text("SUBTITLE_LANGUAGE_NAMING_TYPE") or "ISO_639_2_B").strip().upper()
    if kind not in _NAMING_TYPES:
        raise found.fail(
            "SUBTITLE_LANGUAGE_NAMING_TYPE", f"'{kind}' is not one of {', '.join(_NAMING_TYPES)} (SubGen's forms)"
        )
    tags = ["subgen"] if found.flag("SHOW_IN_SUBNAME_SUBGEN", True) else []
    tags += [MODEL_PLACEHOLDER] if found.flag("SHOW_IN_SUBNAME_MODEL", True) else []
    return _to(
        "SubGen's file names, e.g. Movie.subgen.medium.eng.srt",
        subtitle_language_code=_NAMING_TYPES[kind],
        subtitle_name_tags=tags,
    )


# --------------------------------------------------------------------------- the table

_NO_REGROUP = "subtitle cues follow the CUE_* limits (docs/cues.md) instead of stable-ts regrouping"

RULES: Final[tuple[Rule, ...]] = (
    _alias(Var("TRANSCRIBE_FOLDERS"), "library_paths", "folders separated by |"),
    _flag_rule(Var("MONITOR"), "library_watch", False),
    _flag_rule(Var("SKIP_STARTUP_SCAN"), "library_scan_on_startup", False, invert=True),
    _alias(Var("WEBHOOK_PORT", "WEBHOOKPORT"), "http_port"),
    Rule((Var("TRANSCRIBE_DEVICE"),), ("whisper_device",), _device, "cpu, cuda; gpu means cuda"),
    _alias(Var("CONCURRENT_TRANSCRIPTIONS"), "workers", "transcriptions at once (per device here)"),
    _alias(Var("COMPUTE_TYPE"), "whisper_compute_type"),
    _alias(Var("MODEL_PATH"), "model_dir"),
    Rule(
        (Var("USE_PATH_MAPPING"), Var("PATH_MAPPING_FROM"), Var("PATH_MAPPING_TO")),
        ("path_mappings",),
        _path_mapping,
        "FROM:TO when USE_PATH_MAPPING is true",
    ),
    Rule((Var("PLEX_SERVER", "PLEXSERVER"),), ("plex_url",), lambda f: _to("", plex_url=f.first()), "same values"),
    Rule((Var("PLEX_TOKEN", "PLEXTOKEN", ours=True),), ("plex_token",), _token("plex_token"), "same values"),
    Rule(
        (Var("JELLYFIN_SERVER", "JELLYFINSERVER"),),
        ("jellyfin_url",),
        lambda f: _to("", jellyfin_url=f.first()),
        "same values",
    ),
    Rule((Var("JELLYFIN_TOKEN", "JELLYFINTOKEN"),), ("jellyfin_api_key",), _token("jellyfin_api_key"), "same values"),
    Rule(
        (Var("PROCESS_ADDED_MEDIA", "PROCADDEDMEDIA"), Var("PROCESS_MEDIA_ON_PLAY", "PROCMEDIAONPLAY")),
        ("webhook_events",),
        _events,
        "added and/or played",
    ),
    _alias(Var("WEBHOOK_URL_COMPLETED"), "notify_url", "a JSON POST per finished job (its body: docs/integrations.md)"),
    Rule(
        (Var("TRANSCRIBE_OR_TRANSLATE"),),
        ("target_languages",),
        _task,
        "transcribe: original; translate: en (English subtitles for every audio language)",
    ),
    Rule((Var("FORCE_DETECTED_LANGUAGE_TO"),), ("force_language",), _force_language, "a language code or name"),
    Rule(
        (Var("SKIP_IF_AUDIO_LANGUAGES", "SKIP_IF_AUDIO_TRACK_IS"),),
        ("skip_audio_languages",),
        _skip_audio,
        "languages separated by |",
    ),
    _flag_rule(Var("SKIP_UNKNOWN_LANGUAGE"), "skip_unknown_audio_language", False),
    Rule(
        (Var("LIMIT_TO_PREFERRED_AUDIO_LANGUAGE"),),
        ("limit_to_preferred_audio_languages", "preferred_audio_languages"),
        _limit_preferred,
        "yes/no (with SubGen's default PREFERRED_AUDIO_LANGUAGES=eng)",
    ),
    _flag_rule(Var("IGNORE_FORCED_SUBTITLES"), "library_count_forced_subtitles", True, invert=True),
    _alias(Var("DETECT_LANGUAGE_LENGTH"), "language_detect_window_seconds", "seconds"),
    _alias(Var("DETECT_LANGUAGE_OFFSET"), "language_detect_offset_seconds", "seconds"),
    Rule(
        (Var("SUBTITLE_LANGUAGE_NAMING_TYPE"), Var("SHOW_IN_SUBNAME_SUBGEN"), Var("SHOW_IN_SUBNAME_MODEL")),
        ("subtitle_language_code", "subtitle_name_tags"),
        _naming,
        "SubGen's file names: ISO_639_1 alpha2, ISO_639_2_B alpha3, ISO_639_2_T alpha3t, NAME name, NATIVE native; "
        "subgen|{model} before the language",
    ),
    Rule((Var("SUBGEN_KWARGS"),), ("whisper_extra_args",), _kwargs, "the Python dictionary as JSON"),
    Rule((Var("DEBUG"),), ("log_level",), _debug, "true: debug, false: info"),
    Rule(
        (Var("CLEAR_VRAM_ON_COMPLETE"), Var("MODEL_CLEANUP_DELAY")),
        ("model_idle_unload_seconds",),
        _model_unload,
        "MODEL_CLEANUP_DELAY seconds; 0 (never) when CLEAR_VRAM_ON_COMPLETE is false",
    ),
    _flag_rule(
        Var("LRC_FOR_AUDIO_FILES"),
        "audio_lyrics",
        True,
        meaning="true: one .lrc per audio file; false: a subtitle per wanted language, named like a video's",
    ),
    _on_is_same(
        Var("SKIP_IF_TARGET_SUBTITLES_EXIST", "SKIP_IF_TO_TRANSCRIBE_SUB_ALREADY_EXIST"),
        True,
        "media with subtitles in a wanted language is never queued",
        "media with subtitles in a wanted language is never queued again; `transcriptarr enqueue` redoes one file",
    ),
    Rule(
        (Var("SKIP_IF_EXTERNAL_SUBTITLES_EXIST", "SKIPIFEXTERNALSUB"),),
        (),
        lambda f: _same("a sidecar in a wanted language always counts, whatever its naming"),
        "nothing to set: a sidecar in a wanted language always counts",
    ),
    _never(
        Var("SKIP_IF_INTERNAL_SUBTITLES_LANGUAGE", "SKIPIFINTERNALSUBLANG"),
        "an embedded subtitle counts when it is in a wanted language (TARGET_LANGUAGES), not in one fixed language",
    ),
    _never(
        Var("SKIP_SUBTITLE_LANGUAGES", "SKIP_LANG_CODES"),
        "media is skipped by its audio language (SKIP_AUDIO_LANGUAGES), not by its embedded subtitles' languages",
    ),
    _off_is_same(
        Var("SKIP_ONLY_SUBGEN_SUBTITLES", "ONLY_SKIP_IF_SUBGEN_SUBTITLE"),
        False,
        "any subtitle in a wanted language counts",
        "any subtitle in a wanted language counts, whoever wrote it",
    ),
    _off_is_same(
        Var("SKIP_IF_NO_LANGUAGE_BUT_SUBTITLES_EXIST", "SKIP_IF_LANGUAGE_IS_NOT_SET_BUT_SUBTITLES_EXIST"),
        False,
        "untagged audio gets its language detected",
        "untagged audio gets its language detected, then subtitles in that language are looked for",
    ),
    Rule(
        (Var("SHOULD_WHISPER_DETECT_AUDIO_LANGUAGE"),),
        (),
        lambda f: _same("untagged audio always gets its language detected (LANGUAGE_DETECT_* settings)"),
        "nothing to set: untagged audio always gets its language detected",
    ),
    _never(
        Var("SUBTITLE_LANGUAGE_NAME", "NAMESUBLANG"),
        "subtitles are named by their real language so that media servers and Bazarr recognise them "
        "(SUBTITLE_LANGUAGE_CODE chooses the form)",
    ),
    _off_is_same(Var("WORD_LEVEL_HIGHLIGHT"), False, "plain cues", "cues are plain text, no word highlighting"),
    _off_is_same(Var("APPEND"), False, "no credit line", "subtitles hold only what was said, no credit line"),
    _never(Var("CUSTOM_REGROUP"), _NO_REGROUP),
    _never(
        Var("ASR_TIMEOUT"),
        "a Bazarr request waits as long as the job may run (MAX_JOB_MINUTES), kept alive by PROVIDER_KEEPALIVE_SECONDS",
    ),
    Rule(
        (Var("PLEX_QUEUE_NEXT_EPISODE"), Var("PLEX_QUEUE_SEASON"), Var("PLEX_QUEUE_SERIES")),
        ("plex_queue_ahead",),
        _plex_queue_ahead,
        "next-episode, season or series; with several on, the widest",
    ),
    _off_is_same(
        Var("RELOAD_SCRIPT_ON_CHANGE"), False, "no reloading", "a development switch of SubGen's single script"
    ),
    _off_is_same(Var("UPDATE"), False, "no self-update", "update by pulling a newer image or package version"),
    _off_is_same(Var("LAUNCHER_UPDATE"), False, "no self-update", "update by pulling a newer image or package version"),
    _off_is_same(
        Var("USE_MODEL_PROMPT"),
        False,
        "no prompt",
        "SubGen no longer reads it; the initial prompt is WHISPER_INITIAL_PROMPT",
    ),
    _never(Var("CUSTOM_MODEL_PROMPT"), "SubGen no longer reads it; the initial prompt is WHISPER_INITIAL_PROMPT"),
)


# --------------------------------------------------------------------------- reading


Kind = Literal["alias", "same", "unsupported", "overridden", "implied"]


@dataclass(frozen=True)
class Use:
    """One rule that found SubGen variables set, and what came of it."""

    subgen: tuple[str, ...]  # the variables as the user spelled them, e.g. ("WEBHOOKPORT",)
    values: Mapping[str, str]  # spelled name -> value, secrets hidden
    settings: Mapping[str, Any]  # our settings it set (empty: none)
    kind: Kind
    note: str = ""


@dataclass(frozen=True)
class SubgenReport:
    uses: tuple[Use, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.uses)

    def sources(self) -> dict[str, str]:
        """Our setting -> the SubGen variable(s) it came from, for error messages."""
        return {name: ", ".join(use.subgen) for use in self.uses for name in use.settings}

    def label(self, setting: str) -> str | None:
        """How to name a setting that came from SubGen in an error: 'WEBHOOKPORT (SubGen's name for HTTP_PORT)'."""
        subgen = self.sources().get(setting)
        return None if subgen is None else f"{subgen} (SubGen's name for {setting.upper()})"

    def lines(self, effective: Mapping[str, str]) -> list[str]:
        """What `transcriptarr config check` prints; `effective` is Settings.masked()."""
        read = [use for use in self.uses if use.kind != "unsupported"]
        missing = [use for use in self.uses if use.kind == "unsupported"]
        out: list[str] = []
        if read:
            out.append("SubGen settings read (Transcriptarr's own names win where both are set):")
            out += [f"  {_describe_use(use, effective)}" for use in read]
        if missing:
            out.append("SubGen settings without an equivalent here (ignored):")
            out += [f"  {_spelled_values(use)}: {use.note}" for use in missing]
        return out


def _spelled_values(use: Use) -> str:
    return ", ".join(f"{name}={value}" for name, value in use.values.items())


def _describe_use(use: Use, effective: Mapping[str, str]) -> str:
    ours = ", ".join(f"{name.upper()}={effective.get(name.upper(), '')}" for name in use.settings)
    note = f" ({use.note})" if use.note else ""
    if use.kind == "alias":
        return f"{', '.join(use.subgen)} -> {ours}{note}"
    if use.kind == "implied":
        return f"SubGen settings found -> {ours}{note}"
    if use.kind == "overridden":
        return f"{_spelled_values(use)}: ignored, {use.note}"
    return f"{_spelled_values(use)}: nothing to set, {use.note}"


def read_subgen(environ: Mapping[str, str], taken: Iterable[str] = ()) -> tuple[SubgenReport, dict[str, Any]]:
    """SubGen's variables in `environ` (upper-case names) -> (report, our settings to set).

    `taken` are our settings already set by our own names: those win. Raises SubgenValueError.
    """
    own = frozenset(taken)
    uses: list[Use] = []
    values: dict[str, Any] = {}
    for rule in RULES:
        found = _found(rule, environ, own)
        if found is None:
            continue
        result = rule.convert(found)
        shown = {found.spelled[name]: _shown(rule, raw) for name, raw in found.values.items()}
        spelled = tuple(shown)
        if not result.supported:
            uses.append(Use(spelled, shown, {}, "unsupported", result.note))
            continue
        wanted = dict(result.settings)
        kept = {name: value for name, value in wanted.items() if name not in own}
        if wanted and not kept:
            names = " and ".join(name.upper() for name in wanted)
            uses.append(Use(spelled, shown, {}, "overridden", f"{names} is set and Transcriptarr's own name wins"))
            continue
        values.update(kept)
        uses.append(Use(spelled, shown, kept, "alias" if kept else "same", result.note))
    if any(use.kind != "unsupported" and set(use.subgen) - _GENERIC_NAMES for use in uses) and (
        "transcriptarr_mode" not in own
    ):
        # SubGen always answers Bazarr's /asr beside its folder scans; so does a switched SubGen user's service.
        values["transcriptarr_mode"] = "standalone,provider"
        uses.append(Use((), {}, {"transcriptarr_mode": values["transcriptarr_mode"]}, "implied", _BOTH_MODES))
    return SubgenReport(tuple(uses)), values


_BOTH_MODES: Final = "SubGen always serves Bazarr's /asr beside its folder scans"
# Names other programs use too: alone, they do not make this a SubGen user's service (and open Bazarr's routes).
_GENERIC_NAMES: Final = frozenset({"DEBUG", "UPDATE", "APPEND", "MONITOR"})


def _found(rule: Rule, environ: Mapping[str, str], own: frozenset[str]) -> Found | None:
    values: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for var in rule.reads:
        names = ([] if var.ours else [var.name]) + ([var.old] if var.old else [])
        for name in names:
            raw = environ.get(name)
            if raw is not None and raw.strip():
                values[var.name], spelled[var.name] = raw.strip(), name
                break
    return Found(values, spelled, own, rule.settings) if values else None


def _shown(rule: Rule, raw: str) -> str:
    return "********" if _SECRET_SETTINGS & set(rule.settings) else raw


def log_subgen_settings(report: SubgenReport | None) -> None:
    """Once at start-up: each SubGen variable in use, with the setting it became here."""
    for use in report.uses if report is not None else ():
        settings = ",".join(name.upper() for name in use.settings) or None
        if use.kind == "implied":
            log.info("subgen_setting_used", subgen_name=None, setting=settings, value=None, note=use.note)
        for name, value in use.values.items():
            if use.kind == "unsupported":
                log.warning("subgen_setting_unsupported", subgen_name=name, value=value, reason=use.note)
            elif use.kind == "overridden":
                log.info("subgen_setting_overridden", subgen_name=name, value=value, reason=use.note)
            else:
                log.info("subgen_setting_used", subgen_name=name, setting=settings, value=value, note=use.note)


# --------------------------------------------------------------------------- the settings source


class SubgenSource(PydanticBaseSettingsSource):
    """SubGen's variables from the environment and the .env file, below Transcriptarr's own names.

    Placed after the init, environment and .env sources, it sees what they set
    (`current_state`) and leaves those settings alone. Its report travels to Settings
    under REPORT_KEY.
    """

    def __init__(self, settings_cls: type[BaseSettings], *env_sources: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.env_sources = env_sources  # lowest priority first

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads everything at once

    def __call__(self) -> dict[str, Any]:
        environ: dict[str, str] = {}
        for source in self.env_sources:
            if isinstance(source, EnvSettingsSource):
                environ.update({name.upper(): value for name, value in source.env_vars.items() if value is not None})
        report, values = read_subgen(environ, taken=self.current_state)
        return {**values, REPORT_KEY: report} if report else {}
