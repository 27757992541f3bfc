# Transcriptarr container images: one Dockerfile, two targets.
#
#   docker build --target gpu -t transcriptarr:gpu .   NVIDIA GPU (CUDA 12 + cuDNN 9); the default target
#   docker build --target cpu -t transcriptarr:cpu .   CPU only, on python:3.11-slim-bookworm, much smaller
#
# Both run `transcriptarr run` as PUID:PGID (default 1000:1000) through contrib/docker/entrypoint.sh.
# Volumes: /config (database, .env, spool in /config/data), /models (downloaded Whisper models) and your
# media folders, mounted at the same paths Bazarr and the media server see (e.g. /media/tv, /media/movies).
#
# Stopping: on SIGTERM running jobs get SHUTDOWN_GRACE_SECONDS (default 30) to finish, then go back to the
# queue. Docker waits only 10 s by default, so give it more than the grace plus half a minute:
# `docker stop -t 90`, `docker run --stop-timeout 90`, or `stop_grace_period: 90s` in compose.
#
# Settings come from the environment and from /config/.env; the environment wins, so the defaults set
# below (DATABASE_URL, DATA_DIR, MODEL_DIR, LOG_FORMAT, HTTP_PORT) are changed with -e / compose
# `environment:`, not in /config/.env. More: contrib/docker/README.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# CTranslate2 4.5 to 4.7 (faster-whisper's engine) load cuBLAS 12 and cuDNN 9; 4.8 needs cuBLAS only.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
# Database drivers besides SQLite: postgresql (asyncpg), mariadb (aiomysql).
ARG EXTRAS=postgresql,mariadb

# --------------------------------------------------------------------------- CPU: build the virtual environment
FROM ${PYTHON_IMAGE} AS cpu-builder
ARG EXTRAS
RUN python3 -m venv /opt/transcriptarr
# Dependencies first, in a layer of their own (a stub package with the real pyproject.toml): a code change
# then rebuilds only the last layer.
COPY pyproject.toml README.md /tmp/deps/
RUN mkdir /tmp/deps/transcriptarr \
    && printf '__version__ = "0"\n' > /tmp/deps/transcriptarr/__init__.py \
    && /opt/transcriptarr/bin/pip install --no-cache-dir "/tmp/deps[${EXTRAS}]" \
    && /opt/transcriptarr/bin/pip uninstall --yes transcriptarr \
    && rm -rf /tmp/deps
COPY pyproject.toml README.md /src/
COPY transcriptarr /src/transcriptarr
RUN /opt/transcriptarr/bin/pip install --no-cache-dir --no-deps /src \
    && /opt/transcriptarr/bin/transcriptarr --version

# --------------------------------------------------------------------------- CPU image
FROM ${PYTHON_IMAGE} AS cpu
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg tzdata ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=cpu-builder /opt/transcriptarr /opt/transcriptarr
COPY contrib/docker/entrypoint.sh /usr/local/bin/transcriptarr-entrypoint
COPY contrib/docker/healthcheck.py /usr/local/lib/transcriptarr/healthcheck.py
# Keep from here on identical in the cpu and gpu stages (tests/packaging/test_container.py checks it).
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

# --------------------------------------------------------------------------- GPU: build the virtual environment
# Built on the runtime image itself so that the venv's Python (Ubuntu 24.04: 3.12) is the one it runs on.
FROM ${CUDA_IMAGE} AS gpu-builder
ARG EXTRAS
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/transcriptarr
COPY pyproject.toml README.md /tmp/deps/
RUN mkdir /tmp/deps/transcriptarr \
    && printf '__version__ = "0"\n' > /tmp/deps/transcriptarr/__init__.py \
    && /opt/transcriptarr/bin/pip install --no-cache-dir "/tmp/deps[${EXTRAS}]" \
    && /opt/transcriptarr/bin/pip uninstall --yes transcriptarr \
    && rm -rf /tmp/deps
COPY pyproject.toml README.md /src/
COPY transcriptarr /src/transcriptarr
RUN /opt/transcriptarr/bin/pip install --no-cache-dir --no-deps /src \
    && /opt/transcriptarr/bin/transcriptarr --version

# --------------------------------------------------------------------------- GPU image (the default target)
FROM ${CUDA_IMAGE} AS gpu
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 ffmpeg tzdata ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=gpu-builder /opt/transcriptarr /opt/transcriptarr
COPY contrib/docker/entrypoint.sh /usr/local/bin/transcriptarr-entrypoint
COPY contrib/docker/healthcheck.py /usr/local/lib/transcriptarr/healthcheck.py
# Keep from here on identical in the cpu and gpu stages (tests/packaging/test_container.py checks it).
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
