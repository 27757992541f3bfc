"""docs/migrating-from-subgen.md: its variable table is the alias table, and its links resolve."""

from __future__ import annotations

import re
from pathlib import Path

from transcriptarr.settings_doc import render_subgen_markdown
from transcriptarr.subgen_compat import RULES

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating-from-subgen.md"
START, END = "<!-- subgen-table:start -->\n", "<!-- subgen-table:end -->"


def test_the_variable_table_is_generated_from_the_alias_table() -> None:
    text = DOC.read_text()
    block = text[text.index(START) + len(START) : text.index(END)]
    assert block == render_subgen_markdown(), "regenerate: python -m transcriptarr.settings_doc subgen"


def test_every_subgen_variable_the_issue_names_is_in_the_table() -> None:
    read = {var.name for rule in RULES for var in rule.reads} | {var.old for rule in RULES for var in rule.reads}
    named = [
        "TRANSCRIBE_FOLDERS",
        "WEBHOOK_PORT",
        "WEBHOOKPORT",
        "TRANSCRIBE_DEVICE",
        "CONCURRENT_TRANSCRIPTIONS",
        "COMPUTE_TYPE",
        "MODEL_PATH",
        "USE_PATH_MAPPING",
        "PATH_MAPPING_FROM",
        "PATH_MAPPING_TO",
        "PLEX_SERVER",
        "PLEXSERVER",
        "PLEXTOKEN",
        "JELLYFIN_SERVER",
        "JELLYFIN_TOKEN",
        "WEBHOOK_URL_COMPLETED",
        "SKIP_IF_AUDIO_LANGUAGES",
        "SKIP_UNKNOWN_LANGUAGE",
        "FORCE_DETECTED_LANGUAGE_TO",
        "LRC_FOR_AUDIO_FILES",
        "SUBTITLE_LANGUAGE_NAMING_TYPE",
        "SHOW_IN_SUBNAME_SUBGEN",
        "SHOW_IN_SUBNAME_MODEL",
        "DETECT_LANGUAGE_LENGTH",
        "DETECT_LANGUAGE_OFFSET",
        "MONITOR",
        "SKIP_STARTUP_SCAN",
        "TRANSCRIBE_OR_TRANSLATE",
        "SUBGEN_KWARGS",
        "LIMIT_TO_PREFERRED_AUDIO_LANGUAGE",
    ]
    assert set(named) <= read


def test_the_documents_relative_links_resolve() -> None:
    text = DOC.read_text()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (DOC.parent / target).exists(), f"broken link in {DOC.name}: {target}"
