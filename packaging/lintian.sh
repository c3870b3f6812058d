#!/usr/bin/env bash
# lintian on the package: clean, or every remaining finding overridden with its reason in
# packaging/debian/lintian-overrides (shipped in the package, shown here as "O:" lines).
#
#   packaging/lintian.sh ecs-warden_<version>_amd64.deb
#
# Fails on any error or warning that is not overridden. Last line: "lintian: …".
set -uo pipefail
deb="${1:?usage: $0 DEB}"
command -v lintian >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null
}
# The gate: without --show-overrides (with it, overridden errors also set the exit status).
lintian --fail-on error,warning "$deb" >/dev/null 2>&1
rc=$?
out="$(lintian --show-overrides "$deb" 2>&1 | grep -v '^running with root privileges')"
printf '%s\n' "$out" | grep -E '^[A-Z]: ' || true
e=$(printf '%s\n' "$out" | grep -c '^E: ' || true)
w=$(printf '%s\n' "$out" | grep -c '^W: ' || true)
o=$(printf '%s\n' "$out" | grep -c '^O: ' || true)
echo "lintian $(lintian --version | awk '{ print $2 }'): $e errors, $w warnings, $o overridden (packaging/debian/lintian-overrides), exit $rc"
((rc == 0 && e == 0 && w == 0))
