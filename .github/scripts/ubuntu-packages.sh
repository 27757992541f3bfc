#!/usr/bin/env bash
# Installs the Makefile's Debian packages (APT_PACKAGES) on GitHub's Ubuntu runner, as root, under the names
# Ubuntu gives them, so that `make test` finds everything and installs nothing itself.
set -euo pipefail
cd "$(dirname "$0")/../.."

read -r -a debian <<<"$(sed -n 's/^APT_PACKAGES := //p' Makefile)"
if [ "${#debian[@]}" -eq 0 ]; then
    echo "ubuntu-packages.sh: no APT_PACKAGES line in the Makefile; update this script with it" >&2
    exit 1
fi

ubuntu=()
for package in "${debian[@]}"; do
    case "$package" in
        # Ubuntu ships Chromium only as a snap; the runner has Google Chrome, linked below as `chromium`.
        chromium) ;;
        # Same name; the runner's MySQL conflicts with it and is removed first.
        mariadb-server) ubuntu+=(mariadb-server) ;;
        # ffmpeg, espeak-ng, postgresql: the same names on Ubuntu.
        *) ubuntu+=("$package") ;;
    esac
done

mapfile -t mysql < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'mysql-*' 2>/dev/null | awk '$1 == "ii" {print $2}')
if [ "${#mysql[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${mysql[@]}"
    rm -rf /etc/mysql /var/lib/mysql
fi

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${ubuntu[@]}"

if ! command -v chromium >/dev/null; then
    browser="$(command -v google-chrome || command -v chromium-browser || true)"
    if [ -z "$browser" ]; then
        echo "ubuntu-packages.sh: neither chromium nor google-chrome is on this runner" >&2
        exit 1
    fi
    ln -s "$browser" /usr/local/bin/chromium
fi
