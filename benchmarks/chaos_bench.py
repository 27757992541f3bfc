"""SIGKILL chaos against the real service: kill it N times at aimed moments, let it finish, count what broke.

    python benchmarks/chaos_bench.py --backend sqlite|postgresql|mariadb [--kills N (20)] [--seed S]
        [--url URL] [--workdir DIR] [--no-resume] [--kill-at F (0.65)]

The harness is tests/faults/chaos.py (see its docstring): a small library of real speech,
`python -m transcriptarr run` with the bundled tiny.en model, killed (SIGKILL, the whole
process group) during the start-up scan, right after a claim, during audio extraction,
transcription, the subtitle write and the storing of the result, and at random moments;
restarted each time; then run until the queue is empty and stopped cleanly.

SQLite runs on a file in the work folder. PostgreSQL and MariaDB run, without --url, on a
throwaway server started by tests/servers.py in a temporary directory, in a database made
for the run; --url must name an empty database. The work folder (media, data, one log per
start) is kept with --workdir, else removed.

Then (unless --no-resume) the work redone after a SIGKILL is measured (tests/faults/resume.py,
always on SQLite): a ~2-minute file transcribed unbroken, and again killed at --kill-at of its
progress and restarted, which continues from its checkpoint:
    RESUME duration=<s> killed_at=<%> resumed_from=<s> second_attempt_audio=<fraction of the audio
        the attempt after the restart transcribed> second_attempt_time=<its time / the unbroken run's>
        redone=<audio transcribed over both attempts / duration; 1.00: nothing done twice> wer=<words
        that differ from the unbroken run's>

The last line is machine-readable, and the exit status is 1 when anything was lost,
duplicated, left partial or stuck (or left over, or a start crashed by itself):
    RESULT kills=<n> jobs=<m> lost=0 duplicated=0 partial_files=0 stuck=0 leftovers=0 crashes=0 rewritten=<k>
        [redone=<r>]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from tests.faults.chaos import run_chaos  # noqa: E402
from tests.faults.resume import measure_resume  # noqa: E402
from tests.servers import RunningServer, start_mariadb, start_postgres  # noqa: E402

BENCH_DATABASE = "transcriptarr_chaos"
_ADMIN_DRIVERS = {"postgresql": "postgresql+psycopg2", "mariadb": "mariadb+pymysql"}


@contextlib.contextmanager
def database(backend: str, url: str | None, workdir: Path) -> Iterator[str]:
    """A user-style URL of an empty database for the run, on a throwaway server if needed."""
    if url is not None:
        yield url
        return
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'chaos.db'}"
        return
    started = time.perf_counter()
    server_dir = workdir / "server"
    server_dir.mkdir()
    server: RunningServer = start_postgres(server_dir) if backend == "postgresql" else start_mariadb(server_dir)
    try:
        print(f"started a throwaway {backend} server in {time.perf_counter() - started:.1f} s")
        admin_url = make_url(server.url).set(drivername=_ADMIN_DRIVERS[backend])
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {BENCH_DATABASE}"))
        admin.dispose()
        yield make_url(server.url).set(database=BENCH_DATABASE).render_as_string(hide_password=False)
    finally:
        server.stop()


@contextlib.contextmanager
def work_folder(path: str | None) -> Iterator[Path]:
    """The given folder (kept), or a temporary one (removed)."""
    if path is not None:
        kept = Path(path).resolve()
        kept.mkdir(parents=True, exist_ok=True)
        if any(kept.iterdir()):
            raise SystemExit(f"--workdir {kept} is not empty")
        yield kept
        return
    with tempfile.TemporaryDirectory(prefix="chaos-bench-") as temporary:
        yield Path(temporary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "mariadb"), required=True)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, help="for a run that aims its kills the same way again")
    parser.add_argument("--url", help="user-style URL of an empty database (default: a throwaway one)")
    parser.add_argument("--workdir", help="an empty folder to keep media, data and logs in (default: a temporary one)")
    parser.add_argument("--no-resume", action="store_true", help="skip measuring the work redone after a SIGKILL")
    parser.add_argument("--kill-at", type=float, default=0.65, help="progress (0..1) at which the resume run is killed")
    args = parser.parse_args()
    if not 0 < args.kill_at < 1:
        parser.error("--kill-at must be between 0 and 1, e.g. 0.65")
    if args.kills < 0:
        parser.error("--kills must be 0 or more")
    if args.url is not None and make_url(args.url).get_backend_name().replace("mysql", "mariadb") != args.backend:
        parser.error(f"--url is not a {args.backend} URL")
    with work_folder(args.workdir) as workdir, database(args.backend, args.url, workdir) as url:
        report = run_chaos(workdir / "chaos", url, kills=args.kills, seed=args.seed)
        print(report.describe())
        if not report.ok:
            print(f"PROBLEMS:\n{report.problems()}")
        redone = ""
        if not args.no_resume:
            resumed = measure_resume(workdir / "resume", kill_at=args.kill_at)
            print(resumed.describe())
            redone = f" redone={resumed.redone_ratio:.2f}"
    print(f"{report.result_line()}{redone} backend={args.backend} seconds={report.seconds:.0f}")
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
