#!/usr/bin/env bash
# Builds ecs-warden_<version>_amd64.deb with dpkg-deb, offline, from the static release binaries.
#
#   packaging/build-deb.sh BIN_DIR [OUT_DIR]
#
# BIN_DIR holds ecs-warden and ecs-sim from
#   swift build -c release --static-swift-stdlib --scratch-path .build-static
# (the Swift runtime is inside the binaries; the package depends only on libc, libstdc++,
# libsqlite3, zlib and systemd). OUT_DIR defaults to .build-deb/. Prints the .deb's path last.
#
# One source of truth: the version is WardenRuntime.version in Sources/ (the changelog's top
# entry must match it); the unit is systemd/ecs-warden.service with its ExecStart= rewritten from
# /usr/local/bin (the README's manual install) to /usr/bin (the package); sysusers and tmpfiles
# files are copied as they are; the example config is config/ecs-warden.yaml.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
[[ $# -ge 1 ]] || { echo "usage: $0 BIN_DIR [OUT_DIR]" >&2; exit 2; }
bin_dir="$(cd "$1" && pwd)"
out_dir="${2:-$repo/.build-deb}"
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
for b in ecs-warden ecs-sim; do
    [[ -x $bin_dir/$b ]] || { echo "no executable $bin_dir/$b" >&2; exit 1; }
done
for t in dpkg-deb dpkg-shlibdeps strip; do
    command -v "$t" >/dev/null || { echo "$t missing (apt-get install dpkg-dev binutils)" >&2; exit 1; }
done

# --- version ------------------------------------------------------------------------------
upstream="$(sed -n 's/.*static let version = "\([^"]*\)".*/\1/p' "$repo/Sources/WardenDaemon/WardenRuntime.swift" | head -n 1)"
[[ -n $upstream ]] || { echo "no version in Sources/WardenDaemon/WardenRuntime.swift" >&2; exit 1; }
version="$(sed -n '1s/^ecs-warden (\([^)]*\)).*/\1/p' "$here/debian/changelog")"
if [[ ${version%-*} != "$upstream" ]]; then
    echo "packaging/debian/changelog's top entry is $version, the source's version is $upstream: add a changelog entry" >&2
    exit 1
fi
arch=amd64
deb="$out_dir/ecs-warden_${version}_${arch}.deb"

# Reproducible: file times clamped to the last commit's time.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}"

stage="$(mktemp -d "${TMPDIR:-/tmp}/ecs-warden-deb.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
umask 022
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/systemd/system" "$root/usr/lib/sysusers.d" \
    "$root/usr/lib/tmpfiles.d" "$root/etc/ecs-warden" "$root/usr/share/doc/ecs-warden"

# --- files --------------------------------------------------------------------------------
for b in ecs-warden ecs-sim; do
    install -m 0755 "$bin_dir/$b" "$root/usr/bin/$b"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/$b"
done
unit="$root/usr/lib/systemd/system/ecs-warden.service"
sed 's|^ExecStart=/usr/local/bin/ecs-warden |ExecStart=/usr/bin/ecs-warden |' "$repo/systemd/ecs-warden.service" >"$unit"
if [[ $(grep -c '^ExecStart=/usr/bin/ecs-warden run ' "$unit") != 1 ]] || grep -q '/usr/local/bin' "$unit"; then
    echo "systemd/ecs-warden.service: expected one 'ExecStart=/usr/local/bin/ecs-warden run …' line to rewrite" >&2
    exit 1
fi
chmod 0644 "$unit"
install -m 0644 "$repo/systemd/ecs-warden.sysusers" "$root/usr/lib/sysusers.d/ecs-warden.conf"
install -m 0644 "$repo/systemd/ecs-warden.tmpfiles" "$root/usr/lib/tmpfiles.d/ecs-warden.conf"
# 0644 in the archive; postinst makes it root:ecs-warden 0640 with dpkg-statoverride.
install -m 0644 "$repo/config/ecs-warden.yaml" "$root/etc/ecs-warden/ecs-warden.yaml"
install -m 0644 "$here/debian/copyright" "$root/usr/share/doc/ecs-warden/copyright"
gzip -9nc "$here/debian/changelog" >"$root/usr/share/doc/ecs-warden/changelog.Debian.gz"
gzip -9nc "$repo/README.md" >"$root/usr/share/doc/ecs-warden/README.md.gz"
chmod 0644 "$root/usr/share/doc/ecs-warden/"*
# lintian's findings that stay, each with its reason (packaging/debian/lintian-overrides).
install -D -m 0644 "$here/debian/lintian-overrides" "$root/usr/share/lintian/overrides/ecs-warden"

# --- control ------------------------------------------------------------------------------
# Depends from the binaries' ELF NEEDED entries, as dpkg-shlibdeps computes them for Debian.
mkdir -p "$stage/src/debian"
cp "$here/debian/control.in" "$stage/src/debian/control.in"
printf 'Source: ecs-warden\n\nPackage: ecs-warden\nArchitecture: amd64\n' >"$stage/src/debian/control"
shlibs="$(cd "$stage/src" && dpkg-shlibdeps -O "$root/usr/bin/ecs-warden" "$root/usr/bin/ecs-sim" 2>"$stage/shlibdeps.err" \
    | sed -n 's/^shlibs:Depends=//p')" || { cat "$stage/shlibdeps.err" >&2; exit 1; }
[[ -n $shlibs ]] || { echo "dpkg-shlibdeps found no dependencies" >&2; cat "$stage/shlibdeps.err" >&2; exit 1; }
# Packed relative relocations (the release link's -z pack-relative-relocs) need glibc 2.36's
# loader: a version need (GLIBC_ABI_DT_RELR), not a symbol, so dpkg-shlibdeps does not count it.
if readelf -V "$root/usr/bin/ecs-warden" "$root/usr/bin/ecs-sim" | grep -c 'GLIBC_ABI_DT_RELR' >/dev/null; then  # -c: reads to the end (no SIGPIPE under pipefail)
    libc_min="$(printf '%s\n' "$shlibs" | sed -n 's/.*libc6 (>= \([^)]*\)).*/\1/p')"
    if [[ -z $libc_min ]]; then
        shlibs="libc6 (>= 2.36), $shlibs"
    elif dpkg --compare-versions "$libc_min" lt 2.36; then
        shlibs="$(printf '%s\n' "$shlibs" | sed "s/libc6 (>= [^)]*)/libc6 (>= 2.36)/")"
    fi
fi
installed_size="$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)"
sed -e "s|@VERSION@|$version|" -e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@DEPENDS@|$shlibs|" \
    "$here/debian/control.in" >"$root/DEBIAN/control"
install -m 0644 "$here/debian/conffiles" "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$here/debian/$s" "$root/DEBIAN/$s"; done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f ! -path './etc/*' -print | sed 's|^\./||' | LC_ALL=C sort \
    | xargs md5sum >DEBIAN/md5sums)
chmod 0644 "$root/DEBIAN/md5sums"

# --- build --------------------------------------------------------------------------------
rm -f "$deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "built $(du -h "$deb" | cut -f1) ($(stat -c %s "$deb") bytes), installed size ${installed_size} KiB: $deb" >&2
echo "$deb"
