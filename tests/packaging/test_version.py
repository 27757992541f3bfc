"""One version, in transcriptarr/__init__.py, shown everywhere a user or a registry looks: the command line,
/api/status, /health, the status page, the image label, and the changelog section a release publishes."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import requests

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from tests.packaging import scripts
from tests.packaging.dockerfile import Dockerfile
from transcriptarr import __version__

REPO = Path(__file__).resolve().parents[2]
release_notes = scripts.load("release_notes")

# PEP 440 release or pre-release, as the release workflow turns it into image tags.
VERSION = re.compile(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?(?:\.dev\d+)?")


def test_the_version_has_one_source() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"], "pyproject.toml takes the version from the package"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "transcriptarr.__version__"}
    assert VERSION.fullmatch(__version__), f"{__version__!r} is not a version the release workflow can tag"
    assert release_notes.package_version(REPO / "transcriptarr" / "__init__.py") == __version__


def test_command_line_prints_the_version() -> None:
    script = Path(sys.executable).parent / "transcriptarr"
    for command in ([str(script)], [sys.executable, "-m", "transcriptarr"]):
        result = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"transcriptarr {__version__}"


def test_api_status_health_and_status_page_show_the_version(tmp_path: Path) -> None:
    with LiveService(engine_settings(tmp_path), workers=False) as service:
        status = requests.get(f"{service.url}/api/status", timeout=30)
        health = requests.get(f"{service.url}/health", timeout=30)
        page = requests.get(f"{service.url}/", timeout=30)

    assert status.status_code == 200 and status.json()["version"] == __version__
    assert health.status_code == 200 and health.json()["version"] == __version__
    assert page.status_code == 200 and f"version {__version__} ·" in page.text


def test_image_label_is_the_version_the_release_passes() -> None:
    dockerfile = Dockerfile.read(REPO / "Dockerfile")
    assert "VERSION" in dockerfile.global_args
    for target in ("cpu", "gpu"):
        image = dockerfile.image(target)
        labels = " ".join(i.args for i in image.all("LABEL"))
        assert 'org.opencontainers.image.version="${VERSION}"' in labels, labels
        assert 'org.opencontainers.image.revision="${REVISION}"' in labels, labels
        assert "VERSION" in {i.args for i in image.all("ARG")}, "a LABEL sees only ARGs declared in its stage"
    license_ = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["license"]
    assert f'org.opencontainers.image.licenses="{license_}"' in labels
    # The builders refuse a VERSION that is not what the installed package says.
    for builder in ("cpu-builder", "gpu-builder"):
        runs = " ".join(i.args for i in dockerfile.stages[builder].all("RUN"))
        assert '[ "${installed}" = "transcriptarr ${VERSION}" ]' in runs, builder
    release = (REPO / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8")
    assert "VERSION=${{ needs.prepare.outputs.version }}" in release
    assert "REVISION=${{ github.sha }}" in release


def test_changelog_has_a_section_for_this_version() -> None:
    notes = release_notes.notes(f"v{__version__}")

    assert "### " in notes and len(notes.splitlines()) > 5, notes
    assert "## [Unreleased]" in (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
