#!/usr/bin/env bash
# The unit under a real systemd 252: a Debian 12 root file system booted with systemd-nspawn.
#
#   Tests/Systemd/boot-test.sh BIN_DIR DEB
#
# BIN_DIR holds the static release binaries (ecs-warden, ecs-sim; `swift build -c release
# --static-swift-stdlib`), DEB the package from packaging/build-deb.sh. Run as root on Debian 12
# (installs systemd-container and debootstrap if missing). The root file system is built once by
# Tests/Systemd/make-rootfs.sh and cached (CACHE_DIR, default <repo>/.ci-cache); each run boots a
# fresh copy of it. The container shares the host's network: ecs-sim runs on the host on
# 127.0.0.1 and the daemon in the container reaches it there.
#
# What the README says is what runs: the fenced sh blocks of its "Install as a systemd service"
# section are extracted and executed inside the container (a wrong step fails the test):
#   A. the manual install (steps 1-5: binary in /usr/local/bin, unit, sysusers, tmpfiles, config,
#      credentials typed in through `read`, enable --now): start, active, metrics, stop; then
#      everything it installed is removed again;
#   B. the package: "Install from the package" (apt-get install ./ecs-warden_….deb), which must
#      start nothing, then steps 3-5, and: start returns (READY) quickly, active, STATUS=, metrics
#      from the simulator through the credentials, systemd-analyze security <= 2.0 in the booted
#      system, reload (counted, same process), bad config on reload (rejected, counted, old one
#      stays), watchdog restart of a SIGSTOPped daemon (through a drop-in WatchdogSec=10s, the
#      `systemctl edit` way, so the test does not wait 60 s), clean stop, the journal (no seccomp
#      noise, no secret, no unexpected warning), upgrade over itself (a running service is
#      restarted, config/credentials/state kept), remove (state kept), purge (state gone).
# BOOT_TEST_MANUAL=0 skips A. BOOT_TEST_README=FILE reads the steps from another file (to see a
# wrong step fail). KEEP_WORK=1 keeps the scratch directory.
# Last line: "systemd boot checks: N passed, N failed"; exit status non-zero on any failure.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
README="${BOOT_TEST_README:-$repo/README.md}"
MAX_EXPOSURE=2.0
START_SECONDS=10     # `systemctl start` must return (READY=1) within this
STOP_SECONDS=15      # the README promises "gone within 15 s"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
note() { echo "NOTE: $*"; }
indent() { sed 's/^/    /'; }
summary() { echo "systemd boot checks: $passed passed, $failed failed"; }
t0=$(date +%s)
elapsed() { echo "$(($(date +%s) - t0)) s"; }

if [[ $# -ne 2 ]]; then
    echo "usage: $0 BIN_DIR DEB" >&2
    fail "usage"
    summary
    exit 2
fi
BIN_DIR="$(cd "$1" 2>/dev/null && pwd || echo "$1")"
DEB="$(realpath -- "$2" 2>/dev/null || echo "$2")"

work=""
sim_pid=""
nspawn_pid=""
cpid=""
cleanup() {
    if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
        # SIGTERM makes systemd-nspawn ask the container's systemd to power off.
        kill -TERM "$nspawn_pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$nspawn_pid" 2>/dev/null
        wait "$nspawn_pid" 2>/dev/null
    fi
    if [[ -n $sim_pid ]] && kill -0 "$sim_pid" 2>/dev/null; then
        kill -TERM "$sim_pid" 2>/dev/null
        wait "$sim_pid" 2>/dev/null
    fi
    if [[ -n $work ]]; then
        if [[ ${KEEP_WORK:-0} == 1 ]]; then echo "scratch directory kept: $work"; else rm -rf "$work"; fi
    fi
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

abort() {
    fail "$*"
    if [[ -n $cpid ]]; then
        echo "--- journal of the container (last 30 lines)"
        C journalctl -b --no-pager -n 30 -o short-monotonic 2>&1 | indent
    fi
    summary
    exit 1
}

# ------------------------------------------------------------------ tools and inputs
need=()
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]} > 0)); then
    echo "installing ${need[*]} with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >/dev/null \
        || abort "cannot install ${need[*]}"
fi
for b in ecs-warden ecs-sim; do
    [[ -x $BIN_DIR/$b ]] || abort "no executable $BIN_DIR/$b"
