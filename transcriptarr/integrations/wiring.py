"""Which integrations run, from the settings: the one place that knows them all."""

from __future__ import annotations

from transcriptarr.integrations.followups import FollowUp, FollowUps
from transcriptarr.integrations.paths import PathMapper
from transcriptarr.settings import Settings


def build_followups(settings: Settings, paths: PathMapper) -> FollowUps:
    """The follow-ups of finished jobs that the configuration asks for (none by default)."""
    actions: list[FollowUp] = []
    return FollowUps(actions)
