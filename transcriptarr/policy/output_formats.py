"""The output formats, one entry each: adding a format is one entry here plus its renderer.

Everything else reads this table: the settings (SUBTITLE_FORMAT's choices), the renderer
(subtitles/formats.py has one function per entry and refuses to load without it), the
provider API (/asr's `output` choices and Content-Type, api/output.py), OpenAI's routes
(the Content-Type of srt and vtt, api/openai_render.py) and the OpenAPI document's enum.
Plain data in the policy layer, so that the settings may read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal


@dataclass(frozen=True)
class OutputFormat:
    name: str  # also the file extension
    content_type: str | None = None  # the Content-Type the provider API answers it with
    sidecar: bool = False  # SUBTITLE_FORMAT may name it: written next to a video
    provider: bool = False  # /asr?output= may name it (whisper-asr-webservice's outputs)

    def __post_init__(self) -> None:
        if self.provider and self.content_type is None:
            raise ValueError(f"output format {self.name!r} is served by the provider API but has no content_type")


FORMATS: Final = (
    OutputFormat("srt", "text/plain", sidecar=True, provider=True),
    OutputFormat("vtt", "text/vtt", sidecar=True, provider=True),
    OutputFormat("ass", sidecar=True),
    OutputFormat("txt", "text/plain", provider=True),
    OutputFormat("tsv", "text/tab-separated-values", provider=True),
    OutputFormat("json", "application/json", provider=True),
    OutputFormat("lrc"),  # lyrics of an audio file (AUDIO_LYRICS), named by policy/naming.py
)

BY_NAME: Final = MappingProxyType({entry.name: entry for entry in FORMATS})
ALL_FORMATS: Final = tuple(BY_NAME)
SIDECAR_FORMATS: Final = tuple(entry.name for entry in FORMATS if entry.sidecar)
PROVIDER_OUTPUTS: Final = tuple(entry.name for entry in FORMATS if entry.provider)

# SUBTITLE_FORMAT's type: a Literal of the sidecar formats, so that pydantic's check and message
# come from the table; mypy cannot read a Literal built at run time, so it sees a str.
if TYPE_CHECKING:
    SidecarFormat = str
else:
    SidecarFormat = Literal[SIDECAR_FORMATS]


def content_type(name: str) -> str:
    """The Content-Type of a format the provider API serves (KeyError for another)."""
    found = BY_NAME[name].content_type
    if found is None:
        raise KeyError(f"output format {name!r} has no content_type in policy/output_formats.py")
    return found
