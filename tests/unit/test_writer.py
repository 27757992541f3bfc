"""Sidecar naming and atomic, never-partial subtitle writing."""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from pathlib import Path

import pytest

from transcriptarr.policy.naming import SubtitleNaming, language_code, subtitle_path
from transcriptarr.subtitles import writer
from transcriptarr.subtitles.writer import (
    TEMP_MARKER,
    SubtitleWriteError,
    may_write,
    remove_stale_temp_files,
    write_atomic,
)

# --------------------------------------------------------------------------- naming


@pytest.mark.parametrize(
    ("language", "alpha2", "alpha3"),
    [
        ("en", "en", "eng"),
        ("eng", "en", "eng"),
        ("EN", "en", "eng"),
        ("fr", "fr", "fre"),  # ISO 639-2/B, as Plex/Emby/Bazarr read it
        ("fra", "fr", "fre"),
        ("fre", "fr", "fre"),
        ("de", "de", "ger"),
        ("zh", "zh", "chi"),
        ("jw", "jv", "jav"),  # Whisper's code for Javanese
        ("haw", "haw", "haw"),  # no 2-letter code
        ("yue", "yue", "yue"),  # no 639-2/B code
        ("pt-BR", "pt-BR", "pt-BR"),  # unknown to babelfish as a plain code: kept
        ("xx", "xx", "xx"),
    ],
)
def test_language_codes(language: str, alpha2: str, alpha3: str) -> None:
    assert language_code(language, "alpha2") == alpha2
    assert language_code(language, "alpha3") == alpha3


def test_sidecar_path() -> None:
    media = Path("/media/Movies/Heat (1995)/Heat.1995.1080p.mkv")
    assert subtitle_path(media, "en", SubtitleNaming()) == media.with_name("Heat.1995.1080p.en.srt")
    assert subtitle_path(media, "en", SubtitleNaming(language_form="alpha3")) == media.with_name(
        "Heat.1995.1080p.eng.srt"
    )
    assert subtitle_path(media, "eng", SubtitleNaming(fmt="VTT")) == media.with_name("Heat.1995.1080p.en.vtt")
    assert subtitle_path(media, "en", SubtitleNaming(fmt=".ass", marker="transcriptarr")) == media.with_name(
        "Heat.1995.1080p.en.transcriptarr.ass"
    )


@pytest.mark.parametrize(
    ("language", "fmt", "marker"),
    [("", "srt", None), ("../en", "srt", None), ("en", "s/rt", None), ("en", "srt", ".."), ("en", "srt", "a\\b")],
)
def test_sidecar_path_refuses_path_like_parts(language: str, fmt: str, marker: str | None) -> None:
    with pytest.raises(ValueError, match="invalid subtitle file name part"):
        subtitle_path(Path("/m/movie.mkv"), language, SubtitleNaming(fmt=fmt, marker=marker))


# --------------------------------------------------------------------------- may_write


def test_may_write(tmp_path: Path) -> None:
    target = tmp_path / "movie.en.srt"
    assert may_write(target, ours=False, overwrite_foreign=False)  # nothing there yet
    target.write_text("someone else's")
    assert not may_write(target, ours=False, overwrite_foreign=False)
    assert may_write(target, ours=False, overwrite_foreign=True)
    assert may_write(target, ours=True, overwrite_foreign=False)


def test_may_write_never_replaces_a_folder_and_respects_dangling_links(tmp_path: Path) -> None:
    folder = tmp_path / "movie.en.srt"
    folder.mkdir()
    assert not may_write(folder, ours=True, overwrite_foreign=True)
    link = tmp_path / "link.en.srt"
    link.symlink_to(tmp_path / "missing")
    assert not may_write(link, ours=False, overwrite_foreign=False)


# --------------------------------------------------------------------------- write_atomic


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMP_MARKER in p.name)


def test_write_atomic_writes_utf8(tmp_path: Path) -> None:
    target = tmp_path / "movie.en.srt"
    write_atomic(target, "1\n00:00:00,000 --> 00:00:01,000\n今日は\n")
    assert target.read_bytes() == "1\n00:00:00,000 --> 00:00:01,000\n今日は\n".encode()
    assert leftovers(tmp_path) == []


def test_write_atomic_replaces_and_keeps_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "movie.en.srt"
    target.write_text("old")
    target.chmod(0o640)
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_new_files_are_readable_by_others(tmp_path: Path) -> None:
    # mkstemp creates 0o600; a media server running as another user could not read that.
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "movie.en.srt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "movie.en.srt").stat().st_mode) == 0o644


def test_explicit_mode_and_owner(tmp_path: Path) -> None:
    target = tmp_path / "movie.en.srt"
    write_atomic(target, "x", mode=0o664, uid=os.getuid(), gid=os.getgid())
    info = target.stat()
    assert stat.S_IMODE(info.st_mode) == 0o664
    assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid())


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may give files away")
def test_chown_to_another_user_as_root(tmp_path: Path) -> None:
    target = tmp_path / "movie.en.srt"
    write_atomic(target, "x", uid=12345, gid=23456)
    assert (target.stat().st_uid, target.stat().st_gid) == (12345, 23456)


