"""Sonarr and Radarr: their Webhook connection (Settings > Connect > Webhook), read as events about files.

The shapes come from their own code (`src/NzbDrone.Core/Notifications/Webhook/` in
both repositories: WebhookBase.cs builds the payloads, Newtonsoft writes them with
camelCase names, leaves out null fields, and `eventType` in PascalCase):

- `Download` (On Import, On Upgrade): one `episodeFile` (Sonarr) or `movieFile`
  (Radarr); `isUpgrade` with `deletedFiles`, the replaced files, now gone. Sonarr's
  On Import Complete is also a `Download`, with a list `episodeFiles`;
- `Rename`: `renamedEpisodeFiles` / `renamedMovieFiles`, each with its new `path`
  and its `previousPath`;
- `EpisodeFileDelete` / `MovieFileDelete`: the `episodeFile` / `movieFile` and a
  `deleteReason` (manual, upgrade, missingFromDisk, ...);
- `SeriesDelete` / `MovieDelete`: with `deletedFiles: true` the whole folder is gone;
- `Test`: the Test button in the connection's dialog; everything else (Grab,
  SeriesAdd, Health, ...) is of no interest here.

A file's path is its `path` (Sonarr writes series.path + relativePath there), else
the series' `path` or the movie's `folderPath` joined with its `relativePath`.
Paths are as Sonarr or Radarr see them: PATH_MAPPINGS turns them into local ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from transcriptarr.integrations.mediaservers.events import Ignored, PayloadError, folded, text

ArrApp = Literal["sonarr", "radarr"]
ArrKind = Literal["import", "upgrade", "rename", "delete"]


@dataclass(frozen=True)
class _Shape:
    """Where each app keeps what we need, named as in its JSON (looked up without regard to case)."""

    name: str
    container: str  # series / movie
    folder: str  # the container's folder field
    file: str  # episodeFile / movieFile
    files: str  # Import Complete's list (Sonarr)
    renamed: str
    file_delete: str  # eventType values
    container_delete: str


SHAPES: dict[ArrApp, _Shape] = {
    "sonarr": _Shape(
        name="Sonarr",
        container="series",
        folder="path",
        file="episodeFile",
        files="episodeFiles",
        renamed="renamedEpisodeFiles",
        file_delete="EpisodeFileDelete",
        container_delete="SeriesDelete",
    ),
    "radarr": _Shape(
        name="Radarr",
        container="movie",
        folder="folderPath",
        file="movieFile",
        files="movieFiles",
        renamed="renamedMovieFiles",
        file_delete="MovieFileDelete",
        container_delete="MovieDelete",
    ),
}
_WINDOWS = re.compile(r"^(?:[A-Za-z]:|\\\\)")


@dataclass(frozen=True)
class ArrFile:
    path: str  # as Sonarr or Radarr sees it
    file_id: str | None  # the episode file's or movie file's id
    previous: str | None = None  # a renamed file's old path


@dataclass(frozen=True)
class ArrEvent:
    app: ArrApp
    kind: ArrKind
    title: str  # the series or the movie
    files: tuple[ArrFile, ...] = ()  # files to decide (and queue): imported, upgraded, renamed
    gone: tuple[str, ...] = ()  # files that no longer exist: their jobs are dropped
    gone_folders: tuple[str, ...] = ()  # a deleted series or movie folder


@dataclass(frozen=True)
class ArrTest:
    app: ArrApp
    instance: str


def parse_webhook(app: ArrApp, data: Mapping[str, Any]) -> ArrEvent | ArrTest | Ignored:
    shape = SHAPES[app]
    fields = folded(data)
    event = text(fields, "eventtype")
    if not event:
        raise PayloadError(f"no eventType: this is not a {shape.name} webhook (Settings > Connect > Webhook)")
    _check_app(app, fields)
    kind = event.lower()
    if kind == "test":
        return ArrTest(app, text(fields, "instancename") or shape.name)
    container = _object(fields, shape.container.lower())
    title = _title(container) or shape.name
    if kind == "download":
        imported = [_file(shape, container, item) for item in _imported(shape, fields, event)]
        gone = [_file(shape, container, item).path for item in _objects(fields.get("deletedfiles"))]
        upgrade = bool(fields.get("isupgrade")) or bool(gone)
        return ArrEvent(app, "upgrade" if upgrade else "import", title, tuple(imported), tuple(gone))
    if kind == "rename":
        renamed = fields.get(shape.renamed.lower())
        if not isinstance(renamed, list):
            raise PayloadError(f"a Rename event without {shape.renamed}")
        moved = [_renamed(shape, container, item) for item in _objects(renamed)]
        return ArrEvent(app, "rename", title, tuple(moved), tuple(f.previous for f in moved if f.previous))
    if kind == shape.file_delete.lower():
        deleted = _object(fields, shape.file.lower())
        if not deleted:
            raise PayloadError(f"a {event} event without {shape.file}")
        return ArrEvent(app, "delete", title, gone=(_file(shape, container, deleted).path,))
    if kind == shape.container_delete.lower():
        if fields.get("deletedfiles") is not True:
            return Ignored(f"{shape.name} {event} kept the files on disk: nothing to do")
        folder = text(folded(container), shape.folder.lower())
        if not folder:
            raise PayloadError(f"a {event} event whose {shape.container} has no {shape.folder}")
        return ArrEvent(app, "delete", title, gone_folders=(folder,))
    return Ignored(
        f"{shape.name} {event} events are not handled: only Download (On Import, On Upgrade), Rename, "
        f"{shape.file_delete}, {shape.container_delete} and Test"
    )


def _check_app(app: ArrApp, fields: Mapping[str, Any]) -> None:
    """A Radarr event sent to the Sonarr URL (or the reverse) is a set-up mistake worth naming."""
    other: ArrApp = "radarr" if app == "sonarr" else "sonarr"
    mine, theirs = SHAPES[app], SHAPES[other]
    if theirs.container.lower() in fields and mine.container.lower() not in fields:
        raise PayloadError(f"this is a {theirs.name} event: point {theirs.name} at /webhooks/{other}")


def _imported(shape: _Shape, fields: Mapping[str, Any], event: str) -> list[dict[str, Any]]:
    one = _object(fields, shape.file.lower())
    if one:
        return [one]
    many = _objects(fields.get(shape.files.lower()))
    if many:
        return many
    raise PayloadError(f"a {event} event without {shape.file}")


def _file(shape: _Shape, container: Mapping[str, Any], raw: Mapping[str, Any]) -> ArrFile:
    item = folded(raw)
    path = text(item, "path")
    if not path:
        folder, relative = text(folded(container), shape.folder.lower()), text(item, "relativepath")
        if not (folder and relative):
            raise PayloadError(f"a {shape.file} with neither path nor {shape.container}.{shape.folder} + relativePath")
        path = join(folder, relative)
    return ArrFile(path, text(item, "id") or None)


def _renamed(shape: _Shape, container: Mapping[str, Any], raw: Mapping[str, Any]) -> ArrFile:
    found = _file(shape, container, raw)
    item = folded(raw)
    previous = text(item, "previouspath")
    if not previous:
        folder, relative = text(folded(container), shape.folder.lower()), text(item, "previousrelativepath")
        previous = join(folder, relative) if folder and relative else ""
    if not previous:
        raise PayloadError(f"a renamed file without previousPath: {found.path}")
    return ArrFile(found.path, found.file_id, previous)


def join(folder: str, relative: str) -> str:
    """`folder` + `relative` with the separator of the machine that wrote them (Sonarr may run on Windows)."""
    windows = bool(_WINDOWS.match(folder)) or "\\" in folder
    sep = "\\" if windows else "/"
    return folder.rstrip("/\\") + sep + relative.lstrip("/\\")


def _title(container: Mapping[str, Any]) -> str:
    item = folded(container)
    name, year = text(item, "title"), text(item, "year")
    return f"{name} ({year})" if name and year and year != "0" else name


def _object(fields: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = fields.get(name)
    return value if isinstance(value, dict) else {}


def _objects(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
