"""Real, throwaway PostgreSQL and MariaDB servers for the test suite.

Each server lives entirely inside a caller-supplied directory (normally a pytest ``tmp_path``): data
directory, unix socket (unless the path would be too long for ``sun_path``), log files.  It listens on
127.0.0.1 only, on a port picked by binding port 0 and releasing it.  The settings trade durability for
speed (``fsync=off`` and friends), so never point this at data you care about.  A clean ``stop()``
never loses committed data; after ``kill()`` the last fraction of a second of commits may be gone
unless the server was started with ``crash_safe=True`` (commits are then written to the OS at commit
time, still without fsync, which survives a process crash but not a machine crash).

Public API::

    start_postgres(base_dir, *, timeout=30.0, crash_safe=False) -> RunningServer
    start_mariadb(base_dir, *, timeout=30.0, crash_safe=False) -> RunningServer
    ensure_installed(kind=None) -> str | None    # None when usable, else a human readable reason
    RunningServer.url / .admin_url / .name / .host / .port / .user / .password / .database / .log_path
    RunningServer.stop()    # clean fast shutdown; idempotent
    RunningServer.start()   # start again on the same data directory and port
    RunningServer.kill()    # crash-style stop (PostgreSQL: immediate mode; MariaDB: SIGKILL); idempotent
    RunningServer.running   # property

``url`` is a plain SQLAlchemy URL for an unprivileged user that owns ``database``
(``postgresql://...`` / ``mariadb+pymysql://...``); ``admin_url`` is a superuser URL for the same
database.  Servers still running when the interpreter exits are stopped by an ``atexit`` hook.

Running as root: PostgreSQL refuses to run as root, so ``initdb``/``pg_ctl``/``psql`` run as the
``postgres`` OS user via ``runuser``.  For that user to reach its data directory, ``base_dir`` and every
ancestor directory get the ``o+x`` (traverse only, no listing) bit added where it is missing; the
PostgreSQL subtree itself is ``chown``-ed to ``postgres``.  MariaDB is started with ``--user=root``.

Only the standard library is used.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol

__all__ = [
    "DEFAULT_TIMEOUT",
    "RunningServer",
    "ServerError",
    "ServerStartError",
    "ensure_installed",
    "start_mariadb",
    "start_postgres",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for a server to accept connections (per start) and to shut down."""

_SETUP_TIMEOUT = 120.0  # initdb / mariadb-install-db / bootstrap SQL
_POLL_INTERVAL = 0.05
_LOG_TAIL_LINES = 40
_SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_HOST = "127.0.0.1"
_PG_OS_USER = "postgres"
_PG_SUPERUSER = "postgres"
_MY_ADMIN_USER = "admin"
_APP_USER = "transcriptarr"
_APP_DB = "transcriptarr"
_PORT_ATTEMPTS = 3
_ADDR_IN_USE = "Address already in use"

# Environment variables that would silently redirect client tools (psql, pg_isready, mariadb, ...).
_ENV_PREFIXES_TO_DROP = ("PG", "MYSQL", "MARIADB")

Kind = Literal["postgresql", "mariadb"]


class ServerError(RuntimeError):
    """A throwaway database server could not be set up, started or stopped."""


class ServerStartError(ServerError):
    """A server failed to initialise or to become ready; the message carries the command and log tail."""


# --------------------------------------------------------------------------------------------------
# Public handle
# --------------------------------------------------------------------------------------------------


class _Backend(Protocol):
    def start(self, timeout: float) -> None: ...
    def stop(self, timeout: float) -> None: ...
    def kill(self, timeout: float) -> None: ...
    def is_running(self) -> bool: ...