def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    target = tmp_path / "not-a-folder" / "movie.en.srt"
    with pytest.raises(SubtitleWriteError) as caught:
        write_atomic(target, "x")
    assert caught.value.path == target
    assert str(target) in str(caught.value)
    assert "does not exist or is not a folder" in caught.value.reason
    assert leftovers(tmp_path) == []


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SubtitleWriteError, match="was the media moved or deleted"):
        write_atomic(tmp_path / "gone" / "movie.en.srt", "x")


def test_failed_replace_leaves_no_temp_file_and_the_old_subtitle_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "movie.en.srt"
    target.write_text("old subtitle")

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(SubtitleWriteError) as caught:
        write_atomic(target, "new subtitle")
    message = str(caught.value)
    assert str(target) in message
    assert f"not writable by uid {os.geteuid()}" in message
    assert "PUID/PGID" in message
    assert target.read_text() == "old subtitle"
    assert leftovers(tmp_path) == []


def test_disk_full_while_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(SubtitleWriteError, match="no space left"):
        write_atomic(tmp_path / "movie.en.srt", "x")
    assert list(tmp_path.iterdir()) == []


def test_chown_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: object, uid: int, gid: int) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "chown", refuse)
    with pytest.raises(SubtitleWriteError, match="only root may change owners") as caught:
        write_atomic(tmp_path / "movie.en.srt", "x", uid=1000, gid=1000)
    assert "PUID/PGID" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "movie.en.srt").mkdir()
    with pytest.raises(SubtitleWriteError, match="folder with that name"):
        write_atomic(tmp_path / "movie.en.srt", "x")
    assert leftovers(tmp_path) == []


def test_cancellation_cleans_up_and_is_not_wrapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cancelled(fd: int) -> None:
        raise asyncio.CancelledError

    monkeypatch.setattr(os, "fsync", cancelled)
    with pytest.raises(asyncio.CancelledError):
        write_atomic(tmp_path / "movie.en.srt", "x")
    assert list(tmp_path.iterdir()) == []


def test_directory_fsync_failure_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync
    calls: list[int] = []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) > 1:  # the directory, after the file is in place (SMB and FUSE refuse this)
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_atomic(tmp_path / "movie.en.srt", "x")
    assert len(calls) == 2
    assert (tmp_path / "movie.en.srt").read_text() == "x"


# --------------------------------------------------------------------------- stale temp files


def test_remove_stale_temp_files(tmp_path: Path) -> None:
    stale = tmp_path / f".movie.en.srt{TEMP_MARKER}k2j4_x9a"
    stale.write_text("half a subtitle")
    keep = [
        tmp_path / "movie.en.srt",
        tmp_path / ".hidden",
        tmp_path / f"movie.en.srt{TEMP_MARKER}abc",  # not hidden: not a name we create
        tmp_path / f".movie.en.srt{TEMP_MARKER}",  # no random part
        tmp_path / f".movie.en.srt{TEMP_MARKER}abc.bak",
    ]
    for path in keep:
        path.write_text("keep me")
    folder = tmp_path / f".movie.en.srt{TEMP_MARKER}dir12345"
    folder.mkdir()
    link = tmp_path / f".movie.en.srt{TEMP_MARKER}link1234"
    link.symlink_to(tmp_path / "movie.en.srt")

    assert remove_stale_temp_files(tmp_path) == [stale]
    assert not stale.exists()
    assert all(path.exists() for path in keep)
    assert folder.is_dir() and link.is_symlink()


def test_stale_cleanup_matches_what_write_atomic_creates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        seen.extend(leftovers(tmp_path))  # the temporary file exists while it is being written
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    write_atomic(tmp_path / "Some Movie (2020).en.srt", "x")
    assert seen and seen[0].startswith(".Some Movie (2020).en.srt" + TEMP_MARKER)
    crashed = tmp_path / seen[0]
    crashed.write_text("left behind by a crash")
    assert remove_stale_temp_files(tmp_path) == [crashed]
    assert (tmp_path / "Some Movie (2020).en.srt").read_text() == "x"


def test_stale_cleanup_spares_recent_files_when_asked(tmp_path: Path) -> None:
    fresh = tmp_path / f".a.srt{TEMP_MARKER}fresh123"
    old = tmp_path / f".b.srt{TEMP_MARKER}old45678"
    fresh.write_text("")
    old.write_text("")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    assert remove_stale_temp_files(tmp_path, min_age=3600) == [old]
    assert fresh.exists()


def test_stale_cleanup_of_a_missing_folder(tmp_path: Path) -> None:
    assert remove_stale_temp_files(tmp_path / "missing") == []


def test_very_long_names_still_get_a_temp_file(tmp_path: Path) -> None:
    target = tmp_path / ("x" * 240 + ".en.srt")
    write_atomic(target, "x")
    assert target.read_text() == "x"


def test_umask_is_read_without_changing_it() -> None:
    old = os.umask(0o027)
    try:
        assert writer._umask() == 0o027
    finally:
        os.umask(old)
