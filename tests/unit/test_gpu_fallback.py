"""A GPU that runs out of memory must not kill the job: it retries on the CPU when allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from transcriptarr.workers import models as models_module
from transcriptarr.workers.job_runner import EngineConfig, JobRunner
from transcriptarr.workers.models import ModelKey, ModelManager


class FakeRegistry:
    async def is_ours(self, path: Path) -> bool:
        return False


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models_module.ctranslate2, "get_cuda_device_count", lambda: 1)
    monkeypatch.setattr(models_module.ctranslate2, "get_supported_compute_types", lambda *a: {"float16", "int8"})


def runner(tmp_path: Path, *, cpu_fallback: bool) -> JobRunner:
    manager = ModelManager(lambda key: f"model on {key.device}", idle_unload_seconds=None)
    config = EngineConfig(model="small", device="cuda", cpu_fallback=cpu_fallback, work_dir=tmp_path)
    return JobRunner(config, manager, FakeRegistry())  # type: ignore[arg-type]


async def out_of_memory_on_gpu(model: Any) -> str:
    if model == "model on cuda":
        raise RuntimeError("CUDA failed with error out of memory")
    return "transcribed"


async def test_out_of_memory_falls_back_to_cpu(tmp_path: Path, one_gpu: None) -> None:
    result, device = await runner(tmp_path, cpu_fallback=True)._with_model("cuda", out_of_memory_on_gpu)
    assert (result, device) == ("transcribed", "cpu")


async def test_without_fallback_the_error_reaches_the_job(tmp_path: Path, one_gpu: None) -> None:
    with pytest.raises(RuntimeError, match="out of memory"):
        await runner(tmp_path, cpu_fallback=False)._with_model("cuda", out_of_memory_on_gpu)


async def test_other_errors_are_not_mistaken_for_gpu_failures(tmp_path: Path, one_gpu: None) -> None:
    async def broken(model: Any) -> str:
        raise RuntimeError("tokenizer file is corrupt")

    with pytest.raises(RuntimeError, match="tokenizer"):
        await runner(tmp_path, cpu_fallback=True)._with_model("cuda", broken)


def test_model_key_names_the_device() -> None:
    assert str(ModelKey("small", "cuda", 1, "float16")) == "small on cuda:1 (float16)"
