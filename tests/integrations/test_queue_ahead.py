"""Which episodes come after the one a media server told us about (integrations/mediaservers/queue_ahead.py)."""

from __future__ import annotations

import pytest

from transcriptarr.integrations.mediaservers.queue_ahead import EpisodeNumber, QueueAhead, episodes_after

# As a server may list them: out of order, a special, a gap (S02E02 missing), a second season.
SHOW = [
    (EpisodeNumber(season, episode), f"S{season}E{episode}")
    for season, episode in (
        (2, 3),
        (1, 2),
        (0, 1),
        (1, 1),
        (2, 1),
        (1, 3),
    )
]


@pytest.mark.parametrize(
    ("scope", "current", "expected"),
    [
        ("off", (1, 1), []),
        ("next-episode", (1, 1), ["S1E2"]),
        ("next-episode", (1, 3), ["S2E1"]),  # the season's last: the next season's first
        ("next-episode", (2, 1), ["S2E3"]),  # stepped over the gap
        ("next-episode", (2, 3), []),  # the last episode
        ("season", (1, 1), ["S1E2", "S1E3"]),
        ("season", (1, 3), []),
        ("series", (1, 2), ["S1E3", "S2E1", "S2E3"]),  # never the special
        ("series", (0, 1), ["S1E1", "S1E2", "S1E3", "S2E1", "S2E3"]),  # after a special: the whole series
        ("season", (0, 1), []),
    ],
)
def test_the_episodes_after_in_viewing_order(scope: QueueAhead, current: tuple[int, int], expected: list[str]) -> None:
    assert episodes_after(EpisodeNumber(*current), SHOW, scope) == expected


def test_an_episode_the_show_does_not_list_still_has_the_ones_after_it() -> None:
    assert episodes_after(EpisodeNumber(1, 4), SHOW, "next-episode") == ["S2E1"]
