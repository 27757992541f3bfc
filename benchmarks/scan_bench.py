"""Library scan cost: a first scan, then rescans of the unchanged library against a bare walk.

    python benchmarks/scan_bench.py [--files N (20000)] [--copies] [--dir DIR] [--rounds R (5)]

Builds a synthetic library of N files in nested folders, laid out like a Plex/Jellyfin
library: movie folders (film, .nfo, poster, fanart, sometimes subtitles) and TV
shows (seasons of episodes with .nfo, thumbnails and sometimes subtitles). About a
quarter of the files are media: hard links (or with --copies, copies) of a few tiny
ffmpeg-made videos with tagged audio tracks, so ffprobe reads every one for real.

Then, on a SQLite database in the same temporary folder:
1. a first scan (every media file probed, decided and queued where needed);
2. R rounds of: a bare `os.walk` + `os.stat` of every file of the tree, and a rescan
   of the unchanged library by a new `Library` (nothing kept in memory), in turn.

rescan_vs_walk is the median rescan time over the median walk time; a rescan must
not run ffprobe at all. The page cache is warm for both (the first scan read it all).

The last line is machine-readable:
    RESULT files=<n> rescan_vs_walk=<ratio> rescan_probes=<count> first_scan_s=<s>
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.media_factory import make_silence, make_video, write_srt  # noqa: E402
from transcriptarr.db.database import Database  # noqa: E402
from transcriptarr.library import Library, LibraryConfig, RulesConfig  # noqa: E402
from transcriptarr.logs import configure_logging  # noqa: E402
from transcriptarr.queue.jobqueue import JobQueue  # noqa: E402
from transcriptarr.settings import to_async_url  # noqa: E402


@dataclass
class Tree:
    root: Path
    files: int = 0
    media: int = 0
    folders: int = 0


def make_sources(folder: Path) -> list[Path]:
    """A few tiny real videos that the rules tell apart."""
    audio = make_silence(folder / "silence.wav", 1.0)
    english = write_srt(folder / "en.srt", [(0.1, 0.9, "Hello")])
    return [
        make_video(folder / "french.mkv", [(audio, "fre", True)]),
        make_video(folder / "english.mkv", [(audio, "eng", True)]),
        make_video(folder / "untagged.mp4", [(audio, None, True)]),
        make_video(folder / "subbed.mkv", [(audio, "ger", True)], subtitle_tracks=[(english, "eng", False)]),
    ]


class Builder:
    def __init__(self, root: Path, sources: list[Path], target: int, copy: bool) -> None:
        self.tree = Tree(root)
        self.sources = sources
        self.target = target
        self.link: Callable[[Path, Path], object] = shutil.copyfile if copy else os.link

    def full(self) -> bool:
        return self.tree.files >= self.target

    def folder(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        self.tree.folders += 1
        return path

    def media(self, path: Path) -> None:
        if not self.full():
            self.link(self.sources[self.tree.media % len(self.sources)], path)
            self.tree.media += 1
            self.tree.files += 1

    def text(self, path: Path, content: str = "x") -> None:
        if not self.full():
            path.write_text(content)
            self.tree.files += 1

    def movie(self, number: int) -> None:
        title = f"Film {number:05d} ({1950 + number % 70})"
        folder = self.folder(self.tree.root / "Movies" / title)
        self.media(folder / f"{title}.mkv")
        self.text(folder / f"{title}.nfo", "<movie/>")
        self.text(folder / "poster.jpg")
        self.text(folder / "fanart.jpg")
        if number % 2:
            self.text(folder / f"{title}.en.srt", "1\n00:00:00,100 --> 00:00:00,900\nHello\n")
        if number % 5 == 0:
            self.text(folder / f"{title}.fr.forced.srt", "1\n")

    def show(self, number: int) -> None:
        show = f"Show {number:04d}"
        for season in range(1, 4):
            folder = self.folder(self.tree.root / "TV" / show / f"Season {season:02d}")
            self.text(folder / "season.nfo")
            for episode in range(1, 11):
                name = f"{show} - S{season:02d}E{episode:02d}"
                self.media(folder / f"{name}.mkv")
                self.text(folder / f"{name}.nfo")
                self.text(folder / f"{name}-thumb.jpg")
                if episode % 3 == 0:
                    self.text(folder / f"{name}.eng.srt", "1\n")

    def build(self) -> Tree:
        number = 0
        while not self.full():
            self.movie(number)
            if number % 4 == 0:
                self.show(number // 4)
            number += 1
        return self.tree


def bare_walk(root: Path) -> int:
    count = 0
    for folder, _, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(folder, name))  # noqa: PTH116, PTH118 - the baseline is os.walk + os.stat
            count += 1
    return count


async def run(args: argparse.Namespace) -> None:
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="scan-bench-"))
    library_root = base / "library"
    try:
        started = time.monotonic()
        sources = make_sources(Path(tempfile.mkdtemp(prefix="sources-", dir=base)))
        tree = Builder(library_root, sources, args.files, args.copies).build()
        print(
            f"library: {tree.files} files ({tree.media} media, {'copies' if args.copies else 'hard links'}) "
            f"in {tree.folders} folders, built in {time.monotonic() - started:.1f} s"
        )
        db = Database(to_async_url(f"sqlite:///{base / 'bench.db'}"))
        await db.upgrade()
        config = LibraryConfig(
            paths=(library_root,),
            rules=RulesConfig(target_languages=("original", "en"), min_duration_seconds=0),
            probe_concurrency=args.probes,
            # The files were all written a moment ago; with a stability window they would wait for it.
            stable_seconds=0,
        )
        try:
            await measure(db, config, library_root, args.rounds)
        finally:
            await db.close()
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


async def measure(db: Database, config: LibraryConfig, root: Path, rounds: int) -> None:
    queue = JobQueue(db)
    first = Library(db, queue, config)
    started = time.monotonic()
    report = await first.scan()
    first_scan = time.monotonic() - started
    print(
        f"first scan: {first_scan:.1f} s, {report.probes} ffprobe runs "
        f"({report.probes / first_scan:.0f}/s at {config.probe_concurrency} at once), "
        f"{len(report.queued)} jobs queued, {len(report.decided)} files decided"
    )

    walks, rescans, probes, files = [], [], 0, 0
    for _ in range(rounds):
        started = time.monotonic()
        files = bare_walk(root)
        walks.append(time.monotonic() - started)
        library = Library(db, queue, config)  # a new one: nothing cached in memory
        started = time.monotonic()
        again = await library.scan()
        rescans.append(time.monotonic() - started)
        probes += again.probes
        assert again.decided == [] and again.unchanged == report.media_files, "the library did not change"
    walk, rescan = statistics.median(walks), statistics.median(rescans)
    print(f"bare os.walk + stat of {files} files: median {walk * 1000:.0f} ms over {rounds} rounds")
    print(f"rescan of the unchanged library: median {rescan * 1000:.0f} ms, {probes} ffprobe runs")
    print(
        f"RESULT files={files} rescan_vs_walk={rescan / walk:.2f} rescan_probes={probes} first_scan_s={first_scan:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20_000, help="files in the synthetic library")
    parser.add_argument("--copies", action="store_true", help="copy the media files instead of hard-linking them")
    parser.add_argument("--rounds", type=int, default=5, help="walk/rescan rounds (the medians are compared)")
    parser.add_argument("--probes", type=int, default=4, help="ffprobe runs at once during the first scan")
    parser.add_argument("--dir", help="build here instead of a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the library and database afterwards")
    args = parser.parse_args()
    configure_logging("warning", "console")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
