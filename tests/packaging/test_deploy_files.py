"""The compose files, the systemd unit and the deployment docs, checked against the code so they cannot drift:
every variable they set is a setting with a valid value, every program they run exists, the media folders
are mounted alike in Transcriptarr, Bazarr and Jellyfin, and stopping leaves time for the shutdown grace.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.packaging.dockerfile import Dockerfile
from transcriptarr.settings import Settings
from transcriptarr.shutdown import StopBudget

REPO = Path(__file__).resolve().parents[2]
CONTRIB = REPO / "contrib"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.cpu.yml")
UNIT = CONTRIB / "transcriptarr.service"
SETTINGS = {name.upper() for name in Settings.model_fields}
# Names the deployment files and docs use that are not settings, and why.
NOT_SETTINGS = {
    "TZ": "the container's time zone, a libc variable",
    "UMASK": "read by the container entrypoint only",
    "TRANSCRIPTARR_CONFIG_DIR": "read by the container entrypoint only",
    "PYTHON_IMAGE": "a build argument",
    "EXTRAS": "a build argument",
    "VERSION": "a build argument",
    "REVISION": "a build argument",
    "LD_LIBRARY_PATH": "where the GPU image's CTranslate2 finds NVIDIA's libraries",
}
# The process is gone within the shutdown grace; the container manager waits this much longer (exit, teardown).
STOP_MARGIN_SECONDS = 5
SERVICES = ("transcriptarr", "bazarr", "jellyfin")


def load_compose(name: str) -> dict[str, Any]:
    data = yaml.safe_load((CONTRIB / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), f"{name}: no services"
    return data


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "write environment: as a mapping"
    # ${NAME:-} is filled by compose from contrib/.env; empty is what an unset key gives.
    return {str(k): re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}


def seconds(duration: str) -> float:
    """Compose's `1m30s` / `90s` / `2m` durations."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", duration)
    assert parts and duration, f"not a duration: {duration}"
    hours, minutes, secs = (float(p) if p else 0.0 for p in parts.groups())
    return hours * 3600 + minutes * 60 + secs


