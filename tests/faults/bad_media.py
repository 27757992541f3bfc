"""A library folder of broken, odd and hostile media files, mixed with good ones.

`build_corpus(folder, speech)` fills `folder` and returns what each file should end
as: a subtitle next to it (with the exact sidecar name), or no subtitle and a reason
(skipped by the scan, or a failed job). Everything is real: ffmpeg-made media, real
FIFOs and symlinks, names the file system takes as given (bytes included).

What root can and cannot test: root reads every file whatever its mode, so "a file
the service may not read" cannot be made with chmod. The corpus holds the things that
are unreadable for root too (a FIFO, a dangling symlink, a folder named like a video)
and a good file in a folder of mode 000, which root transcribes like any other.
"""

from __future__ import annotations

import os
import shutil
import struct
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.media_factory import make_video, run_tool

__all__ = ["Expected", "build_corpus", "sidecar_name"]

NAME_MAX = 255  # bytes, on ext4, xfs, btrfs, tmpfs


@dataclass(frozen=True)
class Expected:
    """What should become of one file of the corpus."""

    path: Path  # may hold undecodable bytes (surrogate escapes), as os.fsdecode gives them
    why: str  # what is odd about it, for failure messages
    subtitle: str | None = None  # the sidecar's file name, when the file must get one
    # How it ends when it gets no subtitle:
    #   "scan"    decided and skipped by the scan, the reason in the media index
    #   "walk"    not even looked at: the scan reports it as a problem, with the reason
    #   "folder"  in a folder the scan cannot read (reported as such)
    #   "failed"  queued, then a failed job whose one-line reason names the file
    #   "none"    nothing to say during a scan (a folder named like a video); `explain` tells
    ends: str = "subtitle"
    reason: str = ""  # words the reason must contain


def sidecar_name(media_name: str, language: str = "en") -> str:
    stem = media_name.rsplit(".", 1)[0]
    return f"{stem}.{language}.srt"


def _good(folder: Path, name: str, speech: Path, why: str) -> Expected:
    shutil.copyfile(speech, folder / name)
    return Expected(folder / name, why, subtitle=sidecar_name(name))


def _long_name(stem_unit: str, extension: str, limit: int) -> str:
    """The longest name of repeated `stem_unit` whose bytes, with `extension`, stay within `limit`."""
    stem = ""
    while len((stem + stem_unit + extension).encode()) <= limit:
        stem += stem_unit
    return stem + extension


def _truncated(source: Path, dest: Path) -> Path:
    data = source.read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


def _wav_claiming_hours(source_wav: Path, dest: Path) -> Path:
    """A WAV whose header says 4 GB of audio (37 hours at 16 kHz) in front of three seconds."""
    run_tool(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-i",
            str(source_wav),
            "-ar",
            "16000",
            "-ac",
            "1",
            "-f",
            "wav",
            str(dest),
        ]
    )
    data = bytearray(dest.read_bytes())
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)  # RIFF size
    at = data.index(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", 0xFFFFFFF0)  # data size
    dest.write_bytes(bytes(data))
    return dest


def _mp3(source_wav: Path, dest: Path) -> Path:
    run_tool(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source_wav), "-c:a", "libmp3lame", "-f", "mp3", str(dest)]
    )
    return dest


def _hours_late(speech_wav: Path, dest: Path) -> Path:
    """A video whose timestamps start at 100 hours: ffprobe reports a 100-hour duration."""
    run_tool(
        [
            *("ffmpeg", "-nostdin", "-v", "error", "-y"),
            *("-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=3", "-i", str(speech_wav)),
            *("-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"),
            *("-metadata:s:a:0", "language=eng", "-output_ts_offset", "360000", str(dest)),
        ]
    )
    return dest


