#!/usr/bin/env bash
# Static checks for the ecs-warden systemd integration files.
#
#   systemd/check.sh /path/to/ecs-warden
#
# The unit's ExecStart= names /usr/local/bin/ecs-warden, which `systemd-analyze
# verify` requires to exist. This script therefore writes a temporary copy of
# the unit whose ExecStart= points at the binary given as $1 (any executable
# works until the daemon exists, e.g. a copy of /bin/true) and checks:
#
#   1. the unit still carries the directives the daemon depends on;
#   2. `systemd-analyze verify` exits 0 and prints NOTHING (it exits 0 on
#      warnings, so its output must be empty; no lines are filtered: on
#      Debian 12 / systemd 252 a clean unit verifies silently);
#   3. `systemd-analyze security --offline=true` gives an overall exposure
#      of 2.0 or lower (parsed from "Overall exposure level", and
#      --threshold=20 is passed as well);
#   4. ecs-warden.sysusers creates the ecs-warden user in a scratch root;
#   5. ecs-warden.tmpfiles creates /etc/ecs-warden (0750 root:ecs-warden) and
#      /etc/ecs-warden/credentials (0700 root:root) in that scratch root.
#
# Nothing is started, installed or changed on the host (systemd need not be
# PID 1), except that systemd is installed with apt-get if systemd-analyze is
# missing. The last line is always "systemd checks: N passed, N failed".
set -euo pipefail

MAX_EXPOSURE="2.0"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
unit_src="$here/ecs-warden.service"
sysusers_src="$here/ecs-warden.sysusers"
tmpfiles_src="$here/ecs-warden.tmpfiles"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
summary() { echo "systemd checks: $passed passed, $failed failed"; }

if [[ $# -ne 1 ]]; then
    echo "usage: $0 /path/to/ecs-warden" >&2
    fail "no binary path given"
    summary
    exit 2
fi

export SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat SYSTEMD_LOG_COLOR=0

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "systemd-analyze not found: installing systemd with apt-get" >&2
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends systemd
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- the binary --------------------------------------------------------------
bin="$(realpath -- "$1" 2>/dev/null || true)"
if [[ -n $bin && -f $bin && -x $bin ]]; then
    pass "binary $bin is an executable file"
else
    fail "binary '$1' is not an executable file"
    summary
    exit 1
fi
if [[ $bin =~ [[:space:]\\\$%\;] ]]; then
    fail "binary path '$bin' contains characters this script does not quote for ExecStart="
    summary
    exit 1
fi

# --- temporary unit ----------------------------------------------------------
unit="$work/ecs-warden.service"
sed -e "s|^ExecStart=/usr/local/bin/ecs-warden\\([[:space:]]\\)|ExecStart=${bin}\\1|" \
    "$unit_src" > "$unit"

# --- 1. required directives ----------------------------------------------------
required=(
    "ExecStart=${bin} run --config /etc/ecs-warden/ecs-warden.yaml"
    "Type=notify"
    "NotifyAccess=main"
    "WatchdogSec=60s"
    "Restart=on-failure"
    "RestartSec=5s"
    "TimeoutStopSec=30s"
    "ExecReload=/bin/kill -HUP \$MAINPID"
    "User=ecs-warden"
    "StateDirectory=ecs-warden"
    "RuntimeDirectory=ecs-warden"
    "LoadCredential=ecs-access-key:/etc/ecs-warden/credentials/access-key"
    "LoadCredential=ecs-secret-key:/etc/ecs-warden/credentials/secret-key"
    "LoadCredential=control-token:/etc/ecs-warden/credentials/control-token"
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"
)
missing=()
for line in "${required[@]}"; do
    grep -qxF -- "$line" "$unit" || missing+=("$line")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    pass "unit carries the ${#required[@]} required directives (ExecStart rewritten to $bin)"
else
    fail "unit lacks: $(printf '[%s] ' "${missing[@]}")"
fi

# --- 2. systemd-analyze verify: exit 0 and no output ------------------------------
rc=0
out="$(cd "$work" && systemd-analyze verify "$unit" 2>&1)" || rc=$?
if [[ $rc -eq 0 && -z $out ]]; then
    pass "systemd-analyze verify: clean (no output)"
else
    fail "systemd-analyze verify: exit $rc, output:"
    printf '%s\n' "$out" | sed 's/^/    /'
fi

# --- 3. systemd-analyze security --offline ---------------------------------------
rc=0
threshold=$(awk -v m="$MAX_EXPOSURE" 'BEGIN { printf "%d", m * 10 }')
out="$(systemd-analyze security --offline=true --threshold="$threshold" "$unit" 2>&1)" || rc=$?
score="$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' | tail -n 1)"
if [[ -z $score ]]; then
    fail "systemd-analyze security: no 'Overall exposure level' line (exit $rc):"
    printf '%s\n' "$out" | sed 's/^/    /'
else
    # Show what still costs exposure, then the score.
    printf '%s\n' "$out" | grep '^✗' | sed 's/^/    /' || true
    echo "exposure score: $score (max $MAX_EXPOSURE)"
    if awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' && [[ $rc -eq 0 ]]; then
        pass "systemd-analyze security: exposure $score <= $MAX_EXPOSURE"
    else
        fail "systemd-analyze security: exposure $score (exit $rc), above $MAX_EXPOSURE"
    fi
fi

# --- 4. sysusers in a scratch root ---------------------------------------------------
root="$work/root"
mkdir -p "$root/etc"
rc=0
out="$(systemd-sysusers --root="$root" "$sysusers_src" 2>&1)" || rc=$?
uid="$(awk -F: '$1 == "ecs-warden" { print $3 }' "$root/etc/passwd" 2>/dev/null || true)"
gid="$(awk -F: '$1 == "ecs-warden" { print $3 }' "$root/etc/group" 2>/dev/null || true)"
home="$(awk -F: '$1 == "ecs-warden" { print $6 }' "$root/etc/passwd" 2>/dev/null || true)"
if [[ $rc -eq 0 && -n $uid && -n $gid && $home == /var/lib/ecs-warden ]] \
    && ! printf '%s\n' "$out" | grep -qiE 'warn|fail|error|invalid|ignor'; then
    pass "systemd-sysusers: user ecs-warden ($uid:$gid, home $home)"
else
    fail "systemd-sysusers: exit $rc, uid='$uid' gid='$gid' home='$home', output:"
    printf '%s\n' "$out" | sed 's/^/    /'
fi

# --- 5. tmpfiles in the same scratch root ---------------------------------------------
rc=0
out="$(systemd-tmpfiles --root="$root" --create "$tmpfiles_src" 2>&1)" || rc=$?
got_etc="$(stat -c '%a %u %g' "$root/etc/ecs-warden" 2>/dev/null || echo missing)"
got_cred="$(stat -c '%a %u %g' "$root/etc/ecs-warden/credentials" 2>/dev/null || echo missing)"
if [[ $rc -eq 0 && -z $out && $got_etc == "750 0 ${gid:-?}" && $got_cred == "700 0 0" ]]; then
    pass "systemd-tmpfiles: /etc/ecs-warden 0750 root:ecs-warden, credentials 0700 root:root"
else
    fail "systemd-tmpfiles: exit $rc, /etc/ecs-warden='$got_etc' (want '750 0 ${gid:-?}'), credentials='$got_cred' (want '700 0 0'), output:"
    printf '%s\n' "$out" | sed 's/^/    /'
fi

summary
[[ $failed -eq 0 ]]