done
if ldd "$BIN_DIR/ecs-warden" 2>/dev/null | grep -q 'libswiftCore'; then
    abort "$BIN_DIR/ecs-warden links the Swift runtime dynamically: build with --static-swift-stdlib"
fi
[[ -f $DEB ]] || abort "no package file '$DEB'"
pass "inputs: static binaries in $BIN_DIR, package $(basename "$DEB") ($(du -h "$DEB" | cut -f1))"

rootfs_started=$(date +%s)
rootfs="$(bash "$here/make-rootfs.sh" | tail -n 1)" || abort "no Debian 12 root file system (Tests/Systemd/make-rootfs.sh failed)"
[[ -f $rootfs/.ecs-warden-rootfs-complete ]] || abort "root file system '$rootfs' is incomplete"
work="$(mktemp -d "${TMPDIR:-/var/tmp}/ecs-warden-boot.XXXXXX")"
root="$work/root"
cp -a --reflink=auto "$rootfs" "$root" || abort "cannot copy the root file system"
pass "root file system ready in $(($(date +%s) - rootfs_started)) s (cached copy: $rootfs)"

# ------------------------------------------------------------------ the README's steps
# Every ```sh block of the section "## Install as a systemd service", named by the bold heading
# (**…**) above it: "1. Binary", "2. Unit, user, directories", …, "Install from the package".
readme_dir="$work/readme"
mkdir -p "$readme_dir"
awk -v dir="$readme_dir" '
    /^## / { insec = ($0 == "## Install as a systemd service"); next }
    !insec { next }
    /^\*\*[^*]+\*\*/ { h = $0; sub(/^\*\*/, "", h); sub(/\*\*.*/, "", h); heading = h; next }
    /^```sh$/ { inblock = 1; n++; f = sprintf("%s/%02d.sh", dir, n); print heading > (dir "/" sprintf("%02d", n) ".heading"); next }
    /^```$/ && inblock { inblock = 0; close(f); next }
    inblock { print > f }