@dataclasses.dataclass(eq=False)
class RunningServer:
    """A started server.  ``stop()``/``start()`` keep the data directory, port and credentials."""

    name: str
    url: str
    admin_url: str
    host: str
    port: int
    user: str
    password: str
    database: str
    base_dir: Path
    log_path: Path
    _backend: _Backend = dataclasses.field(repr=False)
    timeout: float = DEFAULT_TIMEOUT

    def start(self) -> None:
        """Start the (stopped) server again on the same data directory and port; no-op if running."""
        if self._backend.is_running():
            _LIVE[id(self)] = self
            return
        self._backend.start(self.timeout)
        _LIVE[id(self)] = self

    def stop(self) -> None:
        """Clean, fast shutdown (open connections are terminated).  Idempotent."""
        try:
            self._backend.stop(self.timeout)
        finally:
            if not self._backend.is_running():
                _LIVE.pop(id(self), None)

    def kill(self) -> None:
        """Crash-style stop: no clean shutdown, the next ``start()`` runs crash recovery.  Idempotent."""
        try:
            self._backend.kill(self.timeout)
        finally:
            if not self._backend.is_running():
                _LIVE.pop(id(self), None)

    @property
    def running(self) -> bool:
        return self._backend.is_running()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_LIVE: dict[int, RunningServer] = {}


@atexit.register
def _stop_all_at_exit() -> None:
    for server in list(_LIVE.values()):
        with contextlib.suppress(Exception):
            server.stop()


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES_TO_DROP)}
    env["LC_ALL"] = "C"
    env.pop("LANG", None)
    return env