def check_settings(values: dict[str, str], where: str) -> None:
    unknown = set(values) - SETTINGS - set(NOT_SETTINGS)
    assert not unknown, f"{where}: {sorted(unknown)} are no settings (transcriptarr/settings.py)"
    # Validate the values too; the media folders exist only on a real host.
    fields = {k.lower(): v for k, v in values.items() if k in SETTINGS and k != "LIBRARY_PATHS"}
    Settings(_env_file=None, **fields)


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_file_runs_the_image_with_real_settings(name: str) -> None:
    compose = load_compose(name)
    assert set(SERVICES) <= set(compose["services"]), f"{name}: expected {SERVICES}"
    service = compose["services"]["transcriptarr"]
    env = environment(service)
    check_settings(env, f"{name} transcriptarr environment")
    commented = re.findall(r"^\s*#\s*([A-Z][A-Z0-9_]+):\s", (CONTRIB / name).read_text(encoding="utf-8"), re.M)
    check_settings(dict.fromkeys(commented, ""), f"{name} commented examples")

    stages = Dockerfile.read(REPO / "Dockerfile").stages
    build = service["build"]
    assert (CONTRIB / build["context"] / "Dockerfile").resolve() == REPO / "Dockerfile"
    assert build["target"] in stages and build["target"] in service["image"], build
    assert "healthcheck" not in service, "the image's health check is used as it is"
    assert env["TRANSCRIPTARR_MODE"] == "standalone,provider"
    assert {"PUID", "PGID", "TZ", "LIBRARY_PATHS", "BAZARR_URL", "BAZARR_API_KEY", "JELLYFIN_URL"} <= set(env)
    port = env.get("HTTP_PORT", "9000")
    assert any(str(p).split(":")[-1] == port for p in service["ports"]), f"{name}: port {port} not published"

    grace = float(env.get("SHUTDOWN_GRACE_SECONDS", Settings.model_fields["shutdown_grace_seconds"].default))
    stop = seconds(str(service.get("stop_grace_period", "10s")))
    assert stop >= StopBudget(grace).exit_within_seconds + STOP_MARGIN_SECONDS, (
        f"{name}: stop_grace_period {stop:.0f} s; the stop takes up to {grace:.0f} s"
    )

    gpu = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    if build["target"] == "gpu":
        assert env["WHISPER_DEVICE"] == "cuda"
        assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in gpu), gpu
    else:
        assert env["WHISPER_DEVICE"] == "cpu" and not gpu


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_mounts_the_media_alike_in_all_three(name: str) -> None:
    services = load_compose(name)["services"]

    def media(service: str) -> dict[str, str]:
        mounts = {}
        for volume in services[service]["volumes"]:
            host, container = str(volume).split(":")[:2]
            if container.startswith("/media/"):
                mounts[container] = host
        return mounts

    mounts = {service: media(service) for service in SERVICES}
    assert set(mounts["transcriptarr"]) == {"/media/tv", "/media/movies"}
    assert mounts["bazarr"] == mounts["transcriptarr"] == mounts["jellyfin"], mounts
    library = environment(services["transcriptarr"])["LIBRARY_PATHS"].split("|")
    assert set(library) == set(mounts["transcriptarr"])
    volumes = {str(v).split(":")[1] for v in services["transcriptarr"]["volumes"]}
    assert {"/config", "/models"} <= volumes


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_urls_name_the_services_and_their_ports(name: str) -> None:
    services = load_compose(name)["services"]
    env = environment(services["transcriptarr"])
    for variable in ("BAZARR_URL", "JELLYFIN_URL"):
        url = urlsplit(env[variable])
        assert url.hostname in services, f"{variable}: {url.hostname} is no service of {name}"
        ports = [str(p).split(":")[-1] for p in services[url.hostname].get("ports", [])]
        assert str(url.port) in ports, f"{variable}: {url.hostname} does not listen on {url.port}"
        for key in ("PUID", "PGID"):
            assert environment(services[url.hostname])[key] == env[key], f"{url.hostname} writes as another user"


def unit_lines() -> list[tuple[str, str]]:
    pairs = []
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            pairs.append((key, value))
    return pairs


def test_systemd_unit_runs_the_console_script_with_real_settings() -> None:
    pairs = unit_lines()
    values = dict(pairs)
    program = values["ExecStart"].split()
    assert program == ["/opt/transcriptarr/bin/transcriptarr", "run"]
    assert values["EnvironmentFile"] == "/etc/transcriptarr/transcriptarr.env"
    assert values["User"] == "transcriptarr" and values["KillSignal"] == "SIGTERM"
    assert values["Restart"] == "on-failure" and values["ReadWritePaths"]
    env = dict(value.split("=", 1) for key, value in pairs if key == "Environment")
    check_settings(env, "transcriptarr.service Environment=")
    grace = float(Settings.model_fields["shutdown_grace_seconds"].default)
    assert float(values["TimeoutStopSec"]) >= StopBudget(grace).exit_within_seconds + STOP_MARGIN_SECONDS


def test_systemd_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if not analyze:  # an extra check on machines with systemd; the unit's fields are checked above in any case
        pytest.skip("systemd-analyze is not installed")
    # verify wants an executable ExecStart: point it at this environment's console script.
    script = Path(sys.executable).parent / "transcriptarr"
    unit = tmp_path / "transcriptarr.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/transcriptarr/bin/transcriptarr", str(script)))

    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


@pytest.mark.parametrize("doc", ["bazarr.md", "docker/README.md"])
def test_deployment_docs_name_only_real_settings(doc: str) -> None:
    text = (CONTRIB / doc).read_text(encoding="utf-8")
    named = set(re.findall(r"`([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]{4,})(?:=[^`]*)?`", text))
    unknown = named - SETTINGS - set(NOT_SETTINGS)
    assert not unknown, f"{doc} names {sorted(unknown)}, which are no settings"
