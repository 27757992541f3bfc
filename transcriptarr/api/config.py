"""The HTTP layer's settings: what the routes need, derived from Settings once (and overridable in tests)."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transcriptarr.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: Any) -> tuple[Network, ...]:
    """CIDR list as text ("192.168.1.0/24, 10.0.0.5") or a sequence; a bare address is a /32 (or /128)."""
    if value is None:
        return ()
    if isinstance(value, tuple) and all(isinstance(item, Network) for item in value):
        return value
    items = value.replace(";", ",").split(",") if isinstance(value, str) else list(value)
    return tuple(ipaddress.ip_network(str(item).strip(), strict=False) for item in items if str(item).strip())


def normalize_prefix(value: str | None) -> str:
    """'' or '/whisper' (leading slash, no trailing slash)."""
    text = (value or "").strip().strip("/")
    return f"/{text}" if text else ""


@dataclass(frozen=True)
class ApiConfig:
    path_prefix: str = ""
    max_upload_bytes: int = 4096 * 1024 * 1024
    # Interim `100 Continue` every this many seconds while a Bazarr request waits for its job.
    keepalive_seconds: float = 10.0
    # Longest a provider request waits for its job before answering 504 (the job goes on).
    max_wait_seconds: float = 240 * 60.0
    # How often a waiting request reads its job from the database (other nodes send no events).
    poll_seconds: float = 5.0
    allowed_networks: tuple[Network, ...] = ()
    # detect-language looks at no more than this much of the upload.
    detect_max_seconds: float = 300.0
    # An upload that sends nothing for this long is abandoned (408).
    upload_idle_seconds: float = 60.0
    # /health and /api/status answers are shared by concurrent callers and reused this long.
    snapshot_ttl_seconds: float = 0.5
    spool_dir: Path = Path("./data/spool")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ApiConfig:
        values: dict[str, Any] = {
            "path_prefix": settings.http_path_prefix,
            "max_upload_bytes": settings.max_upload_mb * 1024 * 1024,
            "keepalive_seconds": settings.provider_keepalive_seconds,
            "max_wait_seconds": settings.max_job_minutes * 60.0,
            "allowed_networks": settings.provider_allowed_networks,
            "detect_max_seconds": settings.detect_language_max_seconds,
            "spool_dir": settings.data_dir / "spool",
        }
        values.update(overrides)
        values["path_prefix"] = normalize_prefix(values["path_prefix"])
        values["allowed_networks"] = parse_networks(values["allowed_networks"])
        return cls(**values)

    def replace(self, **changes: Any) -> ApiConfig:
        return dataclasses.replace(self, **changes)
