"""Documentation generated from the Settings class, so it never drifts from the code.

`python -m transcriptarr.settings_doc env > config/transcriptarr.example.env`
`python -m transcriptarr.settings_doc markdown` prints the README's reference table.
`python -m transcriptarr.settings_doc subgen` prints docs/migrating-from-subgen.md's variable table.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic.fields import FieldInfo

from transcriptarr.settings import Settings
from transcriptarr.subgen_compat import RULES, SHARED_NAMES

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


def render_subgen_markdown() -> str:
    """SubGen's variables and what each becomes here, from the one alias table."""
    rows = ["| SubGen variable | Transcriptarr setting | values / why not |", "|---|---|---|"]
    for rule in RULES:
        names = "<br>".join(f"`{v.name}`" + (f" (`{v.old}`)" if v.old else "") for v in rule.reads)
        ours = "<br>".join(f"`{name.upper()}`" for name in rule.settings) or "—"
        rows.append(f"| {names} | {ours} | {rule.meaning.replace('|', chr(92) + '|')} |")
    aliased = {var.name for rule in RULES for var in rule.reads}
    for name in (name for name in SHARED_NAMES if name not in aliased):
        rows.append(f"| `{name}` | `{name}` | the same name and values |")
    return "\n".join(rows) + "\n"


_RENDERERS = {"env": render_env, "markdown": render_markdown, "subgen": render_subgen_markdown}

if __name__ == "__main__":
    sys.stdout.write(_RENDERERS[sys.argv[1] if len(sys.argv) > 1 else "env"]())
