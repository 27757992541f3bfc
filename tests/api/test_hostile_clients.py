"""Hostile clients cannot exhaust the HTTP server (issue 16, part 4), all over real sockets on loopback.

* headers trickled in are cut off at HTTP_HEADER_TIMEOUT_SECONDS; bodies, long waits and kept-alive idle
  time are not timed by it;
* HTTP_MAX_CONNECTIONS_PER_CLIENT refuses a client's extra connections with a one-line 503; at
  HTTP_MAX_CONNECTIONS the connection idle longest makes room, and only when all are busy is a newcomer
  refused;
* refusals, timeouts and accept() failures are logged once per burst, with a count;
* out of file descriptors, accepting pauses instead of spinning, and resumes;
* the service raises its open-files limit at start-up;
* slow: 1,000 slow-header connections against `transcriptarr run` under `ulimit -n 1024`: /health keeps
  answering, a queued job completes, the log stays small.

The attackers use other loopback addresses (127.0.0.2, ...) than the legitimate client (127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import structlog
from aiohttp import web

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from tests.api.test_fuzz_heavy import ServiceProcess
from tests.media_factory import speak
from tests.polling import eventually
from transcriptarr.api.bursts import Burst
from transcriptarr.api.connections import FD_RESERVE, ConnectionLimits, connections_allowed
from transcriptarr.api.listener import Listener

RELEASED = web.AppKey("released", asyncio.Event)


def limits(**overrides: Any) -> ConnectionLimits:
    values: dict[str, Any] = {
        "max_connections": 100,
        "per_client": 100,
        "header_timeout": 0.6,
        "keepalive_timeout": 30.0,
        "configured_max": 100,
    }
    values.update(overrides)
    return ConnectionLimits(**values)


@contextlib.asynccontextmanager
async def guarded(connection_limits: ConnectionLimits) -> AsyncIterator[tuple[int, Listener, web.Application]]:
    """A small aiohttp app behind the Listener on 127.0.0.1: GET / answers at once, GET /wait when the test
    sets app[RELEASED], POST /upload after reading the whole body."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def wait(request: web.Request) -> web.Response:
        await request.app[RELEASED].wait()
        return web.Response(text="waited")

    async def upload(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.read())))

    app = web.Application()
    app[RELEASED] = asyncio.Event()
    app.router.add_get("/", hello)
    app.router.add_get("/wait", wait)
    app.router.add_post("/upload", upload)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    listener = Listener(runner.server, connection_limits, access_log=None)
    try:
        [address] = await listener.start("127.0.0.1", 0)
        yield int(address[1]), listener, app
    finally:
        app[RELEASED].set()
        await listener.close()
        await runner.cleanup()


async def connect(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def answer(reader: asyncio.StreamReader, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), timeout)


async def get(port: int, path: str = "/", source: str = "127.0.0.1") -> bytes:
    reader, writer = await connect(port, source)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    try:
        return await answer(reader)
    finally:
        writer.close()