def _run(
    cmd: Sequence[str],
    *,
    timeout: float,
    input_text: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # fixed argv of resolved absolute binaries
            list(cmd),
            input=input_text,
            stdin=subprocess.DEVNULL if input_text is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_clean_env(),
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = _decode(exc.stdout) + _decode(exc.stderr)
        return subprocess.CompletedProcess(list(cmd), 124, out, f"timed out after {timeout:.0f}s")


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _start_error(
    name: str,
    reason: str,
    cmd: Sequence[str],
    logs: Sequence[Path] = (),
    output: str = "",
) -> ServerStartError:
    parts = [f"{name}: {reason}", f"command: {shlex.join(cmd)}"]
    if output.strip():
        parts.append(f"--- command output ---\n{output.strip()}")
    for log in logs:
        if log.exists():
            parts.append(f"--- last {_LOG_TAIL_LINES} lines of {log} ---\n{_tail(log)}")
    return ServerStartError("\n".join(parts))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _is_root() -> bool:
    return os.geteuid() == 0


def _which(names: Sequence[str], extra_dirs: Sequence[str] = ()) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *extra_dirs])
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def _grant_traverse(path: Path) -> None:
    """Add o+x to ``path`` and its ancestors so a different OS user can reach what is below."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _socket_dir(preferred: Path, socket_name_len: int, prefix: str) -> Path:
    """``preferred`` unless a socket in it would overflow ``sun_path``; then a short temp dir."""
    if len(str(preferred)) + 1 + socket_name_len <= _SUN_PATH_MAX:
        preferred.mkdir(mode=0o700)
        return preferred
    short = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, short, True)
    return short


def _sql_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _poll_ready(
    name: str,
    *,
    deadline: float,
    probe: Callable[[], bool],
    died: Callable[[], str | None],
    cmd: Sequence[str],
    logs: Sequence[Path],
) -> None:
    """Call ``probe`` until it returns True; fail early if ``died`` reports a reason, or at deadline."""
    while True:
        reason = died()
        if reason is not None:
            raise _start_error(name, reason, cmd, logs)
        if probe():
            return
        if time.monotonic() >= deadline:
            raise _start_error(name, "not accepting connections before the deadline", cmd, logs)
        time.sleep(_POLL_INTERVAL)


# --------------------------------------------------------------------------------------------------
# Binary discovery
# --------------------------------------------------------------------------------------------------

_PG_TOOLS = ("initdb", "pg_ctl", "postgres", "psql", "pg_isready")


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.name)) or (0,)


def _find_pg_bindir() -> Path | None:
    """Explicit ``TRANSCRIPTARR_TEST_PG_BINDIR``, else the newest /usr/lib/postgresql/N/bin, else
    ``pg_config --bindir``, else wherever ``initdb`` is on PATH."""
    override = os.environ.get("TRANSCRIPTARR_TEST_PG_BINDIR")
    if override:
        return Path(override)
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        res = _run([pg_config, "--bindir"], timeout=10)
        if res.returncode == 0 and res.stdout.strip():
            candidates.append(Path(res.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for candidate in candidates:
        if all(os.access(candidate / tool, os.X_OK) for tool in _PG_TOOLS):
            return candidate
    return None


@dataclasses.dataclass(frozen=True)
class _MariaDBTools:
    server: str
    install_db: str
    client: str
    admin: str


_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin", "/usr/libexec")


def _find_mariadb_tools() -> _MariaDBTools | str:
    found = {
        "server": _which(["mariadbd", "mysqld"], _SBIN_DIRS),
        "install_db": _which(["mariadb-install-db", "mysql_install_db"], _SBIN_DIRS),
        "client": _which(["mariadb", "mysql"], _SBIN_DIRS),
        "admin": _which(["mariadb-admin", "mysqladmin"], _SBIN_DIRS),
    }
    missing = [name for name, path in found.items() if path is None]
    if missing:
        return (
            f"MariaDB tools not found: {', '.join(missing)} "
            "(need mariadbd, mariadb-install-db, mariadb, mariadb-admin; apt-get install mariadb-server)"
        )
    return _MariaDBTools(**{k: v for k, v in found.items() if v is not None})


def _postgres_problem() -> str | None:
    bindir = _find_pg_bindir()
    if bindir is None:
        return (
            f"PostgreSQL server binaries not found ({', '.join(_PG_TOOLS)}; looked in "
            "/usr/lib/postgresql/*/bin, `pg_config --bindir`, PATH; apt-get install postgresql "
            "or set TRANSCRIPTARR_TEST_PG_BINDIR)"
        )
    missing = [t for t in _PG_TOOLS if not os.access(bindir / t, os.X_OK)]
    if missing:
        return f"PostgreSQL binaries missing in {bindir}: {', '.join(missing)}"
    if _is_root():
        if shutil.which("runuser") is None and not Path("/usr/sbin/runuser").exists():
            return "running as root but `runuser` (util-linux) is missing; PostgreSQL refuses to run as root"
        try:
            pwd.getpwnam(_PG_OS_USER)
        except KeyError:
            return f"running as root but OS user {_PG_OS_USER!r} does not exist; PostgreSQL refuses root"
    return None


def ensure_installed(kind: Kind | None = None) -> str | None:
    """Return None if the server binaries for ``kind`` (default: both) are usable, else the reason."""
    problems: list[str] = []
    if kind in (None, "postgresql"):
        pg = _postgres_problem()
        if pg:
            problems.append(pg)
    if kind in (None, "mariadb"):
        my = _find_mariadb_tools()
        if isinstance(my, str):
            problems.append(my)
    return "; ".join(problems) or None


def _runuser_prefix() -> list[str]:
    if not _is_root():
        return []
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return [runuser, "-u", _PG_OS_USER, "--"]


# --------------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------------


class _Postgres:
    name = "postgresql"

    def __init__(self, bindir: Path, root: Path, crash_safe: bool) -> None:
        self.crash_safe = crash_safe
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.conf = self.data / "test_servers.conf"
        self.as_owner = _runuser_prefix()
        self.port = 0
        self.sock_dir = root  # replaced in prepare()

    def tool(self, name: str) -> str:
        return str(self.bindir / name)

    def prepare(self) -> None:
        self.root.mkdir(mode=0o700)
        owner: tuple[int, int] | None = None
        if _is_root():
            pw = pwd.getpwnam(_PG_OS_USER)
            owner = (pw.pw_uid, pw.pw_gid)
            _grant_traverse(self.root.parent)
            os.chown(self.root, *owner)
        self.sock_dir = _socket_dir(self.root / "sock", len(".s.PGSQL.65535.lock"), "tpg-")
        if owner:
            os.chown(self.sock_dir, *owner)
            _grant_traverse(self.sock_dir.parent)

        cmd = [
            *self.as_owner,
            self.tool("initdb"),
            "-D", str(self.data),
            "-U", _PG_SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ]  # fmt: skip
        res = _run(cmd, timeout=_SETUP_TIMEOUT, cwd=self.root)
        if res.returncode != 0:
            raise _start_error(self.name, "initdb failed", cmd, output=res.stdout + res.stderr)
        with (self.data / "postgresql.conf").open("a") as fh:
            fh.write(f"\n# added by tests/servers.py\ninclude '{self.conf}'\n")

    def configure(self, port: int) -> None:
        self.port = port
        settings = {
            "listen_addresses": f"'{_HOST}'",
            "port": str(port),
            "unix_socket_directories": f"'{self.sock_dir}'",
            "max_connections": "200",
            "fsync": "off",
            # off: a kill() may lose the last ~0.6 s of commits; on (with fsync=off) costs one write().
            "synchronous_commit": "on" if self.crash_safe else "off",
            "full_page_writes": "off",
            "password_encryption": "'scram-sha-256'",
            "timezone": "'UTC'",
        }
        self.conf.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        self.conf.chmod(0o600)
        if _is_root():
            pw = pwd.getpwnam(_PG_OS_USER)
            os.chown(self.conf, pw.pw_uid, pw.pw_gid)

    def start(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        cmd = [
            *self.as_owner, self.tool("pg_ctl"), "start",
            "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(max(1, int(timeout))),
        ]  # fmt: skip
        res = _run(cmd, timeout=timeout + 10, cwd=self.root)
        if res.returncode != 0:
            self._stop_quietly()
            raise _start_error(
                self.name, f"pg_ctl start exited {res.returncode}", cmd, [self.log], res.stdout + res.stderr
            )
        isready = [self.tool("pg_isready"), "-q", "-h", _HOST, "-p", str(self.port), "-t", "1"]

        def probe() -> bool:
            return _run(isready, timeout=5).returncode == 0

        def died() -> str | None:
            return None if self.is_running() else "postmaster exited during startup"

        try:
            _poll_ready(self.name, deadline=deadline, probe=probe, died=died, cmd=cmd, logs=[self.log])
        except ServerStartError:
            self._stop_quietly()
            raise

    def bootstrap(self, app_password: str, admin_password: str) -> None:
        sql = (
            f"ALTER ROLE {_PG_SUPERUSER} PASSWORD {_sql_literal(admin_password)};\n"
            f'CREATE ROLE "{_APP_USER}" LOGIN CREATEDB PASSWORD {_sql_literal(app_password)};\n'
            f'CREATE DATABASE "{_APP_DB}" OWNER "{_APP_USER}";\n'
        )
        cmd = [
            *self.as_owner, self.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-h", str(self.sock_dir), "-p", str(self.port), "-U", _PG_SUPERUSER, "-d", "postgres",
        ]  # fmt: skip
        res = _run(cmd, timeout=_SETUP_TIMEOUT, input_text=sql, cwd=self.root)
        if res.returncode != 0:
            raise _start_error(self.name, "creating user/database failed", cmd, output=res.stdout + res.stderr)

    def _pg_ctl_stop(self, mode: str, timeout: float) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        cmd = [
            *self.as_owner, self.tool("pg_ctl"), "stop",
            "-D", str(self.data), "-m", mode, "-w", "-t", str(max(1, int(timeout))),
        ]  # fmt: skip
        res = _run(cmd, timeout=timeout + 10, cwd=self.root)
        if res.returncode != 0 and self.is_running():
            raise ServerError(
                f"{self.name}: {shlex.join(cmd)} exited {res.returncode}: {res.stdout}{res.stderr}\n"
                f"--- {self.log} ---\n{_tail(self.log)}"
            )

    def stop(self, timeout: float) -> None:
        self._pg_ctl_stop("fast", timeout)

    def kill(self, timeout: float) -> None:
        self._pg_ctl_stop("immediate", timeout)

    def _stop_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self._pg_ctl_stop("immediate", 10)

    def is_running(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        res = _run([*self.as_owner, self.tool("pg_ctl"), "status", "-D", str(self.data)], timeout=10, cwd=self.root)
        return res.returncode == 0


def start_postgres(base_dir: Path, *, timeout: float = DEFAULT_TIMEOUT, crash_safe: bool = False) -> RunningServer:
    """initdb + start a PostgreSQL server under ``base_dir/postgresql`` and create an app user/db."""
    problem = _postgres_problem()
    if problem:
        raise ServerStartError(problem)
    bindir = _find_pg_bindir()
    assert bindir is not None
    backend = _Postgres(bindir, Path(base_dir).resolve() / "postgresql", crash_safe)
    backend.prepare()
    for attempt in range(_PORT_ATTEMPTS):
        backend.configure(_free_port())
        try:
            backend.start(timeout)
            break
        except ServerStartError as exc:
            if _ADDR_IN_USE not in str(exc) or attempt == _PORT_ATTEMPTS - 1:
                raise
    app_password, admin_password = secrets.token_hex(12), secrets.token_hex(12)
    try:
        backend.bootstrap(app_password, admin_password)
    except BaseException:
        backend._stop_quietly()
        raise
    port = backend.port
    server = RunningServer(
        name=backend.name,
        url=f"postgresql://{_APP_USER}:{app_password}@{_HOST}:{port}/{_APP_DB}",
        admin_url=f"postgresql://{_PG_SUPERUSER}:{admin_password}@{_HOST}:{port}/{_APP_DB}",
        host=_HOST,
        port=port,
        user=_APP_USER,
        password=app_password,
        database=_APP_DB,
        base_dir=backend.root,
        log_path=backend.log,
        timeout=timeout,
        _backend=backend,
    )
    _LIVE[id(server)] = server
    return server


# --------------------------------------------------------------------------------------------------
# MariaDB
# --------------------------------------------------------------------------------------------------


class _MariaDB:
    name = "mariadb"

    # Small and fast: tiny buffer pool / redo log, no binlog, no per-commit flush, no doublewrite.
    _SERVER_OPTIONS = (
        "--skip-log-bin",
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=64M",
        "--innodb-log-file-size=16M",
        "--innodb-log-buffer-size=8M",
        "--innodb-doublewrite=0",
        "--innodb-use-native-aio=0",
        "--performance-schema=OFF",
        "--max-connections=300",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--default-time-zone=+00:00",
    )

    def __init__(self, tools: _MariaDBTools, root: Path, crash_safe: bool) -> None:
        # 0: redo log written ~once a second, so a kill() may lose the last second of commits;
        # 2: written (not fsynced) at every commit, which survives a process crash.
        self.flush_at_commit = 2 if crash_safe else 0
        self.tools = tools
        self.root = root
        self.data = root / "data"
        self.tmp = root / "tmp"
        self.log = root / "error.log"
        self.stdout_log = root / "stdout.log"
        self.pid_file = root / "mariadbd.pid"
        self.port = 0
        self.sock = root / "mariadbd.sock"  # replaced in prepare()
        self.proc: subprocess.Popen[bytes] | None = None
        self.user_opt = ["--user=root"] if _is_root() else []

    def prepare(self) -> None:
        self.root.mkdir(mode=0o700)
        self.tmp.mkdir(mode=0o700)
        self.sock = _socket_dir(self.root / "sock", len("mariadbd.sock.lock"), "tmy-") / "mariadbd.sock"
        cmd = [
            self.tools.install_db,
            "--no-defaults",
            *self.user_opt,
            f"--datadir={self.data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M",
        ]
        res = _run(cmd, timeout=_SETUP_TIMEOUT, cwd=self.root)
        if res.returncode != 0:
            raise _start_error(self.name, "mariadb-install-db failed", cmd, output=res.stdout + res.stderr)

    def server_cmd(self) -> list[str]:
        return [
            self.tools.server,
            "--no-defaults",
            *self.user_opt,
            f"--datadir={self.data}",
            f"--tmpdir={self.tmp}",
            f"--bind-address={_HOST}",
            f"--port={self.port}",
            f"--socket={self.sock}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.log}",
            *self._SERVER_OPTIONS,
            f"--innodb-flush-log-at-trx-commit={self.flush_at_commit}",
        ]

    def _client_base(self, tool: str) -> list[str]:
        return [tool, "--no-defaults", f"--socket={self.sock}", "--protocol=SOCKET", "-uroot"]

    def start(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        cmd = self.server_cmd()
        with self.stdout_log.open("ab") as out:
            self.proc = subprocess.Popen(  # fixed argv of resolved absolute binaries
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_clean_env(),
                cwd=self.root,
                start_new_session=True,  # a ^C aimed at pytest must not take the server down mid-test
            )
        ping = [
            self.tools.admin, "--no-defaults", "--protocol=TCP", f"-h{_HOST}", f"-P{self.port}",
            "-uroot", "--connect-timeout=1", "ping",
        ]  # fmt: skip
        proc = self.proc

        def probe() -> bool:
            # mariadb-admin ping exits 0 once the server answers (even "access denied" counts).
            return _run(ping, timeout=5).returncode == 0

        def died() -> str | None:
            code = proc.poll()
            return None if code is None else f"mariadbd exited with status {code} during startup"

        try:
            _poll_ready(self.name, deadline=deadline, probe=probe, died=died, cmd=cmd, logs=[self.log, self.stdout_log])
        except ServerStartError:
            self.kill(5)
            raise

    def bootstrap(self, app_password: str, admin_password: str) -> None:
        sql = (
            f"CREATE DATABASE `{_APP_DB}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
            f"CREATE USER '{_APP_USER}'@'%' IDENTIFIED BY {_sql_literal(app_password)};\n"
            f"GRANT ALL PRIVILEGES ON `{_APP_DB}%`.* TO '{_APP_USER}'@'%';\n"
            f"CREATE USER '{_MY_ADMIN_USER}'@'%' IDENTIFIED BY {_sql_literal(admin_password)};\n"
            f"GRANT ALL PRIVILEGES ON *.* TO '{_MY_ADMIN_USER}'@'%' WITH GRANT OPTION;\n"
        )
        cmd = self._client_base(self.tools.client)
        res = _run(cmd, timeout=_SETUP_TIMEOUT, input_text=sql, cwd=self.root)
        if res.returncode != 0:
            raise _start_error(self.name, "creating user/database failed", cmd, output=res.stdout + res.stderr)

    def _terminate(self, sig: signal.Signals, timeout: float) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            if sig != signal.SIGKILL:
                raise ServerError(
                    f"{self.name}: did not shut down within {timeout:.0f}s after {sig.name}; killed it\n"
                    f"--- {self.log} ---\n{_tail(self.log)}"
                ) from None

    def stop(self, timeout: float) -> None:
        self._terminate(signal.SIGTERM, timeout)  # SIGTERM == normal shutdown for mariadbd

    def kill(self, timeout: float) -> None:
        self._terminate(signal.SIGKILL, timeout)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def start_mariadb(base_dir: Path, *, timeout: float = DEFAULT_TIMEOUT, crash_safe: bool = False) -> RunningServer:
    """mariadb-install-db + start a MariaDB server under ``base_dir/mariadb``; create an app user/db."""
    tools = _find_mariadb_tools()
    if isinstance(tools, str):
        raise ServerStartError(tools)
    backend = _MariaDB(tools, Path(base_dir).resolve() / "mariadb", crash_safe)
    backend.prepare()
    for attempt in range(_PORT_ATTEMPTS):
        backend.port = _free_port()
        try:
            backend.start(timeout)
            break
        except ServerStartError as exc:
            if _ADDR_IN_USE not in str(exc) or attempt == _PORT_ATTEMPTS - 1:
                raise
    app_password, admin_password = secrets.token_hex(12), secrets.token_hex(12)
    try:
        backend.bootstrap(app_password, admin_password)
    except BaseException:
        backend.kill(5)
        raise
    port = backend.port
    server = RunningServer(
        name=backend.name,
        url=f"mariadb+pymysql://{_APP_USER}:{app_password}@{_HOST}:{port}/{_APP_DB}",
        admin_url=f"mariadb+pymysql://{_MY_ADMIN_USER}:{admin_password}@{_HOST}:{port}/{_APP_DB}",
        host=_HOST,
        port=port,
        user=_APP_USER,
        password=app_password,
        database=_APP_DB,
        base_dir=backend.root,
        log_path=backend.log,
        timeout=timeout,
        _backend=backend,
    )
    _LIVE[id(server)] = server
    return server
