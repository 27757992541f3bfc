"""Which integrations run, from the settings: the one place that knows them all."""

from __future__ import annotations

from datetime import timedelta

from transcriptarr.db.database import Database
from transcriptarr.integrations.bazarr_followup import bazarr_followup_from_settings
from transcriptarr.integrations.followups import FollowUp, FollowUps
from transcriptarr.integrations.mediaservers.refresh import refresh_from_settings
from transcriptarr.integrations.notify import notify_from_settings
from transcriptarr.queue.followups import FollowUpStore
from transcriptarr.settings import Settings


def followup_actions(settings: Settings) -> list[FollowUp]:
    """The follow-ups of finished jobs that the configuration asks for (none by default)."""
    actions: list[FollowUp] = []
    if (notify := notify_from_settings(settings)) is not None:
        actions.append(notify)
    if (refresh := refresh_from_settings(settings)) is not None:
        actions.append(refresh)
    if (bazarr := bazarr_followup_from_settings(settings)) is not None:
        actions.append(bazarr)
    return actions


def build_followups(settings: Settings, db: Database) -> FollowUps:
    """The runner of those follow-ups, storing them in `db` (ended ones kept as long as finished jobs)."""
    return FollowUps(
        followup_actions(settings),
        FollowUpStore(db),
        node=settings.node_name,
        retention=timedelta(hours=settings.job_retention_hours),
    )
