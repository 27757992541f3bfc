"""MEDIA_SERVER_REFRESH: once a webhook's file has its subtitle, ask that server to look at the item again.

Jellyfin, Emby and Plex notice a new sidecar subtitle only at their next scan; a
refresh of the one item shows it at once. The job's details say which server and
item (`{"webhook": {"server": "jellyfin", "item_id": "..."}}`, written by
queueing.py). Runs as a follow-up (followups.py): stored with the job's result,
done in the background, retried while the server is down (across restarts), not
retried when it refuses the key or forgot the item. Harmless to repeat.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog

from transcriptarr.db.models import Job, JobState
from transcriptarr.integrations.followups import Attempt, FollowUp, FollowUpError, Plan
from transcriptarr.integrations.mediaservers.events import ServerName
from transcriptarr.integrations.mediaservers.http import MediaServerError
from transcriptarr.integrations.mediaservers.servers import API_SERVERS, configured, server_from_settings
from transcriptarr.settings import Settings

log = structlog.get_logger(__name__)


def webhook_origin(job: Job) -> tuple[ServerName, str] | None:
    """(server, item id) of the webhook that queued this job, if one did."""
    webhook = (job.details or {}).get("webhook")
    if not isinstance(webhook, dict):
        return None
    server, item = webhook.get("server"), webhook.get("item_id")
    if server not in API_SERVERS or not isinstance(item, str) or not item:
        return None
    return server, item


class MediaServerRefresh:
    name = "media-server-refresh"

    def __init__(self, settings: Settings, servers: Iterable[ServerName]) -> None:
        self.settings = settings
        self.servers = frozenset(servers)  # those configured

    def wants(self, job: Job) -> bool:
        origin = webhook_origin(job)
        wrote = job.state == JobState.COMPLETED and not (job.details or {}).get("skipped")
        return wrote and origin is not None and origin[0] in self.servers

    def plan(self, job: Job) -> Plan:
        origin = webhook_origin(job)
        assert origin is not None  # wants() said so
        return Plan(origin[0], {"server": origin[0], "item_id": origin[1]})

    async def perform(self, data: dict[str, Any], attempt: Attempt) -> None:
        name, item = data.get("server"), data.get("item_id")
        if name not in API_SERVERS or not isinstance(item, str):
            raise FollowUpError(f"the stored refresh of job {attempt.job_id} names no media server item", retry=False)
        server = server_from_settings(self.settings, name)
        if server is None:
            raise FollowUpError(f"{name} is no longer configured; its item {item} is not refreshed", retry=False)
        # A client per refresh: they are rare, and nothing is left open between them.
        try:
            await server.refresh(item)
        except MediaServerError as exc:
            raise FollowUpError(str(exc), retry=exc.retry) from None
        finally:
            await server.close()
        log.info("media_server_refreshed", job_id=attempt.job_id, path=attempt.path, server=name, item_id=item)


def refresh_from_settings(settings: Settings) -> FollowUp | None:
    """The refresh follow-up, when MEDIA_SERVER_REFRESH is on and a media server is configured."""
    if not settings.media_server_refresh:
        return None
    servers = configured(settings)
    return MediaServerRefresh(settings, servers) if servers else None
