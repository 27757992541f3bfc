"""The multipart form of OpenAI's audio routes: a `file` part streamed to the spool, small text fields in memory.

The spool rules are those of api/intake.py (Bazarr's uploads): the file is
written under a `.part` name, hashed on the way, limited to MAX_UPLOAD_MB
(413), abandoned when the client stalls (408), and whatever goes wrong no
partial file is left behind. Unlike Bazarr, OpenAI's clients send their
options as form fields next to the file, in any order, so those are kept.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import structlog
from aiohttp import BodyPartReader, web

from transcriptarr.api.openai_errors import OpenAIError

log = structlog.get_logger(__name__)

FILE_FIELD = "file"
_READ_SIZE = 1 << 20
# Boundaries, part headers and the text fields around the file.
_FRAMING_SLACK = 1 << 20
# Text fields are a few words (a prompt is at most ~224 tokens to Whisper); more is not a form of ours.
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 64
# Errors of the spool's disk (not of the connection, which raises OSErrors too).
_SPOOL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


@dataclass(frozen=True)
class SpooledFile:
    path: Path
    size: int
    sha256: str
    filename: str  # as the client named it ("file" when it gave no name)
    seconds: float  # from the first read to the last byte on disk


@dataclass(frozen=True)
class Form:
    fields: Mapping[str, tuple[str, ...]]
    file: SpooledFile

    def first(self, name: str) -> str | None:
        """The field's first value, stripped; None when absent or blank."""
        values = self.fields.get(name, ())
        value = values[0].strip() if values else ""
        return value or None

    def every(self, *names: str) -> list[str]:
        """Every non-blank value given under any of `names` (arrays: `name[]` repeated)."""
        return [value.strip() for name in names for value in self.fields.get(name, ()) if value.strip()]


class _Spool:
    """The file part on its way to disk: hashed and written in a thread, so the event loop keeps reading."""

    def __init__(self, folder: Path) -> None:
        self.final = folder / f"upload-{uuid.uuid4().hex}"
        self.partial = self.final.with_name(self.final.name + ".part")
        self.hash = hashlib.sha256()
        self.size = 0
        self._handle: IO[bytes] | None = None

    async def open(self) -> None:
        def create() -> IO[bytes]:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            return self.partial.open("xb")

        self._handle = await asyncio.to_thread(create)

    async def write(self, data: bytes) -> None:
        handle = self._handle
        assert handle is not None
        self.size += len(data)

        def absorb() -> None:
            self.hash.update(data)
            handle.write(data)

        await asyncio.to_thread(absorb)

    async def finish(self) -> None:
        await self._close()
        await asyncio.to_thread(self.partial.replace, self.final)

    async def abandon(self) -> None:
        await self._close()
        await asyncio.to_thread(self.partial.unlink, missing_ok=True)

    async def _close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            await asyncio.to_thread(handle.close)


async def receive_form(request: web.Request, *, spool_dir: Path, max_bytes: int, idle_seconds: float) -> Form:
    """Read the whole form; the `file` part goes to a new file in `spool_dir`.

    Raises OpenAIError: 400 for a body that is not such a form (no file, a field
    too long), 408 when the client stalls, 413 above `max_bytes`, 503 when the
    spool cannot be written.
    """
    declared = request.content_length
    if declared is not None and declared > max_bytes + _FRAMING_SLACK:
        raise OpenAIError(413, _too_large(max_bytes, declared), param=FILE_FIELD)
    try:
        reader = await request.multipart()
    except (AssertionError, KeyError, ValueError):
        raise OpenAIError(
            400, "the body must be multipart/form-data with the audio in a 'file' part", param=FILE_FIELD
        ) from None
    fields: dict[str, list[str]] = {}
    spool: _Spool | None = None
    filename = FILE_FIELD
    started = time.monotonic()
    try:
        async with asyncio.timeout(idle_seconds) as idle:

            def still_sending() -> None:
                idle.reschedule(asyncio.get_running_loop().time() + idle_seconds)

            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or not part.name:
                    await part.release()  # a nested multipart or a nameless part: not ours
                    continue
                if part.name == FILE_FIELD and spool is None:
                    filename = part.filename or FILE_FIELD
                    spool = _Spool(spool_dir)
                    await spool.open()
                    while chunk := await part.read_chunk(_READ_SIZE):
                        still_sending()
                        await spool.write(chunk)
                        if spool.size > max_bytes:
                            raise OpenAIError(413, _too_large(max_bytes, declared), param=FILE_FIELD)
                    continue
                if sum(map(len, fields.values())) >= MAX_FIELDS:
                    raise OpenAIError(400, f"the form has more than {MAX_FIELDS} fields; send only OpenAI's fields")
                fields.setdefault(part.name, []).append(await _text(part, still_sending))
        if spool is None:
            raise OpenAIError(400, "no 'file' part in the form; send the audio as the 'file' field", param=FILE_FIELD)
        await spool.finish()
    except BaseException as exc:
        if spool is not None:
            await spool.abandon()
        if isinstance(exc, OpenAIError) or not isinstance(exc, Exception):
            raise  # ours already, or a cancellation
        raise _as_openai_error(request, exc, spool_dir, idle_seconds) from None
    file = SpooledFile(spool.final, spool.size, spool.hash.hexdigest(), filename, time.monotonic() - started)
    return Form({name: tuple(values) for name, values in fields.items()}, file)


async def _text(part: BodyPartReader, still_sending: Callable[[], None]) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(_READ_SIZE):
        still_sending()
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise OpenAIError(
                400, f"the form field {part.name!r} is longer than {MAX_FIELD_BYTES // 1024} KiB", param=part.name
            )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise OpenAIError(400, f"the form field {part.name!r} is not UTF-8 text", param=part.name) from None


def _as_openai_error(request: web.Request, exc: Exception, spool_dir: Path, idle_seconds: float) -> OpenAIError:
    """What the client is told when reading the form failed."""
    if isinstance(exc, TimeoutError):
        return OpenAIError(408, f"the upload stalled: no data for {idle_seconds:g} s")
    if isinstance(exc, OSError) and exc.errno in _SPOOL_ERRNOS:
        log.error("spool_write_failed", folder=str(spool_dir), error=exc.strerror or str(exc), errno=exc.errno)
        return OpenAIError(
            503,
            f"cannot store the upload in {spool_dir} ({exc.strerror or exc}); free space there "
            "or set DATA_DIR to a writable folder on a bigger disk",
        )
    if request.transport is None or request.transport.is_closing():
        return OpenAIError(400, "the client closed the connection during the upload")
    return OpenAIError(400, f"malformed multipart body: {exc}")


def _too_large(max_bytes: int, declared: int | None) -> str:
    limit = f"{max_bytes / (1024 * 1024):g} MiB"
    said = f" (Content-Length {declared} bytes)" if declared is not None else ""
    return f"the upload is larger than MAX_UPLOAD_MB={limit}{said}"
