"""HTTP responsiveness while every worker transcribes, and the 230 MB upload intake.

Runs the real service (database, workers with the bundled tiny.en model, HTTP
server) in a child process on 127.0.0.1, then from this process:

1. idle: `--clients` concurrent clients send `--requests` GET /health and
   GET /api/status requests in all; latency of each is recorded;
2. busy: long library jobs are queued until every worker transcribes, and the
   same load runs again (the workers must still be busy at its end);
3. upload: while the workers are still busy, a 230 MB Bazarr-style upload
   (raw PCM in a multipart body, one `sendall`) is timed from its first byte
   until the server has spooled, hashed and queued it; the job is cancelled.

Loopback only; every loop is bounded. The last line is
`RESULT p99_busy_ms=<x> p99_idle_ms=<y> busy_vs_idle=<ratio> upload_230mb_s=<s>`.
Goals: busy_vs_idle <= 3, upload under 2 s.

    .venv/bin/python benchmarks/api_bench.py [--clients 200] [--requests 4000] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
FILM_BYTES = 230_000_000
SENTENCES = (
    "Rivers carry water from the mountains to the sea, shaping valleys along the way.",
    "Over thousands of years, the slow work of water turns rock into sand.",
    "People have always built their towns beside rivers, for water, food and travel.",
    "In spring the snow melts and the river rises over its banks.",
    "Farmers welcome the flood, because it leaves rich soil on their fields.",
    "Boats once carried grain, wood and stone down to the harbour.",
    "Today most of that trade moves by road and rail instead.",
    "Still, the river remains the heart of the old city.",
)


# --------------------------------------------------------------------------- the server (child process)


async def serve_child(folder: Path, workers: int) -> None:
    sys.path.insert(0, str(REPO))
    from transcriptarr.api import create_app, serve
    from transcriptarr.logs import configure_logging
    from transcriptarr.service import api_deps, build
    from transcriptarr.settings import load_settings

    settings = load_settings(
        database_url=f"sqlite:///{folder / 'bench.db'}",
        transcriptarr_mode="standalone,provider",
        library_paths=str(folder / "library"),
        whisper_model="bundled:tiny.en",
        whisper_device="cpu",
        workers=workers,
        data_dir=folder / "data",
        model_dir=folder / "models",
        log_level="warning",
        shutdown_grace_seconds=1,
        model_idle_unload_seconds=0,
    )
    configure_logging(settings.log_level, "console")  # to stderr; stdout carries the port
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with build(settings) as parts:
        app = create_app(api_deps(parts))

        def started(port: int) -> None:
            print(f"PORT {port}", flush=True)

        await asyncio.gather(serve(app, "127.0.0.1", 0, stop, on_started=started), parts.pool.run(stop))


# --------------------------------------------------------------------------- media


def make_media(folder: Path, jobs: int) -> list[Path]:
    """`jobs` copies of about a minute of speech (JFK, then synthetic sentences)."""
    library = folder / "library"
    library.mkdir(parents=True)
    work = folder / "make"
    work.mkdir()
    parts = []
    jfk = REPO / "tests" / "data" / "jfk.flac"
    if jfk.is_file():
        parts.append(jfk)
    for i, text in enumerate(SENTENCES):
        wav = work / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), text], check=True, capture_output=True)
        parts.append(wav)
    inputs = [arg for part in parts for arg in ("-i", str(part))]
    graph = "".join(f"[{i}:a]aresample=16000,aformat=channel_layouts=mono[a{i}];" for i in range(len(parts)))
    graph += "".join(f"[a{i}]" for i in range(len(parts))) + f"concat=n={len(parts)}:v=0:a=1[out]"
    speech = work / "speech.wav"
    ffmpeg = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    subprocess.run([*ffmpeg, *inputs, "-filter_complex", graph, "-map", "[out]", str(speech)], check=True)
    files = []
    for n in range(jobs):
        dest = library / f"Episode {n + 1}.wav"
        shutil.copy(speech, dest)
        files.append(dest)
    return files


# --------------------------------------------------------------------------- load


async def load(base: str, clients: int, total: int) -> list[float]:
    """`total` GETs of /health and /api/status from `clients` concurrent clients; latencies in ms."""
    latencies: list[float] = []
    paths = ("/health", "/api/status")
    counter = iter(range(total))

    async def client(session: aiohttp.ClientSession) -> None:
        for n in counter:
            started = time.perf_counter()
            async with session.get(base + paths[n % 2]) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{paths[n % 2]} answered {response.status}")
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def get_json(base: str, path: str, method: str = "GET", **kwargs: Any) -> Any:
    async with aiohttp.ClientSession() as session, session.request(method, base + path, **kwargs) as response:
        return await response.json()


async def busy_workers(base: str) -> tuple[int, int]:
    status = await get_json(base, "/api/status")
    workers = [w for w in status["workers"] if w["alive"]]
    return sum(1 for w in workers if w["state"] == "busy"), len(workers)


# --------------------------------------------------------------------------- the 230 MB upload


def film_request(port: int) -> bytes:
    boundary = b"bench0boundary0"
    payload = os.urandom(1 << 20) + bytes(FILM_BYTES - (1 << 20))
    body = b"".join(
        [
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="audio_file"; filename="audio_file"\r\n\r\n',
            payload,
            b"\r\n--" + boundary + b"--\r\n",
        ]
    )
    head = (
        f"POST /asr?task=transcribe&language=en&output=srt&encode=false HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nUser-Agent: Subliminal/2.1\r\nAccept: */*\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary.decode()}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def time_upload(base: str, port: int) -> float:
    """From the first byte sent until the job is queued (whole body spooled and hashed)."""
    request = film_request(port)
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)  # Bazarr's response timeout

    def send() -> None:
        sock.sendall(request)

    started = time.perf_counter()
    sender = threading.Thread(target=send)
    sender.start()
    deadline = started + 60
    while time.perf_counter() < deadline:
        jobs = (await get_json(base, "/api/jobs", params={"source": "bazarr"}))["jobs"]
        if jobs:
            took = time.perf_counter() - started
            await get_json(base, f"/api/jobs/{jobs[0]['id']}/cancel", method="POST")
            break
        await asyncio.sleep(0.01)
    else:
        raise RuntimeError("the upload was not queued within 60 s")
    sender.join(30)
    sock.close()
    return took


# --------------------------------------------------------------------------- main


async def measure(base: str, port: int, files: list[Path], clients: int, total: int) -> dict[str, float]:
    await load(base, clients, min(total, 400))  # warm-up: connections, caches, first queries
    idle = await load(base, clients, total)
    for path in files:
        await get_json(base, "/api/jobs", method="POST", json={"path": str(path), "language": "en"})
    for _ in range(600):
        busy, alive = await busy_workers(base)
        if alive and busy == alive:
            break
        await asyncio.sleep(0.1)
    else:
        raise RuntimeError("the workers never all became busy")
    print(f"busy: {busy} of {alive} workers transcribing", flush=True)
    loaded = await load(base, clients, total)
    busy_after, alive = await busy_workers(base)
    print(f"after the busy load: {busy_after} of {alive} workers still transcribing", flush=True)
    upload = await time_upload(base, port)
    busy_end, _ = await busy_workers(base)
    print(f"after the upload: {busy_end} of {alive} workers still transcribing", flush=True)
    if busy_after < alive or busy_end < alive:
        print("WARNING: a worker went idle during the measurement; queue longer jobs", flush=True)
    return {
        "idle_p50": statistics.median(idle),
        "idle_p99": p99(idle),
        "busy_p50": statistics.median(loaded),
        "busy_p99": p99(loaded),
        "upload": upload,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=4000, help="requests per phase (bounded)")
    parser.add_argument("--workers", type=int, default=1, help="transcription workers of the server")
    parser.add_argument("--jobs", type=int, default=4, help="long jobs queued to keep the workers busy")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve_child(args.serve, args.workers))
        return 0

    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp:
        folder = Path(tmp)
        files = make_media(folder, max(args.jobs, args.workers + 1))
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(folder), "--workers", str(args.workers)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line.startswith("PORT "):
                raise RuntimeError(f"the server did not start: {line!r}")
            port = int(line.split()[1])
            base = f"http://127.0.0.1:{port}"
            figures = asyncio.run(measure(base, port, files, args.clients, args.requests))
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
    ratio = figures["busy_p99"] / figures["idle_p99"]
    print(json.dumps({k: round(v, 2) for k, v in figures.items()}))
    print(
        f"RESULT p99_busy_ms={figures['busy_p99']:.1f} p99_idle_ms={figures['idle_p99']:.1f} "
        f"busy_vs_idle={ratio:.2f} upload_230mb_s={figures['upload']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
