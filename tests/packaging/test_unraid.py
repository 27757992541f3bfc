"""The Unraid Community Applications template, checked against the code: well-formed in CA's format, every
variable a real setting (or one the entrypoint or the NVIDIA runtime reads) with a valid default, every path a
volume or a media folder the library lists, the port the one the image exposes, Unraid's 99:100, secrets
masked, and the GPU set up as Unraid's Nvidia-Driver plugin expects."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.packaging.dockerfile import Dockerfile
from transcriptarr.settings import Settings
from transcriptarr.shutdown import StopBudget

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "contrib" / "unraid" / "transcriptarr.xml"
SETTINGS = {name.upper() for name in Settings.model_fields}
# Variables that are no settings, and who reads them.
CONTAINER_VARIABLES = {
    "PUID": "the entrypoint (and the subtitle owner setting of the same name)",
    "PGID": "the entrypoint",
    "UMASK": "the entrypoint",
    "TZ": "the C library, for local times",
    "NVIDIA_VISIBLE_DEVICES": "the NVIDIA container runtime",
    "NVIDIA_DRIVER_CAPABILITIES": "the NVIDIA container runtime",
}
# What CA's schema (template version 2) allows.
TYPES = {"Path", "Port", "Variable", "Device", "Label"}
DISPLAYS = {"always", "always-hide", "advanced", "advanced-hide"}
SECRET = re.compile(r"KEY|TOKEN|PASSWORD|SECRET")
# The process is gone within the shutdown grace; Docker waits this much longer (exit, teardown).
STOP_MARGIN_SECONDS = 5


@pytest.fixture(scope="module")
def root() -> ET.Element:
    return ET.parse(TEMPLATE).getroot()  # raises on malformed XML


def configs(root: ET.Element, kind: str) -> list[ET.Element]:
    return [c for c in root.findall("Config") if c.get("Type") == kind]


def defaults(root: ET.Element) -> dict[str, str]:
    return {c.get("Target", ""): c.get("Default", "") for c in configs(root, "Variable")}


def test_template_is_a_version_2_container_with_what_ca_needs(root: ET.Element) -> None:
    assert root.tag == "Container" and root.get("version") == "2"
    for element in ("Name", "Repository", "Network", "WebUI", "Overview", "Category", "Support", "Project"):
        assert (root.findtext(element) or "").strip(), f"<{element}> is empty"
    for config in root.findall("Config"):
        name = config.get("Name")
        assert config.get("Type") in TYPES, f"{name}: Type {config.get('Type')}"
        assert config.get("Display") in DISPLAYS, f"{name}: Display {config.get('Display')}"
        assert config.get("Required") in ("true", "false") and config.get("Mask") in ("true", "false"), name
        assert config.get("Target") and config.get("Description"), f"{name}: Target and Description"
        # The element's text is the value Unraid fills in; keep it the default.
        assert (config.text or "") == config.get("Default", ""), f"{name}: value differs from Default"
    targets = [c.get("Target") for c in root.findall("Config")]
    assert len(targets) == len(set(targets)), "a target appears twice"


def test_every_variable_is_a_setting_or_a_container_variable_with_a_valid_default(root: ET.Element) -> None:
    values = defaults(root)
    unknown = set(values) - SETTINGS - set(CONTAINER_VARIABLES)
    assert not unknown, f"{sorted(unknown)} are no settings (transcriptarr/settings.py) nor container variables"
    # The media folders exist only on the server.
    fields = {k.lower(): v for k, v in values.items() if k in SETTINGS and v and k != "LIBRARY_PATHS"}
    Settings(_env_file=None, **fields)  # raises on a bad value
    assert re.fullmatch(r"[0-7]{3,4}", values["UMASK"]), "the entrypoint's UMASK format"


def test_users_and_secrets_follow_unraid(root: ET.Element) -> None:
    values = defaults(root)
    assert (values["PUID"], values["PGID"]) == ("99", "100"), "Unraid's nobody:users"
    for config in configs(root, "Variable"):
        secret = bool(SECRET.search(config.get("Target", "")))
        assert (config.get("Mask") == "true") == secret, f"{config.get('Target')}: Mask only and always for secrets"
    assert {"API_KEY", "BAZARR_URL", "BAZARR_API_KEY", "WHISPER_MODEL", "WHISPER_DEVICE"} <= set(values)


def test_every_path_is_a_volume_or_a_library_folder(root: ET.Element) -> None:
    dockerfile = Dockerfile.read(REPO / "Dockerfile")
    image = dockerfile.image("gpu")
    volumes = set(re.findall(r'"([^"]+)"', image.one("VOLUME").args))
    library = set(defaults(root)["LIBRARY_PATHS"].split("|"))
    paths = {c.get("Target", ""): c for c in configs(root, "Path")}
    assert volumes <= set(paths), f"mount every volume: {sorted(volumes - set(paths))}"
    for target, config in paths.items():
        assert target in volumes or target in library, f"{target}: neither a VOLUME nor in LIBRARY_PATHS"
        assert config.get("Mode") == "rw", f"{target}: the service writes there"
        assert config.get("Default", "").startswith("/mnt/user/"), target


def test_port_is_the_one_the_image_exposes(root: ET.Element) -> None:
    exposed = Dockerfile.read(REPO / "Dockerfile").image("cpu").one("EXPOSE").args
    [port] = configs(root, "Port")
    assert port.get("Target") == exposed == str(Settings.model_fields["http_port"].default)
    assert port.get("Mode") == "tcp"
    assert f"[PORT:{exposed}]" in (root.findtext("WebUI") or "")


def test_gpu_as_the_nvidia_driver_plugin_expects(root: ET.Element) -> None:
    extra = (root.findtext("ExtraParams") or "").split()
    assert "--runtime=nvidia" in extra
    assert (root.findtext("Repository") or "").endswith(":gpu"), "the runtime is for the GPU image"
    values = defaults(root)
    gpu_env = Dockerfile.read(REPO / "Dockerfile").image("gpu").env()
    for name in ("NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"):
        assert name in values and name in gpu_env, name
    assert "compute" in values["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    overview = root.findtext("Overview") or ""
    assert ":latest" in overview and "cpu" in overview, "say how to run without a GPU"


def test_stopping_leaves_time_for_running_jobs(root: ET.Element) -> None:
    extra = root.findtext("ExtraParams") or ""
    match = re.search(r"--stop-timeout[= ](\d+)", extra)
    assert match, "Docker waits 10 s by default; jobs need the shutdown grace"
    grace = float(Settings.model_fields["shutdown_grace_seconds"].default)
    assert int(match.group(1)) >= StopBudget(grace).exit_within_seconds + STOP_MARGIN_SECONDS
    assert "--hostname=" in extra, "a fixed node name across re-creations takes back its jobs at once"


def test_image_names_agree_with_the_readme(root: ET.Element) -> None:
    repository = root.findtext("Repository") or ""
    image = repository.rsplit(":", 1)[0]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"{image}:gpu" in readme and f"{image}:latest" in readme, f"README: install with {image}"
    assert f"{image}:latest" in (root.findtext("Overview") or "")