' "$README"
block() { # block HEADING: the path of the sh block under that bold heading (first one)
    local h
    for h in "$readme_dir"/*.heading; do
        [[ -f $h ]] || continue
        if [[ $(cat "$h") == "$1" ]]; then echo "${h%.heading}.sh"; return 0; fi
    done
    return 1
}
steps_ok=1
for h in "Install from the package" "1. Binary" "2. Unit, user, directories" "3. Configuration" "4. Credentials" "5. Enable and start"; do
    block "$h" >/dev/null || { steps_ok=0; fail "README: no sh block under **$h** in the install section"; }
done
((steps_ok)) && pass "README: the install section's sh blocks extracted ($(ls "$readme_dir"/*.sh | wc -l) blocks)"
# The README's build command must be the build under test (the container has no toolchain).
build_line="$(grep -E '^swift build' "$(block "1. Binary")" 2>/dev/null || true)"
if [[ $build_line == "swift build -c release --static-swift-stdlib" ]]; then
    pass "README step 1 builds what is tested here: '$build_line'"
else
    fail "README step 1 builds '$build_line'; the tested binary is 'swift build -c release --static-swift-stdlib' (a binary without the static stdlib needs the Swift toolchain on the host)"
fi

# ------------------------------------------------------------------ the simulator on the host
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
AK="BOOTAK$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
SK="boot-sk-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
"$BIN_DIR/ecs-sim" --port 0 --access-key "$AK" --secret-key "$SK" \
    --project-id "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" --servers-per-project 20 --scheduled-share 0 >"$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 1 60); do
    grep -q '^projects ' "$work/sim.log" 2>/dev/null && break
    kill -0 "$sim_pid" 2>/dev/null || break
    sleep 0.5
done
sim_url="$(sed -n 's|^ecs-sim listening on \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' "$work/sim.log" | head -n 1)"
project_id="$(sed -n 's|^projects [0-9]*: \([0-9a-f]\{32\}\).*|\1|p' "$work/sim.log" | head -n 1)"
[[ -n $sim_url && -n $project_id ]] || abort "ecs-sim did not start: $(tail -n 5 "$work/sim.log")"
pass "ecs-sim on the host: $sim_url, project $project_id"

metrics_port=$(free_port)
control_port=$(free_port)
while [[ $control_port == "$metrics_port" ]]; do control_port=$(free_port); done
metrics_url="http://127.0.0.1:$metrics_port"
# The configuration an operator writes: secrets only as {credential: NAME}.
write_config() {
    cat >"$1" <<EOF
listen:
  metrics: "127.0.0.1:$metrics_port"
  control: "127.0.0.1:$control_port"
  control_token: {credential: control-token}
accounts:
  - name: main
    access_key: {credential: ecs-access-key}
    secret_key: {credential: ecs-secret-key}
regions:
  - name: eu-west-0
    endpoint: "$sim_url"
projects:
  - name: boot-test
    id: $project_id
    account: main
    region: eu-west-0
loops:
  quota: {interval: 5s}
  stuck: {interval: 5s}
  schedule: {interval: 10s}
  jobs: {interval: 5s}
  flavors: {interval: 5s}
EOF
}
write_config "$work/ecs-warden.yaml"
"$BIN_DIR/ecs-warden" check-config "$work/ecs-warden.yaml" >/dev/null 2>&1 || abort "the test's configuration does not pass check-config"
printf 'listen:\n  metrics: "127.0.0.1:%s"\nno_such_key: true\n' "$metrics_port" >"$work/bad.yaml"

# ------------------------------------------------------------------ boot
boot_started=$(date +%s)
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0 SYSTEMD_NSPAWN_TMPFS_TMP=0 systemd-nspawn --quiet --register=no --keep-unit \
    --console=pipe -D "$root" -b >"$work/console.log" 2>&1 </dev/null &
nspawn_pid=$!
for _ in $(seq 1 100); do
    for c in $(pgrep -P "$nspawn_pid" 2>/dev/null); do
        [[ $(cat "/proc/$c/comm" 2>/dev/null) == systemd ]] && cpid=$c
    done
    [[ -n $cpid ]] && break
    kill -0 "$nspawn_pid" 2>/dev/null || break
    sleep 0.1
done
[[ -n $cpid ]] || abort "systemd-nspawn did not start systemd: $(tail -n 10 "$work/console.log")"
# C COMMAND...: runs a command inside the container (all its namespaces), with a clean environment.
C() {
    nsenter -t "$cpid" -a -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 DEBIAN_FRONTEND=noninteractive "$@"
}
# Until the bus is up, systemctl cannot connect: retry, then wait for the boot to finish.
state=""
for _ in $(seq 1 120); do
    state="$(C timeout 60 systemctl is-system-running --wait 2>&1)"
    [[ $state == *"connect to bus"* || $state == *"System has not been booted"* || -z $state ]] || break
    sleep 0.5
done
ver="$(C systemctl --version | head -n 1)"
if [[ $state == running || $state == degraded ]]; then
    pass "booted $ver in $(($(date +%s) - boot_started)) s (system $state)"
    [[ $state == degraded ]] && C systemctl --failed --no-legend --plain 2>&1 | indent
else
    abort "the container did not boot: is-system-running says '$state'"
fi

# ------------------------------------------------------------------ helpers for the service
show() { C systemctl show ecs-warden -p "$1" --value 2>/dev/null; }
metric() { # metric NAME{LABELS}: its value on /metrics, empty when absent
    curl -fsS -m 3 "$metrics_url/metrics" 2>/dev/null | awk -v m="$1" 'index($0, m) == 1 { print $2; exit }'
}
wait_until() { # wait_until SECONDS COMMAND...: true once COMMAND succeeds (polled every 0.5 s)
    local deadline=$(($(date +%s) + $1))
    shift
    while (($(date +%s) < deadline)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}
quota_ok() { [[ -n $(metric 'ecs_warden_loop_last_success_timestamp_seconds{loop="quota"}') ]]; }
run_block() { # run_block HEADING [STDIN-FILE]: the README's block, as root, in /src of the container
    local f
    f="$(block "$1")" || return 1
    # The build happened outside (no toolchain inside): its line is checked above and skipped here.
    grep -v '^swift build' "$f" >"$root/src/step.sh"
    C bash -e -c 'cd /src && bash -e /src/step.sh' <"${2:-/dev/null}" >"$work/step.log" 2>&1
}
# The operator's working directory: the checkout's systemd/ files, the binary where the README's
# build puts it, the configuration and the package.
mkdir -p "$root/src/.build/release" "$root/src/systemd"
cp "$repo/systemd/ecs-warden.service" "$repo/systemd/ecs-warden.sysusers" "$repo/systemd/ecs-warden.tmpfiles" "$root/src/systemd/"
cp "$work/ecs-warden.yaml" "$root/src/ecs-warden.yaml"
cp "$work/bad.yaml" "$root/src/bad.yaml"
printf '%s\n%s\n' "$AK" "$SK" >"$work/typed-secrets"
start_timed() { # start_timed BLOCK-HEADING: runs the block, sets start_s
    local s e
    s=$(date +%s%N)
    run_block "$1"
    local rc=$?
    e=$(date +%s%N)
    start_s=$(awk -v d=$((e - s)) 'BEGIN { printf "%.2f", d / 1e9 }')
    return $rc
}

# ------------------------------------------------------------------ A. the manual install
if [[ ${BOOT_TEST_MANUAL:-1} == 1 ]] && ((steps_ok)); then
    echo "--- A. manual install, the README's steps 1-5 ($(elapsed))"
    cp "$BIN_DIR/ecs-warden" "$root/src/.build/release/ecs-warden"
    ok=1
    for h in "1. Binary" "2. Unit, user, directories" "3. Configuration"; do
        if run_block "$h"; then :; else ok=0; fail "README step '$h' failed in the container:"; indent <"$work/step.log"; fi
    done
    if run_block "4. Credentials" "$work/typed-secrets"; then :; else ok=0; fail "README step '4. Credentials' failed:"; indent <"$work/step.log"; fi
    ((ok)) && pass "README steps 1-4 ran as root in the booted system (binary, unit, sysusers, tmpfiles, config, credentials typed in)"
    if start_timed "5. Enable and start"; then
        if [[ $(show ActiveState) == active ]] && awk -v s="$start_s" -v m="$START_SECONDS" 'BEGIN { exit !(s <= m) }'; then
            pass "manual install: step 5 (enable --now) returned in ${start_s} s with the service active (READY=1 received)"
        else
            fail "manual install: step 5 returned in ${start_s} s, ActiveState=$(show ActiveState) SubState=$(show SubState) Result=$(show Result)"
            C journalctl -u ecs-warden -b --no-pager -n 15 -o cat | indent
        fi
    else
        fail "README step '5. Enable and start' failed:"
        indent <"$work/step.log"
        C journalctl -u ecs-warden -b --no-pager -n 15 -o cat | indent
    fi
    if wait_until 30 quota_ok; then
        pass "manual install: /metrics served from 127.0.0.1:$metrics_port with a successful quota pass against ecs-sim (credentials reached the daemon)"
    else
        fail "manual install: no successful quota pass on $metrics_url/metrics within 30 s"
    fi
    if C timeout 30 systemctl stop ecs-warden && [[ $(show Result) == success ]]; then
        pass "manual install: stopped cleanly (Result=success)"
    else
        fail "manual install: stop: ActiveState=$(show ActiveState) Result=$(show Result)"
    fi
    # Back to a machine that never saw ecs-warden (the user included), for the package.
    C bash -c 'systemctl disable ecs-warden --quiet; rm -f /usr/local/bin/ecs-warden /usr/local/lib/systemd/system/ecs-warden.service \
        /usr/local/lib/sysusers.d/ecs-warden.conf /usr/local/lib/tmpfiles.d/ecs-warden.conf; rm -rf /etc/ecs-warden /var/lib/ecs-warden;
        userdel ecs-warden; getent group ecs-warden >/dev/null && groupdel ecs-warden; systemctl daemon-reload; systemctl reset-failed ecs-warden 2>/dev/null; true' \
        >"$work/undo.log" 2>&1
    if C test ! -e /usr/local/lib/systemd/system/ecs-warden.service && ! C getent passwd ecs-warden >/dev/null; then
        pass "manual install undone (files, user, directories) before the package"
    else
        fail "could not undo the manual install:"
        indent <"$work/undo.log"
    fi
fi

# ------------------------------------------------------------------ B. the package
echo "--- B. the package ($(elapsed))"
cp "$DEB" "$root/src/"
rm -f "$root/src/.build/release/ecs-warden"
deb_name="$(basename "$DEB")"
pkg_block="$(block "Install from the package" 2>/dev/null || true)"
if [[ -n $pkg_block ]] && ! grep -q -- "$deb_name" "$pkg_block"; then
    fail "README 'Install from the package' names $(grep -o 'ecs-warden_[^ ]*\.deb' "$pkg_block" | head -n 1), the package built is $deb_name"
fi
if run_block "Install from the package"; then
    pass "README 'Install from the package': $(grep -m1 . "$pkg_block") (exit 0)"
else
    indent <"$work/step.log"
    abort "the package did not install"
fi
version="$(C dpkg-query -W -f '${Version}' ecs-warden 2>/dev/null)"
act="$(show ActiveState)"
ena="$(C systemctl is-enabled ecs-warden 2>/dev/null)"
if [[ $act == inactive && $ena == disabled ]]; then
    pass "installed $version: the service is neither started nor enabled (no credentials yet)"
else
    fail "after installation the service is $act / $ena (it must not start before the operator's credentials)"
fi
got="$(C bash -c 'getent passwd ecs-warden | cut -d: -f6,7; stat -c "%a %U:%G" /etc/ecs-warden /etc/ecs-warden/credentials /etc/ecs-warden/ecs-warden.yaml; grep "^ExecStart=" /usr/lib/systemd/system/ecs-warden.service; test -x /usr/bin/ecs-sim && echo ecs-sim' 2>&1 | tr '\n' '|')"
want="/var/lib/ecs-warden:/usr/sbin/nologin|750 root:ecs-warden|700 root:root|640 root:ecs-warden|ExecStart=/usr/bin/ecs-warden run --config /etc/ecs-warden/ecs-warden.yaml|ecs-sim|"
if [[ $got == "$want" ]]; then
    pass "package: user ecs-warden, /etc/ecs-warden 0750 root:ecs-warden, credentials/ 0700, example config 0640 root:ecs-warden, unit on /usr/bin/ecs-warden, ecs-sim"
else
    fail "package layout: got '$got', want '$want'"
fi

echo "--- steps 3-5 of the README on the package ($(elapsed))"
for h in "3. Configuration"; do
    run_block "$h" || { fail "README step '$h' failed:"; indent <"$work/step.log"; }
done
run_block "4. Credentials" "$work/typed-secrets" || { fail "README step '4. Credentials' failed:"; indent <"$work/step.log"; }
token="$(cat "$root/etc/ecs-warden/credentials/control-token" 2>/dev/null)"
if [[ $(cat "$root/etc/ecs-warden/credentials/access-key" 2>/dev/null) == "$AK" && ${#token} -eq 48 ]] \
    && [[ $(C stat -c '%a %U' /etc/ecs-warden/credentials/access-key /etc/ecs-warden/credentials/secret-key /etc/ecs-warden/credentials/control-token | sort -u) == "600 root" ]]; then
    pass "credentials written the README's way: three files 0600 root, the typed AK/SK, a 48-character token"
else
    fail "credentials: $(C ls -l /etc/ecs-warden/credentials 2>&1 | tr '\n' ' ')"
fi
if start_timed "5. Enable and start"; then
    if [[ $(show ActiveState) == active ]] && awk -v s="$start_s" -v m="$START_SECONDS" 'BEGIN { exit !(s <= m) }'; then
        pass "systemctl enable --now returned in ${start_s} s (<= ${START_SECONDS} s) with the service active: READY=1"
    else
        fail "start: returned in ${start_s} s, ActiveState=$(show ActiveState) Result=$(show Result)"
    fi
else
    fail "README step '5. Enable and start' failed:"
    indent <"$work/step.log"
    C journalctl -u ecs-warden -b --no-pager -n 20 -o cat | indent
    abort "the packaged service did not start"
fi
sub="$(show SubState)"
[[ $sub == running ]] && pass "active (running), MainPID $(show MainPID)" || fail "SubState=$sub"
status_text="$(show StatusText)"
[[ -n $status_text ]] && pass "STATUS=: '$status_text'" || fail "no STATUS= text (systemctl show -p StatusText)"
if wait_until 30 quota_ok; then
    req="$(curl -fsS -m 3 "$metrics_url/metrics" | grep -c '^ecs_warden_api_requests_total{.*code="200"' || true)"
    pass "/metrics on 127.0.0.1:$metrics_port: a successful quota pass against ecs-sim, signed with the credentials ($req operation(s) answered 200)"
else
    fail "no successful quota pass on $metrics_url/metrics within 30 s"
    C journalctl -u ecs-warden -b --no-pager -n 15 -o cat | indent
fi
sec="$(C systemd-analyze security ecs-warden 2>&1)"
score="$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\).*/\1/p' | tail -n 1)"
if [[ -n $score ]] && awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
    pass "systemd-analyze security ecs-warden in the booted system: $score (<= $MAX_EXPOSURE)"
else
    fail "systemd-analyze security: '${score:-no score}'"
    printf '%s\n' "$sec" | tail -n 5 | indent
fi
limits="$(C cat "/proc/$(show MainPID)/limits" 2>/dev/null | awk '/Max nice priority/ { print $4 "/" $5 }')"
echo "    (the unit asks for LimitNICE=$(show LimitNICE); the service got RLIMIT_NICE soft/hard $limits)"

echo "--- reload ($(elapsed))"
pid="$(show MainPID)"
applied0="$(metric 'ecs_warden_config_reloads_total{result="applied"}')"
rejected0="$(metric 'ecs_warden_config_reloads_total{result="rejected"}')"
C systemctl reload ecs-warden
applied_plus() { [[ $(metric 'ecs_warden_config_reloads_total{result="applied"}') == $((${applied0:-0} + 1)) ]]; }
if wait_until 10 applied_plus && [[ $(show ActiveState) == active && $(show MainPID) == "$pid" ]]; then
    pass "systemctl reload: still active, same process ($pid), ecs_warden_config_reloads_total{result=\"applied\"} ${applied0:-0} -> $((${applied0:-0} + 1))"
else
    fail "reload: ActiveState=$(show ActiveState) MainPID=$(show MainPID) (was $pid), applied=$(metric 'ecs_warden_config_reloads_total{result="applied"}') (was $applied0)"
fi
C install -m 0640 -o root -g ecs-warden /src/bad.yaml /etc/ecs-warden/ecs-warden.yaml
C systemctl reload ecs-warden
rejected_plus() { [[ $(metric 'ecs_warden_config_reloads_total{result="rejected"}') == $((${rejected0:-0} + 1)) ]]; }
if wait_until 10 rejected_plus && [[ $(show ActiveState) == active && $(show MainPID) == "$pid" ]] && quota_ok; then
    line="$(C journalctl -u ecs-warden -b --no-pager -o cat --since '-20s' | grep -m1 -i 'no_such_key' || true)"
    pass "bad config on reload: rejected (counted), still active in the same process, the old config serves /metrics; journal: '${line:-?}'"
else
    fail "bad reload: ActiveState=$(show ActiveState) MainPID=$(show MainPID) (was $pid), rejected=$(metric 'ecs_warden_config_reloads_total{result="rejected"}') (was $rejected0)"
fi
C install -m 0640 -o root -g ecs-warden /src/ecs-warden.yaml /etc/ecs-warden/ecs-warden.yaml
C systemctl reload ecs-warden
wait_until 10 bash -c "[[ \$(curl -fsS -m 3 $metrics_url/metrics | awk '/^ecs_warden_config_reloads_total\\{result=\"applied\"\\}/ { print \$2 }') == $((${applied0:-0} + 2)) ]]" \
    && pass "the good config reloaded again (applied $((${applied0:-0} + 2)))" || fail "the good config did not reload"

echo "--- watchdog ($(elapsed))"
# A drop-in the `systemctl edit` way: the same unit with a 10 s watchdog instead of 60 s.
mkdir -p "$root/etc/systemd/system/ecs-warden.service.d"
printf '[Service]\nWatchdogSec=10s\n' >"$root/etc/systemd/system/ecs-warden.service.d/boot-test-watchdog.conf"
C systemctl daemon-reload
C systemctl restart ecs-warden
pid="$(show MainPID)"
restarts0="$(show NRestarts)"
wd="$(show WatchdogUSec)"
sleep 12   # more than one watchdog period: a live daemon is not restarted
if [[ $(show MainPID) == "$pid" && $(show NRestarts) == "$restarts0" ]]; then
    pass "WatchdogUSec=$wd: a live daemon keeps pinging (same process after 12 s)"
else
    fail "the live daemon was restarted: MainPID $(show MainPID) (was $pid), NRestarts $(show NRestarts) (was $restarts0)"
fi
C kill -STOP "$pid"
frozen_at=$(date +%s)
restarted() { local p; p="$(show MainPID)"; [[ $(show NRestarts) -gt $restarts0 && $p != 0 && $p != "$pid" && $(show ActiveState) == active ]]; }
if wait_until 90 restarted; then
    took=$(($(date +%s) - frozen_at))
    reason="$(C journalctl -u ecs-warden -b --no-pager -o cat --since "-$((took + 5))s" | grep -m1 -i 'watchdog' || true)"
    pass "SIGSTOPped daemon restarted by the watchdog after ${took} s (NRestarts $restarts0 -> $(show NRestarts), new MainPID $(show MainPID)); journal: '$reason'"
else
    fail "SIGSTOPped daemon not restarted within 90 s: ActiveState=$(show ActiveState) NRestarts=$(show NRestarts) MainPID=$(show MainPID)"
    C kill -CONT "$pid" 2>/dev/null
fi
rm -rf "$root/etc/systemd/system/ecs-warden.service.d"
C systemctl daemon-reload
wait_until 30 quota_ok || true

echo "--- stop ($(elapsed))"
s=$(date +%s%N)
C timeout 40 systemctl stop ecs-warden
stop_s=$(awk -v d=$(($(date +%s%N) - s)) 'BEGIN { printf "%.2f", d / 1e9 }')
res="$(show Result)/$(show ExecMainCode)/$(show ExecMainStatus)"
if [[ $(show ActiveState) == inactive && $res == success/1/0 ]] && awk -v s="$stop_s" -v m="$STOP_SECONDS" 'BEGIN { exit !(s <= m) }'; then
    pass "systemctl stop: clean in ${stop_s} s (Result=success, exited 0)"
else
    fail "stop: ${stop_s} s, ActiveState=$(show ActiveState), Result/ExecMainCode/ExecMainStatus=$res"
fi

echo "--- the journal ($(elapsed))"
C journalctl -b --no-pager -o cat -u ecs-warden >"$work/unit-journal.txt" 2>&1
C journalctl -b --no-pager -o verbose >"$work/journal-verbose.txt" 2>&1
C journalctl -b --no-pager -o short-monotonic -u ecs-warden -p warning >"$work/unit-warnings.txt" 2>&1
n_lines=$(wc -l <"$work/unit-journal.txt")
seccomp="$(grep -c 'Failed to set thread priority.*errno=1$' "$work/unit-journal.txt" || true)"
eacces="$(grep -c 'Failed to set thread priority.*errno=13$' "$work/unit-journal.txt" || true)"
other_prio="$(grep 'Failed to set thread priority' "$work/unit-journal.txt" | grep -cv 'errno=1[3]\?$' || true)"
if ((seccomp == 0 && other_prio == 0)); then
    pass "journal: no seccomp refusal from the Swift runtime ('Failed to set thread priority … errno=1': 0 of $n_lines lines)"
else
    fail "journal: $seccomp 'Failed to set thread priority … errno=1' (seccomp) line(s), $other_prio other"
    grep -m3 'Failed to set thread priority' "$work/unit-journal.txt" | indent
fi
if ((eacces == 0)); then
    pass "journal: no 'Failed to set thread priority … errno=13' either (LimitNICE=-4 in effect)"
elif [[ ${limits%%/*} != 24 ]]; then
    note "journal: $eacces 'Failed to set thread priority … errno=13' line(s): here the service manager could not raise RLIMIT_NICE to 24 (the service got $limits: PID 1 of this machine has no CAP_SYS_RESOURCE), so the runtime's nice -2/-4 requests were refused by the kernel, not by the filter"
else
    fail "journal: $eacces 'Failed to set thread priority … errno=13' line(s) although RLIMIT_NICE is $limits"
fi
leaks=()
for s in "$AK" "$SK" "$token"; do
    [[ -n $s ]] && grep -qF -- "$s" "$work/journal-verbose.txt" && leaks+=("${s:0:4}…")
done
if ((${#leaks[@]} == 0)); then
    pass "journal: no secret (AK, SK, control token) in any field of any entry of the boot ($(grep -c '^    MESSAGE=' "$work/journal-verbose.txt") entries)"
else
    fail "journal: secrets found: ${leaks[*]}"
fi
# Warnings and errors the operator sees: only those this test caused on purpose.
expected='no_such_key|rejected|reload|[Ww]atchdog|SIGABRT|code=dumped|code=killed|Failed with result|Main process exited|Scheduled restart|-- No entries --|Failed to set thread priority.*errno=13$'
unexpected="$(grep -v '^-- ' "$work/unit-warnings.txt" | grep -Ev -- "$expected" || true)"
if [[ -z $unexpected ]]; then
    pass "journal: every warning or error of the unit was caused by the test (bad config, watchdog): $(grep -vc '^-- ' "$work/unit-warnings.txt") line(s)"
else
    fail "journal: warnings or errors the operator did not need:"
    printf '%s\n' "$unexpected" | head -n 15 | indent
fi

echo "--- upgrade, remove, purge ($(elapsed))"
C systemctl start ecs-warden
pid="$(show MainPID)"
sum_before="$(C md5sum /etc/ecs-warden/ecs-warden.yaml /etc/ecs-warden/credentials/access-key /etc/ecs-warden/credentials/control-token 2>&1)"
if C bash -c "cd /src && apt-get install -y -q --reinstall -o Dpkg::Options::=--force-confold ./$deb_name" >"$work/upgrade.log" 2>&1; then
    sum_after="$(C md5sum /etc/ecs-warden/ecs-warden.yaml /etc/ecs-warden/credentials/access-key /etc/ecs-warden/credentials/control-token 2>&1)"
    newpid="$(show MainPID)"
    perms="$(C stat -c '%a %U:%G' /etc/ecs-warden/ecs-warden.yaml /etc/ecs-warden 2>&1 | tr '\n' ' ')"
    if [[ $(show ActiveState) == active && $newpid != "$pid" && $newpid != 0 && $sum_before == "$sum_after" && $perms == "640 root:ecs-warden 750 root:ecs-warden " ]] \
        && C test -s /var/lib/ecs-warden/"$(C ls /var/lib/ecs-warden | head -n 1)"; then
        pass "upgrade over itself: the running service was restarted on the new files (MainPID $pid -> $newpid), config, credentials and state kept, modes kept ($perms)"
    else
        fail "upgrade: ActiveState=$(show ActiveState), MainPID $pid -> $newpid, config/credentials same: $([[ $sum_before == "$sum_after" ]] && echo yes || echo no), modes: $perms"
    fi
else
    fail "apt-get install --reinstall failed:"
    tail -n 15 "$work/upgrade.log" | indent
fi
wait_until 30 quota_ok && pass "after the upgrade: /metrics served again" || fail "after the upgrade: no /metrics"
if C apt-get remove -y -q ecs-warden >"$work/remove.log" 2>&1; then
    st="$(C dpkg-query -W -f '${db:Status-Abbrev}' ecs-warden 2>/dev/null | tr -d ' ')"
    kept="$(C bash -c 'ls /var/lib/ecs-warden | wc -l; test -f /etc/ecs-warden/ecs-warden.yaml && echo config; ls /etc/ecs-warden/credentials | wc -l' 2>&1 | tr '\n' ' ')"
    if [[ $st == rc && $(show LoadState) == not-found && $(show ActiveState) != active ]] && C test ! -e /usr/bin/ecs-warden \
        && [[ $kept =~ ^[1-9][0-9]*\ config\ 3\ $ ]]; then
        pass "remove: stopped, binary and unit gone, state kept (/var/lib/ecs-warden: ${kept%% *} file(s)), config and 3 credentials kept (dpkg status rc)"
    else
        fail "remove: dpkg status '$st', LoadState=$(show LoadState), ActiveState=$(show ActiveState), kept: '$kept'"
    fi
else
    fail "apt-get remove failed:"
    tail -n 15 "$work/remove.log" | indent
fi
if C apt-get purge -y -q ecs-warden >"$work/purge.log" 2>&1; then
    left="$(C bash -c 'ls -d /var/lib/ecs-warden /etc/ecs-warden /etc/systemd/system/multi-user.target.wants/ecs-warden.service /usr/lib/systemd/system/ecs-warden.service 2>/dev/null; dpkg-statoverride --list | grep ecs-warden; dpkg-query -W ecs-warden 2>/dev/null' 2>&1)"
    if [[ -z $left ]]; then
        pass "purge: state, config, credentials, enablement link and statoverride gone (the system user stays, as Debian does)"
    else
        fail "purge left: $(printf '%s' "$left" | tr '\n' ' ')"
    fi
else
    fail "apt-get purge failed:"
    tail -n 15 "$work/purge.log" | indent
fi
# Secrets once more, over the whole boot's journal and apt's output (upgrade, remove, purge included).
C journalctl -b --no-pager -o verbose >"$work/journal-verbose.txt" 2>&1
leaks=()
for s in "$AK" "$SK" "$token"; do
    [[ -n $s ]] && grep -qF -- "$s" "$work/journal-verbose.txt" "$work/upgrade.log" "$work/remove.log" "$work/purge.log" && leaks+=("${s:0:4}…")
done
if ((${#leaks[@]} == 0)); then
    pass "no secret in the journal or apt's output after upgrade, remove and purge"
else
    fail "secrets found after upgrade/remove/purge: ${leaks[*]}"
fi

echo "($(elapsed) in all)"
summary
((failed == 0))
