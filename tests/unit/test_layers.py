"""The layers of docs/architecture.md hold: every import of a `transcriptarr` module, wherever it is written
(module level, inside a function, under TYPE_CHECKING), goes to the same layer or to one the importer may use.
And every dependency pyproject.toml declares is imported somewhere in the package.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "transcriptarr"

# Layer of a module: the longest prefix listed here. Keep in step with docs/architecture.md.
LAYER_OF: dict[str, str] = {
    "transcriptarr": "foundation",
    "transcriptarr.logs": "foundation",
    "transcriptarr.writable": "foundation",
    "transcriptarr.fd_limit": "foundation",
    "transcriptarr.cpu_priority": "foundation",
    "transcriptarr.settings": "policy",
    "transcriptarr.subgen_compat": "policy",
    "transcriptarr.policy": "policy",
    "transcriptarr.db": "storage",
    "transcriptarr.media": "media",
    "transcriptarr.subtitles": "subtitles",
    "transcriptarr.queue": "queue",
    "transcriptarr.workers": "engine",
    "transcriptarr.library": "library",
    "transcriptarr.integrations": "integrations",
    "transcriptarr.api": "http",
    "transcriptarr.startup": "composition",
    "transcriptarr.service": "composition",
    "transcriptarr.shutdown": "composition",
    "transcriptarr.cli": "composition",
    "transcriptarr.library_commands": "composition",
    "transcriptarr.demo": "composition",
    "transcriptarr.preflight": "composition",
    "transcriptarr.settings_doc": "composition",
    "transcriptarr.__main__": "composition",
}

# What each layer may import besides itself. The engine (faster-whisper) and the HTTP layer are leaves that
# only the composition root puts together with the rest.
MAY_USE: dict[str, frozenset[str]] = {
    "foundation": frozenset(),
    "policy": frozenset({"foundation"}),
    "storage": frozenset({"foundation", "policy"}),
    "media": frozenset({"foundation", "policy"}),
    "subtitles": frozenset({"foundation", "policy", "storage"}),
    "queue": frozenset({"foundation", "policy", "storage"}),
    "engine": frozenset({"foundation", "policy", "storage", "media", "subtitles", "queue"}),
    "library": frozenset({"foundation", "policy", "storage", "media", "subtitles", "queue"}),
    "integrations": frozenset({"foundation", "policy", "storage", "media", "subtitles", "queue", "library"}),
    "http": frozenset({"foundation", "policy", "storage", "media", "subtitles", "queue", "library", "integrations"}),
    "composition": frozenset(
        {
            "foundation",
            "policy",
            "storage",
            "media",
            "subtitles",
            "queue",
            "engine",
            "library",
            "integrations",
            "http",
        }
    ),
}


def layer_of(module: str) -> str:
    best = max((prefix for prefix in LAYER_OF if module == prefix or module.startswith(prefix + ".")), key=len)
    return LAYER_OF[best]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts and "versions" in path.parts:
            continue  # frozen history: a migration is what the schema was, not a layer of today's code
        yield module_name(path), path


def imports_of(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """Every module an `import` or `from ... import` names, with its line; relative imports made absolute."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            yield node.lineno, origin
            # `from transcriptarr.x import y` may name the module transcriptarr.x.y
            for alias in node.names:
                candidate = f"{origin}.{alias.name}"
                if (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(".py").exists():
                    yield node.lineno, candidate


def test_every_module_belongs_to_a_layer() -> None:
    for module, _ in package_modules():
        assert layer_of(module) in MAY_USE, module


def test_no_import_crosses_the_layers() -> None:
    crossings = []
    for module, path in package_modules():
        mine = layer_of(module)
        for line, imported in imports_of(module, path):
            if imported != "transcriptarr" and not imported.startswith("transcriptarr."):
                continue
            theirs = layer_of(imported)
            if theirs != mine and theirs not in MAY_USE[mine]:
                crossings.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({mine}) imports {imported} ({theirs})")
    assert not crossings, "imports that cross the layers of docs/architecture.md:\n" + "\n".join(crossings)


def test_the_layer_table_is_the_one_docs_architecture_describes() -> None:
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for layer in MAY_USE:
        assert f"`{layer}`" in text, f"docs/architecture.md does not describe the layer {layer!r}"


def _distribution_to_module(requirement: str) -> str:
    name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].strip().lower()
    return {
        "faster-whisper": "faster_whisper",
        "ffmpeg-python": "ffmpeg",
        "pydantic-settings": "pydantic_settings",
        "prometheus-client": "prometheus_client",
        "sqlalchemy": "sqlalchemy",
    }.get(name, name.replace("-", "_"))


def test_every_declared_dependency_is_imported_somewhere() -> None:
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    runtime = [*project["dependencies"], *optional.get("postgresql", []), *optional.get("mariadb", [])]
    imported = {name.split(".")[0] for module, path in package_modules() for _, name in imports_of(module, path)}
    # Database drivers are loaded by SQLAlchemy from the URL's dialect, never imported by name.
    by_dialect = {"aiosqlite", "asyncpg", "aiomysql"}
    missing = [
        requirement for requirement in runtime if _distribution_to_module(requirement) not in imported | by_dialect
    ]
    assert not missing, f"declared in pyproject.toml but imported nowhere in transcriptarr/: {missing}"
