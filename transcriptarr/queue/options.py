"""Keys of a job's `options` that one part writes and another reads, defined once below both."""

from __future__ import annotations

# The video Bazarr's `video_file` names, as this node sees it (mapped, inside LIBRARY_PATHS): written by the
# provider route (api/bazarr.py), read by the worker to transcribe the wanted track (workers/library_track.py).
LIBRARY_VIDEO = "library_video"
