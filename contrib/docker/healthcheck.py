#!/usr/bin/env python3
"""Container health check: exit 0 when this node's `GET /health` answers 200, 1 otherwise.

Standard library only (the slim image has no curl) and no Transcriptarr import, so a check
every 30 s costs next to nothing. HTTP_PORT, HTTP_HOST and HTTP_ENABLED are read the way the
service reads them: the environment first (any case), then `.env` in the working folder
(/config in the image). `/health` is always at the root, whatever HTTP_PATH_PREFIX says.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT_SECONDS = 5.0
_FALSE = ("0", "false", "no", "off", "f", "n")


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=value lines of a .env file (upper-cased keys); quotes and ` # comments` removed."""
    values: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return values
    for raw in lines:
        line = raw.strip().removeprefix("export ").strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if value[:1] in ("'", '"') and value.endswith(value[0]) and len(value) > 1:
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        values[key.upper()] = value
    return values


def setting(name: str, default: str, dotenv: dict[str, str]) -> str:
    for key, value in os.environ.items():
        if key.upper() == name:
            return value
    return dotenv.get(name, default)


def health_url(dotenv: dict[str, str]) -> str:
    host = setting("HTTP_HOST", "0.0.0.0", dotenv).strip() or "0.0.0.0"  # noqa: S104 - the service's default
    port = setting("HTTP_PORT", "9000", dotenv).strip()
    if host in ("0.0.0.0", "*"):  # noqa: S104 - every IPv4 address includes loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"http://{host}:{port}/health"


def check(url: str) -> tuple[bool, str]:
    """(healthy, one line saying why)."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310 - our own http URL
            return True, f"healthy: {url} answered {answer.status}"
    except urllib.error.HTTPError as exc:
        detail = ""
        try:
            error = json.loads(exc.read()).get("database", {}).get("error")
            detail = f" (database: {error})" if error else ""
        except (ValueError, AttributeError, OSError):
            pass
        return False, f"unhealthy: {url} answered {exc.code}{detail}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"unhealthy: no answer from {url}: {reason}"


def main() -> int:
    dotenv = read_dotenv(Path(".env"))
    if setting("HTTP_ENABLED", "true", dotenv).strip().lower() in _FALSE:
        print("HTTP_ENABLED is false: no HTTP server to check")
        return 0
    healthy, line = check(health_url(dotenv))
    print(line)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
