"""Library discovery: find media without wanted subtitles, decide why, queue it.

See docs/decisions.md for the rule set and the priority rules.
"""

from transcriptarr.library.config import LibraryConfig, RulesConfig
from transcriptarr.library.library import Library
from transcriptarr.library.rules import Decision
from transcriptarr.library.scanner import ScanReport

__all__ = ["Decision", "Library", "LibraryConfig", "RulesConfig", "ScanReport"]
