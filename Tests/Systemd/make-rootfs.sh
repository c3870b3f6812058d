#!/usr/bin/env bash
# A Debian 12 (bookworm) root file system that boots a real systemd 252 in systemd-nspawn, for
# Tests/Systemd/boot-test.sh. Cached: it is built once per machine (and per package list below)
# under CACHE_DIR (default: <repo>/.ci-cache, ignored by git) and reused; a new machine builds it
# again (~1-2 min from the Debian mirror named in /etc/apt/sources.list(.d)).
#
#   Tests/Systemd/make-rootfs.sh            prints the root file system's path on its last line
#
# The packages are what the boot test needs inside: systemd as PID 1, dbus for systemctl, curl for
# the metrics, and the run-time libraries of the static release binary (libsqlite3-0, libstdc++6,
# zlib1g) so that `apt-get install ./ecs-warden_….deb` needs no network.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
CACHE_DIR="${CACHE_DIR:-$repo/.ci-cache}"
SUITE=bookworm
INCLUDE=systemd,systemd-sysv,dbus,curl,ca-certificates,procps,libsqlite3-0,libstdc++6,zlib1g

# The mirror: the first Debian (not -security) URI apt on this machine uses.
mirror="${DEBIAN_MIRROR:-}"
if [[ -z $mirror ]]; then
    mirror="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }' \
        | grep -v -- '-security' | grep -E '/debian/?$' | head -n 1 || true)"
fi
if [[ -z $mirror ]]; then
    mirror="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' \
        | grep -v -- '-security' | grep -E '/debian/?$' | head -n 1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

key="$(printf '%s\n' "$SUITE" "$INCLUDE" minbase | sha256sum | cut -c1-12)"
root="$CACHE_DIR/rootfs-$SUITE-$key"
if [[ -f $root/.ecs-warden-rootfs-complete ]]; then
    echo "root file system cached: $root" >&2
    echo "$root"
    exit 0
fi

command -v debootstrap >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
mkdir -p "$CACHE_DIR"
tmp="$root.partial"
rm -rf "$tmp"
t0=$(date +%s)
echo "debootstrap $SUITE from $mirror into $tmp" >&2
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$tmp" "$mirror" >"$CACHE_DIR/debootstrap-$key.log" 2>&1 || {
    tail -n 20 "$CACHE_DIR/debootstrap-$key.log" >&2
    exit 1
}
# A machine id and hostname of its own; no root password needed (commands go through nsenter).
: >"$tmp/etc/machine-id"
echo ecs-warden-boot >"$tmp/etc/hostname"
# Nothing to fetch at boot; keep the boot short and its journal quiet.
rm -f "$tmp/var/cache/apt/archives/"*.deb
touch "$tmp/.ecs-warden-rootfs-complete"
rm -rf "$root"
mv "$tmp" "$root"
echo "root file system built in $(($(date +%s) - t0)) s: $root" >&2
echo "$root"
