"""The policy core is light, and a worker node loads no HTTP app (docs/architecture.md).

Each check imports in a fresh interpreter run with `python -X importtime`, which prints every module the
import loads (one line each, on stderr): the test reads that list, so a module already loaded by the test
process cannot hide a heavy import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES

from transcriptarr.policy.languages import WHISPER_LANGUAGES

PACKAGE = Path(__file__).resolve().parents[2] / "transcriptarr"
POLICY_MODULES = sorted(
    f"transcriptarr.policy.{path.stem}" for path in (PACKAGE / "policy").glob("*.py") if path.stem != "__init__"
)
ENGINE = ("faster_whisper", "ctranslate2")
HTTP_APP = ("transcriptarr.api", "prometheus_client", "aiohttp.web")


def loaded_by(*modules: str) -> set[str]:
    """The modules `import <modules>` loads in a fresh interpreter, read from -X importtime's report."""
    code = "; ".join(f"import {module}" for module in modules)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # "import time: self [us] | cumulative | imported package": the name is the last column, indented by depth.
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert lines, f"python -X importtime printed no report: {result.stderr[-500:]}"
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


def heavy(loaded: set[str], roots: tuple[str, ...]) -> list[str]:
    """The loaded modules that are one of `roots` or inside one of them."""
    return sorted(name for name in loaded if any(name == root or name.startswith(root + ".") for root in roots))


@pytest.mark.parametrize(
    "modules",
    [
        ("transcriptarr.library.rules",),
        ("transcriptarr.settings",),
        ("transcriptarr.integrations.bazarr_sync",),
        tuple(POLICY_MODULES),
    ],
    ids=["rules", "settings", "bazarr_sync", "policy"],
)
def test_deciding_loads_no_faster_whisper_or_ctranslate2(modules: tuple[str, ...]) -> None:
    loaded = loaded_by(*modules)
    assert set(modules) <= loaded  # the report is read right
    assert not heavy(loaded, ENGINE), f"importing {', '.join(modules)} loads the engine"


def test_the_modules_a_worker_node_imports_load_no_http_app() -> None:
    # `transcriptarr worker`: the CLI, then preflight and the service (cli._start_service); HTTP stays off.
    loaded = loaded_by("transcriptarr.cli", "transcriptarr.preflight", "transcriptarr.service")
    assert "transcriptarr.service" in loaded
    assert not heavy(loaded, HTTP_APP), "a worker node would load the HTTP app"


def test_a_worker_node_runs_without_loading_the_http_app(tmp_path: Path) -> None:
    """`transcriptarr worker --once` for real, on an empty SQLite queue: what it had loaded when it exited."""
    report = tmp_path / "modules.json"
    code = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: open({str(report)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        "from transcriptarr.cli import main\n"
        "sys.exit(main(['worker', '--once']))\n"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "WHISPER_MODEL": "bundled:tiny.en",
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'queue.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"service_stopped"' in result.stderr + result.stdout  # it did run the service, and stopped
    loaded = set(json.loads(report.read_text()))
    assert "transcriptarr.workers.pool" in loaded
    assert not heavy(loaded, HTTP_APP), "a worker node loaded the HTTP app"


def test_whisper_languages_are_the_installed_faster_whispers() -> None:
    # policy/languages.py keeps its own copy so that it need not import faster-whisper.
    assert frozenset(_LANGUAGE_CODES) == WHISPER_LANGUAGES
