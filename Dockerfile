# Transcriptarr container images: one Dockerfile, two targets, the same Python (3.11) and Debian in both.
#
#   docker build -t transcriptarr .                     CPU only; what a plain `docker build .` gives
#   docker build --target gpu -t transcriptarr:gpu .    NVIDIA GPU: the CPU image plus CUDA 12 cuBLAS and cuDNN 9
#
# Published images: ghcr.io/<owner>/transcriptarr:latest (CPU) and :gpu (README, "Install").
# The GPU image takes NVIDIA's libraries from PyPI (as faster-whisper documents) instead of starting from
# nvidia/cuda, whose Ubuntu 24.04 has Python 3.12: so both images run the Python the tests run.
#
# Both run `transcriptarr run` as PUID:PGID (default 1000:1000) with UMASK (default 022) through
# contrib/docker/entrypoint.sh. Volumes: /config (database, .env, spool in /config/data), /models (downloaded
# Whisper models) and your media folders, mounted at the same paths Bazarr and the media server see (e.g.
# /media/tv, /media/movies).
#
# Stopping: on SIGTERM running jobs get SHUTDOWN_GRACE_SECONDS (default 30) to finish, then go back to the
# queue. Docker waits only 10 s by default, so give it more than the grace plus half a minute:
# `docker stop -t 90`, `docker run --stop-timeout 90`, or `stop_grace_period: 90s` in compose.
#
# Settings come from the environment and from /config/.env; the environment wins, so the defaults set
# below (MODEL_DIR) are changed with -e / compose `environment:`, not in /config/.env.
# More: contrib/docker/README.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# Database drivers besides SQLite: postgresql (asyncpg), mariadb (aiomysql).
ARG EXTRAS=postgresql,mariadb
# Set by the release workflow (the tag without its v); the build fails when it is not the package's version.
ARG VERSION=""
ARG REVISION=""

# --------------------------------------------------------------------------- the dependencies, in a layer of their own
FROM ${PYTHON_IMAGE} AS deps
ARG EXTRAS
RUN python3 -m venv /opt/transcriptarr
# A stub package with the real pyproject.toml: a code change then rebuilds only the last layers.
COPY pyproject.toml README.md /tmp/deps/
RUN mkdir /tmp/deps/transcriptarr \
    && printf '__version__ = "0"\n' > /tmp/deps/transcriptarr/__init__.py \
    && /opt/transcriptarr/bin/pip install --no-cache-dir "/tmp/deps[${EXTRAS}]" \
    && /opt/transcriptarr/bin/pip uninstall --yes transcriptarr

# --------------------------------------------------------------------------- CPU: the virtual environment
FROM deps AS cpu-builder
ARG VERSION
COPY pyproject.toml README.md /src/
COPY transcriptarr /src/transcriptarr
RUN /opt/transcriptarr/bin/pip install --no-cache-dir --no-deps /src \
    && installed="$(/opt/transcriptarr/bin/transcriptarr --version)" \
    && { [ -z "${VERSION}" ] || [ "${installed}" = "transcriptarr ${VERSION}" ] \
        || { echo "VERSION=${VERSION} but the package says '${installed}'" >&2; exit 1; }; }

# --------------------------------------------------------------------------- GPU: the same plus NVIDIA's libraries
FROM deps AS gpu-builder
# The `cuda` extra of pyproject.toml: cuBLAS 12 and cuDNN 9, what CTranslate2 (faster-whisper's engine) loads.
# One folder of links to them for LD_LIBRARY_PATH, whatever the Python version in the path.
RUN /opt/transcriptarr/bin/pip install --no-cache-dir "/tmp/deps[cuda]" \
    && /opt/transcriptarr/bin/pip uninstall --yes transcriptarr \
    && mkdir /opt/transcriptarr/cuda \
    && ln -s /opt/transcriptarr/lib/python3*/site-packages/nvidia/*/lib/*.so* /opt/transcriptarr/cuda/ \
    && LD_LIBRARY_PATH=/opt/transcriptarr/cuda /opt/transcriptarr/bin/python -c \
        "import ctypes; [ctypes.CDLL(name) for name in ('libcublas.so.12', 'libcublasLt.so.12', 'libcudnn.so.9')]"
# Declared only now: a changed ARG misses the build cache of every RUN after it, and each release changes it.
ARG VERSION
COPY pyproject.toml README.md /src/
COPY transcriptarr /src/transcriptarr
RUN /opt/transcriptarr/bin/pip install --no-cache-dir --no-deps /src \
    && installed="$(/opt/transcriptarr/bin/transcriptarr --version)" \
    && { [ -z "${VERSION}" ] || [ "${installed}" = "transcriptarr ${VERSION}" ] \
        || { echo "VERSION=${VERSION} but the package says '${installed}'" >&2; exit 1; }; }

# --------------------------------------------------------------------------- what both images share
FROM ${PYTHON_IMAGE} AS runtime
# tzdata: TZ=Europe/Berlin gives local times in logs only with the zone files.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg tzdata ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY contrib/docker/entrypoint.sh /usr/local/bin/transcriptarr-entrypoint
COPY contrib/docker/healthcheck.py /usr/local/lib/transcriptarr/healthcheck.py
# The database (./transcriptarr.db), DATA_DIR (./data) and .env default to paths relative to the working
# folder /config, and logs are JSON without a terminal, so these need no ENV and /config/.env can change them
# (an ENV here would win over .env). MODEL_DIR points at the /models volume.
ENV PATH=/opt/transcriptarr/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/config \
    TRANSCRIPTARR_CONFIG_DIR=/config \
    MODEL_DIR=/models
RUN chmod 0755 /usr/local/bin/transcriptarr-entrypoint && mkdir -p /config /models
WORKDIR /config
VOLUME ["/config", "/models"]
EXPOSE 9000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python3", "/usr/local/lib/transcriptarr/healthcheck.py"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/transcriptarr-entrypoint"]
CMD ["transcriptarr", "run"]
# VERSION and REVISION change with every release: declared last, so the layers above stay cached.
ARG VERSION
ARG REVISION
# The release workflow adds org.opencontainers.image.source, url and created (docker/metadata-action).
LABEL org.opencontainers.image.title="Transcriptarr" \
    org.opencontainers.image.description="Subtitles for a whole media library with faster-whisper; a Whisper provider for Bazarr" \
    org.opencontainers.image.licenses="MIT" \
    org.opencontainers.image.version="${VERSION}" \
    org.opencontainers.image.revision="${REVISION}"

# --------------------------------------------------------------------------- GPU image: docker build --target gpu .
FROM runtime AS gpu
# What the NVIDIA container runtime reads (nvidia/cuda images set the same); `--gpus all` or Unraid's
# `--runtime=nvidia` with NVIDIA_VISIBLE_DEVICES=<GPU UUID> picks the GPUs.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    LD_LIBRARY_PATH=/opt/transcriptarr/cuda
COPY --from=gpu-builder /opt/transcriptarr /opt/transcriptarr

# --------------------------------------------------------------------------- CPU image, the last stage: `docker build .`
FROM runtime AS cpu
COPY --from=cpu-builder /opt/transcriptarr /opt/transcriptarr
