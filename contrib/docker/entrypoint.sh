#!/bin/sh
# Container entrypoint: run the command as PUID:PGID, the linuxserver.io / *arr convention.
#
# Started as root (the default): the config folder (TRANSCRIPTARR_CONFIG_DIR, default /config) and DATA_DIR
# are given to PUID:PGID (default 1000:1000), then root is dropped with setpriv (no passwd entry needed) and
# the command is exec'd with HOME set to the config folder. Media folders are never chowned: the service
# only needs to write subtitles next to the videos, so give PUID:PGID write access to them on the host.
# Started as another user (`docker run --user 1000:1000`): the command is exec'd as it is.
# UMASK (default 022, the linuxserver.io convention; 002 lets the group write too) is set before either, so
# it covers everything the service creates: the database, DATA_DIR, downloaded models and the subtitles
# (written 0666 minus the umask unless FILE_MODE is set).
#
# `docker run IMAGE status` or `IMAGE --version`: arguments that are not a program are transcriptarr's.
set -eu

config_dir="${TRANSCRIPTARR_CONFIG_DIR:-/config}"

say() {
    echo "transcriptarr-entrypoint: $*" >&2
}

if [ "$#" -eq 0 ]; then
    set -- transcriptarr run
elif ! command -v "$1" >/dev/null 2>&1; then
    set -- transcriptarr "$@"
fi

umask_value="${UMASK:-022}"
case "$umask_value" in
    [0-7][0-7][0-7] | [0-7][0-7][0-7][0-7]) umask "$umask_value" ;;
    *)
        say "UMASK must be an octal mask such as 022 or 002, got '$umask_value'"
        exit 2
        ;;
esac

# Docker publishes the port from the container's own network, so the service listens on every address there
# (outside a container it defaults to 127.0.0.1 when API_KEY is unset). HTTP_HOST set in the environment or in
# ./.env (the working folder, /config) still wins. The service warns when it is reachable without API_KEY.
if ! env | grep -qi '^HTTP_HOST=' && ! grep -Eqi '^[[:space:]]*(export[[:space:]]+)?HTTP_HOST[[:space:]]*=' .env 2>/dev/null; then
    export HTTP_HOST=0.0.0.0
fi

# The open-files soft limit up to the hard one (often 1,024 of 524,288): every HTTP connection takes one.
# The service raises it itself too; here it also covers other commands. Failing is harmless.
# shellcheck disable=SC3045 # dash, the image's /bin/sh, has ulimit -n and -H
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$(id -u)" -ne 0 ]; then
    exec "$@"
fi

puid="${PUID:-1000}"
pgid="${PGID:-1000}"
for pair in "PUID=$puid" "PGID=$pgid"; do
    case "${pair#*=}" in
        '' | *[!0-9]*)
            say "${pair%%=*} must be a number such as 1000 (see \`id\` on the host), got '${pair#*=}'"
            exit 2
            ;;
    esac
done

as_user() {
    setpriv --reuid="$puid" --regid="$pgid" --clear-groups -- "$@"
}

# Give a folder and what is in it to PUID:PGID. Only entries owned by someone else are changed, symlinks
# themselves rather than their targets, and -xdev keeps out of other mounts (a media folder mounted
# inside /config stays as it is).
take_ownership() {
    find "$1" -xdev \( ! -user "$puid" -o ! -group "$pgid" \) -exec chown -h "$puid:$pgid" {} + ||
        say "could not give $1 to $puid:$pgid; make it writable by that user on the host"
}

data_dir="${DATA_DIR:-}"
mkdir -p "$config_dir" ${data_dir:+"$data_dir"}
take_ownership "$config_dir"
if [ -n "$data_dir" ]; then
    case "$(cd "$data_dir" && pwd -P)/" in
        "$(cd "$config_dir" && pwd -P)"/*) ;; # already done with the config folder
        *) take_ownership "$data_dir" ;;
    esac
fi

# The model folder may be shared with other programs: only an empty one (a fresh volume) is given away.
model_dir="${MODEL_DIR:-}"
if [ -n "$model_dir" ] && [ -d "$model_dir" ] && ! as_user test -w "$model_dir"; then
    if [ -z "$(ls -A "$model_dir")" ]; then
        chown "$puid:$pgid" "$model_dir" || say "could not give $model_dir to $puid:$pgid"
    else
        say "MODEL_DIR $model_dir is not writable by $puid:$pgid: models cannot be downloaded into it" \
            "(fine with OFFLINE=true and models already there; otherwise chown it on the host)"
    fi
fi

export HOME="$config_dir"
exec setpriv --reuid="$puid" --regid="$pgid" --clear-groups -- "$@"
