"""docs/logging.md lists every log event the code emits, and only those: it is the monitoring interface."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "logging.md"
LEVELS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "msg"})


def _is_logger(node: ast.expr) -> bool:
    """`log`, `logger`, `self._log`, `logger.bind(...)`, `structlog.get_logger(...)`: anything named like a logger."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("bind", "new", "get_logger"):
            return node.func.attr == "get_logger" or _is_logger(node.func.value)
        return False
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name.lower().rstrip("_").endswith(("log", "logger"))


def _names(node: ast.expr) -> list[str]:
    """The event names a first argument can be: "name", or "a" if ... else "b"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _names(node.body) + _names(node.orelse)
    return []


def _event_argument(node: ast.AST) -> ast.expr | None:
    """The event argument of a logging call, `<logger>.<level>(event, ...)` or a helper that takes the logger first,
    `log_failure(<logger>, event, ...)`; None for any other node."""
    if isinstance(node, ast.Call) and len(node.args) >= 2 and _is_logger(node.args[0]):
        return node.args[1]
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
        return None
    if node.func.attr not in LEVELS or not _is_logger(node.func.value):
        return None
    return node.args[0]


def logged_names(tree: ast.AST) -> list[str]:
    """Every event name logged in this syntax tree."""
    return [name for node in ast.walk(tree) if (arg := _event_argument(node)) is not None for name in _names(arg)]


def emitted_events(package: Path) -> dict[str, set[str]]:
    """Event name -> the files that log it."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for name in logged_names(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def documented_events(doc: str) -> set[str]:
    """The first cell, in backticks, of each row of the tables headed `| Event | Level | ...`."""
    events, in_event_table = set(), False
    for line in doc.splitlines():
        if not line.startswith("|"):
            in_event_table = False
        elif re.match(r"\|\s*Event\s*\|", line):
            in_event_table = True
        elif in_event_table and (cell := re.match(r"\|\s*`([a-z0-9_.]+)`\s*\|", line)):
            events.add(cell.group(1))
    return events


def test_the_scanner_finds_events_however_the_logger_is_reached() -> None:
    source = """
log.info("a")
logger.warning("b", x=1)
self._log.error("c")
log.bind(job=1).debug("d")
structlog.get_logger(__name__).exception("e")
log.info("f" if ok else "g")
events.publish("not_a_log")
log.info(f"{x}")
log_failure(log, "h", exc)
"""
    assert sorted(logged_names(ast.parse(source))) == ["a", "b", "c", "d", "e", "f", "g", "h"]


def test_every_logged_event_is_documented() -> None:
    emitted = emitted_events(ROOT / "transcriptarr")
    missing = sorted(set(emitted) - documented_events(DOC.read_text(encoding="utf-8")))
    assert not missing, "docs/logging.md does not list these log events: " + ", ".join(
        f"{name} ({', '.join(sorted(emitted[name]))})" for name in missing
    )


def test_the_doc_lists_no_event_that_is_gone() -> None:
    gone = sorted(documented_events(DOC.read_text(encoding="utf-8")) - set(emitted_events(ROOT / "transcriptarr")))
    assert not gone, "docs/logging.md lists events that no code logs any more: " + ", ".join(gone)
