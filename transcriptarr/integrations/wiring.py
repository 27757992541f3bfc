"""Which integrations run, from the settings: the one place that knows them all."""

from __future__ import annotations

from transcriptarr.integrations.bazarr_followup import bazarr_followup_from_settings
from transcriptarr.integrations.followups import FollowUp, FollowUps
from transcriptarr.integrations.mediaservers.refresh import refresh_from_settings
from transcriptarr.integrations.notify import notify_from_settings
from transcriptarr.integrations.paths import PathMapper
from transcriptarr.settings import Settings


def build_followups(settings: Settings, paths: PathMapper) -> FollowUps:
    """The follow-ups of finished jobs that the configuration asks for (none by default)."""
    actions: list[FollowUp] = []
    if (notify := notify_from_settings(settings)) is not None:
        actions.append(notify)
    if (refresh := refresh_from_settings(settings)) is not None:
        actions.append(refresh)
    if (bazarr := bazarr_followup_from_settings(settings)) is not None:
        actions.append(bazarr)
    return FollowUps(actions)
