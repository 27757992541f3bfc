"""Documentation generated from the Settings class, so it never drifts from the code.

`python -m transcriptarr.settings_doc env > config/transcriptarr.example.env`
`python -m transcriptarr.settings_doc markdown` prints the README's reference table.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic.fields import FieldInfo

from transcriptarr.settings import Settings

_DYNAMIC_DEFAULTS = {"node_name": "(the host name)"}


def _default(name: str, field: FieldInfo) -> str:
    if name in _DYNAMIC_DEFAULTS:
        return _DYNAMIC_DEFAULTS[name]
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return ""
    if isinstance(value, frozenset):
        return ",".join(sorted(str(v) for v in value))
    if isinstance(value, list):
        return "|".join(str(v) for v in value) if name.endswith(("paths", "devices", "mappings")) else ",".join(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def render_env() -> str:
    lines = [
        "# Transcriptarr configuration: copy to .env (or set as environment variables).",
        "# Generated from transcriptarr/settings.py by `python -m transcriptarr.settings_doc env`.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        lines.append(f"# {field.description}")
        default = _default(name, field)
        prefix = "# " if name in _DYNAMIC_DEFAULTS or (default == "" and name != "library_paths") else ""
        lines.append(f"{prefix}{name.upper()}={default}")
        lines.append("")
    return "\n".join(lines)


def render_markdown() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = _default(name, field).replace("|", "\\|")
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name.upper()}` | `{default}` | {meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else "env"
    sys.stdout.write(render_env() if kind == "env" else render_markdown())
