#!/usr/bin/env python3
"""Prints the CHANGELOG.md section of a release: the body of its GitHub release.

    python .github/scripts/release_notes.py v0.1.0 > notes.md

Fails with one line on stderr when the tag is not `v` + the package's version (transcriptarr/__init__.py,
the one version source) or CHANGELOG.md has no section for it, so a release cannot go out mislabelled.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Keep a Changelog: "## [0.1.0] - 2026-12-06"; link definitions ("[0.1.0]: https://...") close the file.
_HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\]")
_LINK = re.compile(r"^\[[^\]]+\]:\s")


class ReleaseError(Exception):
    pass


def package_version(init: Path) -> str:
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
    raise ReleaseError(f"{init}: no __version__ = '...' line")


def section(changelog: str, version: str) -> str:
    """The text under `## [version]`, up to the next `## ` heading or the link definitions."""
    lines: list[str] | None = None
    for line in changelog.splitlines():
        heading = _HEADING.match(line)
        if lines is None:
            if heading and heading.group("version") == version:
                lines = []
            continue
        if line.startswith("## ") or _LINK.match(line):
            break
        lines.append(line)
    if lines is None:
        raise ReleaseError(f"CHANGELOG.md has no '## [{version}] - YYYY-MM-DD' section; add one before tagging")
    body = "\n".join(lines).strip()
    if not body:
        raise ReleaseError(f"CHANGELOG.md's section for {version} is empty; say what changed before tagging")
    return body + "\n"


def notes(tag: str, repo: Path = REPO) -> str:
    version = package_version(repo / "transcriptarr" / "__init__.py")
    if tag != f"v{version}":
        raise ReleaseError(
            f"tag {tag} does not match the package version {version} (transcriptarr/__init__.py); "
            f"tag v{version} or change __version__ first"
        )
    return section((repo / "CHANGELOG.md").read_text(encoding="utf-8"), version)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: release_notes.py TAG (e.g. v0.1.0)", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(notes(argv[0]))
    except (ReleaseError, OSError) as exc:
        print(f"release_notes.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
