"""PATH_MAPPINGS: parsing `from:to` entries and mapping paths sent by Bazarr and media servers."""

from __future__ import annotations

import pytest

from transcriptarr.policy.paths import PathMapper, PathMappingError, parse_mapping
from transcriptarr.settings import ConfigError, load_settings


@pytest.mark.parametrize(
    "entry",
    [
        "",
        "no-colon-at-all",
        ":/media",  # nothing before ':'
        "/data:media",  # the target is not absolute
        "/data:",
        "D:/media",  # a drive letter alone is no mapping
        "C:\\Media",
    ],
)
def test_entries_that_are_not_mappings_are_refused_with_an_example(entry: str) -> None:
    with pytest.raises(PathMappingError, match=r"/data/tv:/media/tv"):
        parse_mapping(entry)


def test_a_bad_entry_stops_start_up_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^PATH_MAPPINGS: .*'/tv:tv'"):
        load_settings(path_mappings="/movies:/media/movies|/tv:tv")


def test_settings_split_entries_on_bars() -> None:
    settings = load_settings(path_mappings=" /tv:/media/tv | D:\\Media:/media ")
    assert settings.path_mappings == ["/tv:/media/tv", "D:\\Media:/media"]
    assert PathMapper.parse(settings.path_mappings).map("D:\\Media\\a.mkv") == "/media/a.mkv"


def test_unmapped_paths_pass_unchanged() -> None:
    mapper = PathMapper.parse(["/data/tv:/media/tv"])
    assert mapper.map("/other/Show/S01E01.mkv") == "/other/Show/S01E01.mkv"
    assert mapper.map("relative/file.mkv") == "relative/file.mkv"
    assert mapper.map("D:\\Media\\a.mkv") == "D:\\Media\\a.mkv"
    assert not PathMapper.parse([]) and PathMapper.parse([]).map("/data/tv/a.mkv") == "/data/tv/a.mkv"


def test_the_longest_matching_prefix_wins_whatever_the_order() -> None:
    entries = ["/data:/srv", "/data/tv:/media/tv", "/data/tv2:/media/second"]
    for order in (entries, entries[::-1]):
        mapper = PathMapper.parse(order)
        assert mapper.map("/data/tv/Show/S01E01.mkv") == "/media/tv/Show/S01E01.mkv"
        assert mapper.map("/data/tv2/Show/S01E01.mkv") == "/media/second/Show/S01E01.mkv"
        assert mapper.map("/data/movies/Film.mkv") == "/srv/movies/Film.mkv"


def test_a_prefix_matches_whole_folder_names_only() -> None:
    mapper = PathMapper.parse(["/data/tv:/media/tv"])
    assert mapper.map("/data/tv2/Show/S01E01.mkv") == "/data/tv2/Show/S01E01.mkv"
    assert mapper.map("/data/tvshows/a.mkv") == "/data/tvshows/a.mkv"
    assert mapper.map("/data/tv") == "/media/tv"


@pytest.mark.parametrize(
    "entry",
    ["/data/tv:/media/tv", "/data/tv/:/media/tv/", "/data/tv//:/media/tv"],
    ids=["plain", "trailing-slashes", "double-slash"],
)
def test_trailing_slashes_on_either_side_do_not_matter(entry: str) -> None:
    mapper = PathMapper.parse([entry])
    assert mapper.map("/data/tv/Show/S01E01.mkv") == "/media/tv/Show/S01E01.mkv"
    assert mapper.map("/data/tv/") == "/media/tv"
    assert mapper.map("/data/tv//Show//S01E01.mkv") == "/media/tv/Show/S01E01.mkv"


def test_windows_paths_from_a_plex_server() -> None:
    mapper = PathMapper.parse(["D:\\Media\\TV:/media/tv"])
    assert mapper.map("D:\\Media\\TV\\Show\\S01E01.mkv") == "/media/tv/Show/S01E01.mkv"
    # Windows paths ignore case: the drive letter and the folders may come in any case.
    assert mapper.map("d:\\media\\tv\\Show\\S01E01.mkv") == "/media/tv/Show/S01E01.mkv"
    assert mapper.map("D:/Media/TV/Show/S01E01.mkv") == "/media/tv/Show/S01E01.mkv"
    # The names below the prefix keep their case: they are this machine's file names now.
    assert mapper.map("D:\\MEDIA\\TV\\Show Name\\Season 01\\E01.mkv") == "/media/tv/Show Name/Season 01/E01.mkv"
    assert mapper.map("D:\\Media\\TV2\\Show\\S01E01.mkv") == "D:\\Media\\TV2\\Show\\S01E01.mkv"
    assert mapper.map("E:\\Media\\TV\\Show\\S01E01.mkv") == "E:\\Media\\TV\\Show\\S01E01.mkv"


def test_a_windows_drive_root_and_a_trailing_backslash() -> None:
    assert PathMapper.parse(["D:\\:/media"]).map("d:\\Movies\\Film.mkv") == "/media/Movies/Film.mkv"
    assert PathMapper.parse(["D:\\Media\\:/media"]).map("D:\\Media\\Film.mkv") == "/media/Film.mkv"


def test_unc_paths_of_a_nas_share() -> None:
    mapper = PathMapper.parse(["\\\\nas\\share:/mnt/nas", "\\\\nas\\share\\tv:/media/tv"])
    assert mapper.map("\\\\nas\\share\\Films\\Film.mkv") == "/mnt/nas/Films/Film.mkv"
    assert mapper.map("\\\\NAS\\Share\\Films\\Film.mkv") == "/mnt/nas/Films/Film.mkv"
    assert mapper.map("\\\\nas\\share\\tv\\Show\\S01E01.mkv") == "/media/tv/Show/S01E01.mkv"
    assert mapper.map("\\\\other\\share\\Films\\Film.mkv") == "\\\\other\\share\\Films\\Film.mkv"


def test_posix_mappings_are_case_sensitive() -> None:
    mapper = PathMapper.parse(["/data/TV:/media/tv"])
    assert mapper.map("/data/TV/a.mkv") == "/media/tv/a.mkv"
    assert mapper.map("/data/tv/a.mkv") == "/data/tv/a.mkv"


def test_dot_dot_is_mapped_as_text_and_left_to_the_library_check() -> None:
    # Mapping never resolves a path; the callers check the result lies inside LIBRARY_PATHS.
    mapper = PathMapper.parse(["/data/tv:/media/tv"])
    assert mapper.map("/data/tv/../../etc/passwd") == "/media/tv/../../etc/passwd"