async def refused(port: int, source: str) -> bytes:
    """What a new connection from `source` is told before it sends anything (a refusal is sent at once).

    A client that sends its request first may instead see the connection reset, if its bytes arrive after
    the server closed: the 503 is best effort."""
    reader, writer = await connect(port, source)
    try:
        return await answer(reader)
    finally:
        writer.close()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server has closed the connection (EOF or reset), without waiting."""
    with contextlib.suppress(ConnectionError):
        if reader.at_eof():
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(1 << 16), 0.01)
        return reader.at_eof()
    return True


# --------------------------------------------------------------------------- header deadline


async def test_trickled_headers_are_cut_off_at_the_deadline_from_the_connection_start() -> None:
    async with guarded(limits(header_timeout=0.6)) as (port, _, _):
        reader, writer = await connect(port)
        started = time.monotonic()
        with structlog.testing.capture_logs() as logs:
            for byte in b"GET / HTTP/1.1\r\nHost: a-slow-client.example\r\n":  # never the final blank line
                if reader.at_eof():
                    break
                writer.write(bytes([byte]))
                await asyncio.sleep(0.05)  # the slow client's pace, not a synchronisation
            assert await answer(reader) == b""
        elapsed = time.monotonic() - started
        writer.close()
        assert 0.5 <= elapsed < 3.0, elapsed
        assert [entry["event"] for entry in logs] == ["http_header_timeout"]
        assert logs[0]["client"] == "127.0.0.1"


async def test_a_kept_alive_connections_next_request_gets_the_deadline_from_its_first_byte() -> None:
    async with guarded(limits(header_timeout=0.6, keepalive_timeout=30)) as (port, _, _):
        reader, writer = await connect(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        assert await asyncio.wait_for(reader.readexactly(2), 10) == b"ok"
        # Idle between requests longer than the header deadline: only keepalive_timeout applies.
        idle_until = time.monotonic() + 1.2
        while time.monotonic() < idle_until:
            assert not await closed_by_server(reader), "an idle kept-alive connection was cut by the header deadline"
            await asyncio.sleep(0.1)
        writer.write(b"GET / HT")  # then nothing more: the deadline runs from this first byte
        started = time.monotonic()
        assert await answer(reader) == b""
        assert 0.5 <= time.monotonic() - started < 3.0
        writer.close()


async def test_slow_bodies_and_long_waits_are_not_timed_by_the_header_deadline() -> None:
    async with guarded(limits(header_timeout=0.5)) as (port, _, app):
        # A body trickled over four times the header deadline, as a slow Bazarr upload would.
        reader, writer = await connect(port)
        body = b"x" * 40
        writer.write(f"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        for start in range(0, len(body), 2):
            writer.write(body[start : start + 2])
            await asyncio.sleep(0.1)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert await asyncio.wait_for(reader.readexactly(2), 10) == b"40"
        writer.close()

        # A request whose answer takes longer than the deadline (the Bazarr wait, api/waiting.py).
        waiting = asyncio.create_task(get(port, "/wait"))
        await asyncio.sleep(1.5)  # three header deadlines pass while the handler waits
        assert not waiting.done()
        app[RELEASED].set()
        assert (await waiting).endswith(b"waited")


# --------------------------------------------------------------------------- connection caps


async def test_a_clients_extra_connections_get_a_503_naming_the_setting() -> None:
    async with guarded(limits(per_client=3, header_timeout=30)) as (port, listener, _):
        held = [await connect(port, "127.0.0.2") for _ in range(3)]
        await eventually(lambda: listener.open_connections == 3, "three open connections")
        with structlog.testing.capture_logs() as logs:
            replies = [await refused(port, "127.0.0.2") for _ in range(5)]
        for reply in replies:
            assert reply.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), reply
            assert b"too many connections from 127.0.0.2 (3 open, HTTP_MAX_CONNECTIONS_PER_CLIENT=3)" in reply
        assert [entry["event"] for entry in logs] == ["http_connections_refused"]  # once for the burst
        assert logs[0]["limit"] == "per_client"
        # Another address is not affected.
        assert (await get(port, source="127.0.0.1")).endswith(b"ok")
        # A closed connection frees its place.
        held[0][1].close()
        await eventually(lambda: listener.open_connections == 2, "the closed connection released")
        assert (await get(port, source="127.0.0.2")).endswith(b"ok")
        for _, writer in held[1:]:
            writer.close()


async def test_when_full_the_longest_idle_connection_makes_room_and_busy_ones_are_kept() -> None:
    async with guarded(limits(max_connections=3, header_timeout=30)) as (port, listener, app):
        idle = [await connect(port, f"127.0.0.{n}") for n in (2, 3, 4)]
        await eventually(lambda: listener.open_connections == 3, "three open connections")
        # Full: a newcomer is served; the oldest idle connection was closed for it, the others stay.
        assert (await get(port, source="127.0.0.5")).endswith(b"ok")
        assert await closed_by_server(idle[0][0])
        assert not await closed_by_server(idle[1][0]) and not await closed_by_server(idle[2][0])
        for _, writer in idle:
            writer.close()
        await eventually(lambda: listener.open_connections == 0, "all connections released")

        # Three requests in progress: nothing can make room, the newcomer gets a 503.
        busy = [asyncio.create_task(get(port, "/wait", f"127.0.0.{n}")) for n in (2, 3, 4)]
        await eventually(lambda: listener.open_connections == 3, "three busy connections")
        reply = await refused(port, "127.0.0.1")
        assert reply.startswith(b"HTTP/1.1 503"), reply
        assert b"maximum of 3 connections open, all busy (HTTP_MAX_CONNECTIONS)" in reply
        app[RELEASED].set()
        assert all(answer.endswith(b"waited") for answer in await asyncio.gather(*busy))


def test_the_connection_limit_leaves_file_descriptors_for_the_workers(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path, http_max_connections=1024, http_max_connections_per_client=64)
    under_1024 = ConnectionLimits.from_settings(settings, open_files=1024)
    assert under_1024.max_connections == (1024 - FD_RESERVE) // 2 == 384
    assert under_1024.lowered and under_1024.per_client == 64
    roomy = ConnectionLimits.from_settings(settings, open_files=65536)
    assert roomy.max_connections == 1024 and not roomy.lowered
    assert connections_allowed(100) >= 16  # however low the limit, a few connections are served


def test_bad_limits_are_refused_with_the_variable_named(tmp_path: Path) -> None:
    from transcriptarr.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="HTTP_MAX_CONNECTIONS_PER_CLIENT"):
        load_settings(http_max_connections_per_client=0)
    with pytest.raises(ConfigError, match="HTTP_HEADER_TIMEOUT_SECONDS"):
        load_settings(http_header_timeout_seconds="soon")


# --------------------------------------------------------------------------- one line per burst


async def test_a_burst_is_one_line_and_a_summary_with_the_count() -> None:
    lines: list[tuple[str, Any]] = []
    burst = Burst(
        lambda **fields: lines.append(("first", fields)), lambda n, s: lines.append(("summary", n)), quiet=0.3
    )
    for n in range(500):
        burst.hit(n=n)
    assert lines == [("first", {"n": 0})]
    await eventually(lambda: not burst.active, "the burst to end", timeout=10)
    assert lines == [("first", {"n": 0}), ("summary", 499)]
    burst.hit(n=0)  # a new burst: a new first line, no summary for a single event
    burst.close()
    assert lines[2:] == [("first", {"n": 0})]


# --------------------------------------------------------------------------- settings wired into serve()


def test_the_service_applies_the_http_settings(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path, http_header_timeout_seconds=0.5, http_max_connections_per_client=2)

    async def attack(port: int) -> tuple[bytes, bytes, bytes]:
        reader, writer = await connect(port, "127.0.0.2")
        writer.write(b"GET /health HTTP/1.1\r\n")  # headers never finished
        held = await connect(port, "127.0.0.2")
        third = await refused(port, "127.0.0.2")
        cut = await answer(reader)
        held[1].close()
        writer.close()
        return cut, third, await get(port, "/health", "127.0.0.1")

    with LiveService(settings, workers=False) as live:
        cut, third, health = asyncio.run(attack(live.port))
    assert cut == b""
    assert third.startswith(b"HTTP/1.1 503") and b"HTTP_MAX_CONNECTIONS_PER_CLIENT=2" in third
    assert health.startswith(b"HTTP/1.1 200")


# --------------------------------------------------------------------------- out of file descriptors

_EXHAUSTED_CHILD = textwrap.dedent(
    """
    import asyncio, os, resource, sys
    from aiohttp import web
    from transcriptarr.api.connections import ConnectionLimits
    from transcriptarr.api.listener import Listener
    from transcriptarr.logs import configure_logging

    configure_logging("info", "json")
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    async def main():
        app = web.Application()
        async def hello(request):
            return web.Response(text="ok")
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        limits = ConnectionLimits(100, 100, 10.0, 30.0, 100)
        listener = Listener(runner.server, limits, access_log=None)
        [address] = await listener.start("127.0.0.1", 0)
        held = []
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        print(address[1], flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # the test says when to free the descriptors
        for fd in held:
            os.close(fd)
        await loop.run_in_executor(None, sys.stdin.readline)
        await listener.close()
        await runner.cleanup()

    asyncio.run(main())
    """
)


def test_out_of_file_descriptors_accepting_pauses_logs_once_and_resumes(tmp_path: Path) -> None:
    log_path = tmp_path / "child.log"
    with log_path.open("wb") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-c", _EXHAUSTED_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file
        )
    try:
        assert child.stdout is not None and child.stdin is not None
        port = int(child.stdout.readline())
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
        for client in clients:
            client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        deadline = time.monotonic() + 20
        while "http_accept_failed" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        time.sleep(2.0)  # the exhaustion lasts two seconds: four pauses of ACCEPT_PAUSE_SECONDS
        child.stdin.write(b"free\n")
        child.stdin.flush()
        replies = [client.recv(4096) for client in clients]  # accepted and answered once descriptors are back
        exhausted_for = time.monotonic() - started
        child.stdin.write(b"stop\n")
        child.stdin.close()
        assert child.wait(20) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert all(reply.startswith(b"HTTP/1.1 200") for reply in replies), replies
    events = [json.loads(line)["event"] for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert events.count("http_accept_failed") == 1, events
    [summary] = [json.loads(line) for line in log_path.read_text().splitlines() if "accept_failed_summary" in line]
    # Paused between tries: about one failed accept() per pause, not thousands.
    assert 1 <= summary["repeated"] <= exhausted_for / 0.5 + 3, summary
    assert "out of system resource" not in log_path.read_text()


def test_the_service_raises_its_open_files_limit_to_the_hard_limit() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"the hard open-files limit ({hard}) leaves nothing to raise")
    code = (
        "import resource; from transcriptarr.fd_limit import raise_open_files_limit;"
        "from transcriptarr.logs import configure_logging; configure_logging('info', 'json');"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]));"
        "raise_open_files_limit(); print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert int(done.stdout) > 256
    assert "open_files_limit" not in done.stderr, "only a failure to raise it is logged"


def test_the_systemd_unit_and_the_container_entrypoint_raise_the_open_files_limit(tmp_path: Path) -> None:
    root = Path(__file__).parents[2]
    unit = (root / "contrib" / "transcriptarr.service").read_text()
    [limit] = [line for line in unit.splitlines() if line.startswith("LimitNOFILE=")]
    assert int(limit.split("=", 1)[1]) >= 65536
    # The entrypoint, its folders in tmp_path and its user this one (so that it also runs as root here).
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TRANSCRIPTARR_CONFIG_DIR": str(tmp_path / "config"),
        "PUID": str(os.geteuid()),
        "PGID": str(os.getegid()),
    }
    done = subprocess.run(
        ["prlimit", "--nofile=1024:4096", "sh", str(root / "contrib" / "docker" / "entrypoint.sh"), "sh", "-c",
         "ulimit -n"],
        capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.stdout.strip() == "4096", done.stderr


# --------------------------------------------------------------------------- the flood (slow)

ATTACKERS = {"127.0.0.2": 400, "127.0.0.3": 300, "127.0.0.4": 300}  # 1,000 slow-header connections
FLOOD_SECONDS = 40.0
HEALTH_BOUND_SECONDS = 5.0


class LimitedService(ServiceProcess):
    """ServiceProcess started under `ulimit -n 1024` (soft and hard: it cannot raise it)."""

    def __enter__(self) -> LimitedService:
        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "transcriptarr", "run"],
                env=self.env,
                cwd=self.root,
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=limit,  # only setrlimit, before exec
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return self
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"the service did not answer /health within 90 s:\n{self.log_tail()}")


async def slow_client(port: int, source: str, until: float, counts: dict[str, int]) -> None:
    """One attacker: a connection that sends a header byte every 3 s; when cut off, it connects again."""
    header = b"GET /health HTTP/1.1\r\nHost: victim\r\nX-Padding: " + b"a" * 200
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.wait_for(connect(port, source), 10)
        except (OSError, TimeoutError):
            counts["connect_failed"] += 1
            await asyncio.sleep(1)
            continue
        counts["connected"] += 1
        try:
            for byte in header:
                if time.monotonic() >= until:
                    break
                writer.write(bytes([byte]))
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(4096), 3.0) == b"":
                        break  # closed by the server
                if reader.at_eof():
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()
        counts["cut_off"] += 1
        await asyncio.sleep(1)  # the attacker's pace before it connects again


@pytest.mark.slow
async def test_1000_slow_header_connections_under_ulimit_1024_cannot_stop_health_or_jobs(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"this test needs 2,048 file descriptors for its 1,000 clients; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096) if hard == resource.RLIM_INFINITY else hard, hard))
    library = tmp_path / "library"
    library.mkdir()
    speech = speak("The cat sat on the mat.", library / "cat.wav")
    key = "hostile-key"
    env = {
        "API_KEY": key,
        "TRANSCRIPTARR_MODE": "standalone",
        "LIBRARY_PATHS": str(library),
        "DISCOVERY_ENABLED": "false",
        "WORKERS": "1",
        "QUALITY": "fast",
        "RETRY_BACKOFF_SECONDS": "1",
        "WORKER_NICE": "0",
    }
    with LimitedService(tmp_path, **env) as service:
        port = service.port
        counts = {"connected": 0, "cut_off": 0, "connect_failed": 0}
        until = time.monotonic() + FLOOD_SECONDS
        attackers = [
            asyncio.create_task(slow_client(port, source, until, counts))
            for source, many in ATTACKERS.items()
            for _ in range(many)
        ]
        headers = {"X-Api-Key": key}
        timeout = aiohttp.ClientTimeout(total=HEALTH_BOUND_SECONDS)
        health: list[tuple[int, float]] = []
        job_id: int | None = None
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True), timeout=timeout) as web_:
            await eventually(lambda: counts["connected"] >= 900, "the attackers to connect", timeout=30)
            async with web_.post(
                f"{service.url}/api/jobs", json={"path": str(speech), "language": "en"}, headers=headers
            ) as created:
                assert created.status == 201, await created.text()
                job_id = int((await created.json())["jobs"][0]["job"]["id"])
            while time.monotonic() < until:
                started = time.monotonic()
                try:
                    async with web_.get(f"{service.url}/health") as response:
                        health.append((response.status, time.monotonic() - started))
                except (aiohttp.ClientError, TimeoutError) as exc:
                    health.append((0, time.monotonic() - started))
                    print("health failed:", repr(exc))
                await asyncio.sleep(1)  # one check a second
            await asyncio.gather(*attackers)

            async def job() -> dict[str, Any]:
                async with web_.get(f"{service.url}/api/jobs/{job_id}", headers=headers) as response:
                    return dict((await response.json())["job"])

            async def finished() -> bool:
                return (await job())["state"] in ("completed", "failed", "cancelled")

            await eventually(finished, f"job {job_id} to finish", timeout=120, every=0.5)
            final = await job()
        assert service.alive()
    log_text = service.log_path.read_text(errors="replace")
    events = [json.loads(line).get("event") for line in log_text.splitlines() if line.startswith("{")]
    print(
        f"flood: {counts}; /health {len(health)} checks, slowest {max(s for _, s in health):.3f} s; job "
        f"{final['state']} in {final['attempts']} attempt(s); log {len(log_text)} bytes, "
        f"refusal lines {events.count('http_connections_refused')}, header-timeout lines "
        f"{events.count('http_header_timeout')}"
    )
    assert health and all(status == 200 for status, _ in health), health
    assert max(seconds for _, seconds in health) < HEALTH_BOUND_SECONDS
    assert final["state"] == "completed" and final["attempts"] == 1, final
    assert final["result_path"] and Path(final["result_path"]).is_file(), (final, sorted(library.iterdir()))
    assert counts["connected"] >= 1000, counts
    assert "out of system resource" not in log_text
    assert events.count("http_accept_failed") == 0, events.count("http_accept_failed")
    assert events.count("http_connections_refused") <= 3, events.count("http_connections_refused")
    assert len(log_text) < 200_000, len(log_text)
