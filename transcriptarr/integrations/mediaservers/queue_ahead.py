"""Which episodes to queue after the one a media server told us about (PLEX_QUEUE_AHEAD).

SubGen's PLEX_QUEUE_NEXT_EPISODE, PLEX_QUEUE_SEASON and PLEX_QUEUE_SERIES: when an episode
is added or starts playing, the ones after it get subtitles before they are watched. "After"
is by season, then episode number; a missing episode is stepped over (SubGen stopped at a
gap), and specials (season 0) never come after a regular episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

QueueAhead = Literal["off", "next-episode", "season", "series"]
T = TypeVar("T")


@dataclass(frozen=True, order=True)
class EpisodeNumber:
    season: int
    episode: int


def episodes_after(current: EpisodeNumber, episodes: Sequence[tuple[EpisodeNumber, T]], scope: QueueAhead) -> list[T]:
    """The episodes after `current` that `scope` asks for, in viewing order."""
    later = sorted((pair for pair in episodes if pair[0] > current), key=lambda pair: pair[0])
    if scope == "next-episode":
        return [later[0][1]] if later else []
    if scope == "season":
        return [episode for number, episode in later if number.season == current.season]
    if scope == "series":
        return [episode for _, episode in later]
    return []