def build_corpus(folder: Path, speech_movie: Path, speech_wav: Path, longer_movie: Path) -> list[Expected]:
    """Fill `folder` (created) with the corpus.

    `speech_movie` is a short good .mkv of English speech (tagged "eng"), `speech_wav`
    its audio, `longer_movie` a good .mkv with a few seconds more speech.
    """
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder.parent / f"{folder.name}-scratch"
    scratch.mkdir(exist_ok=True)
    corpus: list[Expected] = []
    add = corpus.append

    def good(name: str, why: str) -> None:
        add(_good(folder, name, speech_movie, why))

    # --- good files with odd names: each must get its sidecar, named after it exactly
    good(' it\'s "quoted"  #1 100% what?*[a] back\\slash $(touch x); `id` | y .mkv', "quotes, # % ? * \\ and more")
    good(unicodedata.normalize("NFC", "Café Noir.mkv"), "unicode, composed (NFC)")
    good(unicodedata.normalize("NFD", "Café Noir.mkv"), "unicode, decomposed (NFD): another file")
    good("-i pipe:1 🎬 映画.mkv", "a leading dash, an ffmpeg protocol, emoji and CJK")
    sidecar_fits = NAME_MAX - len(".en.srt") + len(".mkv")
    good(_long_name("x", ".mkv", sidecar_fits), "the longest name whose sidecar name still fits")
    good(_long_name("🎞", ".mkv", sidecar_fits), "a long name of 4-byte characters")
    locked = folder / "locked"
    locked.mkdir()
    if os.geteuid() == 0:
        add(_good(locked, "Locked Away.mkv", speech_movie, "in a folder of mode 000: root reads it anyway"))
    else:
        shutil.copyfile(speech_movie, locked / "Locked Away.mkv")
        add(Expected(locked / "Locked Away.mkv", "in a folder of mode 000", ends="folder", reason="cannot read"))
    locked.chmod(0)
    mp3 = _mp3(speech_wav, folder / "Really An MP3.mkv")
    add(Expected(mp3, "an MP3 named .mkv: ffprobe goes by the content", subtitle=sidecar_name(mp3.name)))
    late = _hours_late(speech_wav, folder / "Hundred Hours.mkv")
    add(Expected(late, "timestamps start at 100 h: a declared 100-hour duration", subtitle=sidecar_name(late.name)))
    huge = _wav_claiming_hours(speech_wav, folder / "Huge Header.mkv")
    add(Expected(huge, "a WAV header claiming 37 hours", subtitle=sidecar_name(huge.name)))
    # Matroska has its index up front: what is left of a cut .mkv still plays, and has speech.
    half = _truncated(longer_movie, folder / "Half A Film.mkv")
    add(Expected(half, "an .mkv cut in half", subtitle=sidecar_name(half.name)))

    # --- bad files: no subtitle, and a reason
    def bad(path: Path, why: str, ends: str, reason: str, make: Callable[[Path], object]) -> None:
        make(path)
        add(Expected(path, why, ends=ends, reason=reason))

    bad(folder / "empty.mkv", "zero bytes", "scan", "empty (0 bytes)", lambda p: p.write_bytes(b""))
    shopping = "Shopping list: eggs, milk, bread.\n" * 50
    bad(
        folder / "notes.mkv",
        "a text file named .mkv",
        "scan",
        "ffprobe cannot read it",
        lambda p: p.write_text(shopping),
    )
    no_audio = make_video(scratch / "silent.mkv", [], duration=2.0)
    bad(folder / "silent film.mkv", "a video without audio", "scan", "no audio stream", lambda p: no_audio.rename(p))
    whole_mp4 = make_video(scratch / "whole.mp4", [(speech_wav, "eng", True)])
    bad(
        folder / "cut short.mp4",
        "an .mp4 cut in half (its index is at the end)",
        "scan",
        "ffprobe cannot read it",
        lambda p: _truncated(whole_mp4, p),
    )
    bad(folder / "named pipe.mkv", "a FIFO named like a video", "walk", "not a regular file", os.mkfifo)
    bad(
        folder / "dangling.mkv",
        "a symlink to nothing",
        "walk",
        "broken symlink",
        lambda p: p.symlink_to(folder / "nowhere.mkv"),
    )
    bad(folder / "a folder.mkv", "a folder named like a video", "none", "", lambda p: p.mkdir())
    bad(
        folder / "new\nline.mkv",
        "a newline in the name",
        "walk",
        "control character",
        lambda p: shutil.copyfile(speech_movie, p),
    )
    raw = os.fsencode(folder) + b"/latin1 caf\xe9.mkv"
    shutil.copyfile(speech_movie, raw)
    add(Expected(Path(os.fsdecode(raw)), "a name that is not UTF-8", ends="walk", reason="not valid UTF-8"))
    bad(
        folder / _long_name("y", ".mkv", NAME_MAX),
        "a name so long that no sidecar name fits",
        "failed",
        "shorten the media file name",
        lambda p: shutil.copyfile(speech_movie, p),
    )
    shutil.rmtree(scratch)
    return corpus
