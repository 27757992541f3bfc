"""What a client may name: a file inside LIBRARY_PATHS with a name we can store, and target languages.

One set of checks for every way a path or a language comes in from outside: `POST /api/jobs`,
`transcriptarr enqueue`, the media-server webhooks and Bazarr's `video_file`. Each refusal
is a `Refused` with the HTTP status that fits and a one-line reason.

Symlinks follow the scan's rule (LIBRARY_FOLLOW_SYMLINKS): a path whose real file lies inside
a library is always fine (the real file is returned). A path that sits in a library but leads
out of it through a symlink is followed when the setting is true, as the scan follows it (the
path in the library is returned: the subtitle goes next to it, where the scan would put it),
and refused when it is false. A path with `..` is only ever judged by where it really leads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from transcriptarr.policy.languages import whisper_code
from transcriptarr.policy.names import unsafe_name_reason

ORIGINAL = "original"


class Refused(ValueError):
    """A path or language that cannot be queued; `status` is the HTTP answer that says so."""

    status = 400


class OutsideLibrary(Refused):
    status = 403


class Missing(Refused):
    status = 404


def inside_library(raw: str, roots: Sequence[Path], *, follow_symlinks: bool = False) -> Path:
    """The file `raw` names, if a client may name it (see the module doc); else OutsideLibrary.

    Raises OSError, RuntimeError (a symlink loop, `~unknown_user`) or ValueError when the path
    cannot be resolved at all.
    """
    if "\x00" in raw:
        raise OutsideLibrary("the path contains a NUL character")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise OutsideLibrary("give an absolute path")
    if not roots:
        raise OutsideLibrary("no library is configured (LIBRARY_PATHS is empty)")
    resolved = path.resolve()
    if any(resolved.is_relative_to(root.resolve()) for root in roots):
        return resolved
    # Where it sits in the library, as the scan names it (pathlib has dropped "." and "//"); never with "..",
    # which read lexically would undo a symlink.
    in_a_library = ".." not in path.parts and any(path.is_relative_to(root.absolute()) for root in roots)
    if in_a_library and follow_symlinks:
        return path
    if in_a_library:
        raise OutsideLibrary(
            f"{raw} is not inside LIBRARY_PATHS: a symlink leads out of the library and "
            "LIBRARY_FOLLOW_SYMLINKS is false (the scan does not follow it either)"
        )
    raise OutsideLibrary(f"{raw} is not inside LIBRARY_PATHS")


def storable_name_problem(path: str) -> str | None:
    """Why a path cannot be stored, logged and printed (the scanner's rule); None when it can."""
    reason = unsafe_name_reason(path)
    return None if reason is None else f"{path!r} cannot be queued: {reason}"


@dataclass(frozen=True)
class LibraryFile:
    path: Path
    size: int
    mtime: float


def library_file(raw: str, roots: Sequence[Path], *, follow_symlinks: bool) -> LibraryFile:
    """A media file a person asked for by hand: inside a library, storable, existing, a file."""
    try:
        path = inside_library(raw, roots, follow_symlinks=follow_symlinks)
    except Refused:
        raise
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, ~unknown_user, an unencodable name
        raise Refused(storable_name_problem(raw) or f"cannot resolve {raw!r}: {exc}") from None
    if (problem := storable_name_problem(str(path))) is not None:
        raise Refused(problem)
    try:
        stat = path.stat()
    except OSError:
        raise Missing(f"{path} does not exist: give the path of a video or audio file") from None
    if not path.is_file():
        raise Refused(f"{path} is not a file; give the path of a video or audio file")
    return LibraryFile(path, stat.st_size, stat.st_mtime)


def target_languages(raw: object, defaults: Sequence[str]) -> list[str | None]:
    """Target languages as Whisper codes, without repeats; None is the audio's own language ('original')."""
    given = list(defaults) if raw is None else [raw] if isinstance(raw, str) else raw
    if not isinstance(given, list) or not given or not all(isinstance(item, str) for item in given):
        raise Refused("'language' must be a language code, 'original', or a list of them")
    targets: list[str | None] = []
    for item in given:
        if item.lower() == ORIGINAL:
            targets.append(None)
            continue
        code = whisper_code(item)
        if code is None:
            raise Refused(f"unknown language {item!r}; use a code such as en, de, fr, or 'original'")
        targets.append(code)
    return list(dict.fromkeys(targets))


def shown(text: str) -> str:
    """`text` as it may go to a terminal or a log line: repr() when it holds control characters or bad bytes."""
    return text if unsafe_name_reason(text) is None else repr(text)
