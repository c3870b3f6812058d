#!/usr/bin/env bash
# Fuzzes the control API of ecs-warden against docs/control-api.yaml.
#
#   Tests/Fuzz/fuzz-control-api.sh [path/to/ecs-warden]     (default .build/debug/ecs-warden)
#
# 1. validates docs/control-api.yaml (openapi-spec-validator) and checks that it has exactly the
#    routes registered in Sources/WardenHTTP;
# 2. starts `ecs-warden demo` on free ports and runs schemathesis (every phase) against the control
#    listener, with the control token, and against the metrics listener (/metrics, /healthz, /readyz);
# 3. checks that every mutating operation refuses a missing or wrong token with 401 and no effect;
# 4. checks a snooze can be removed through DELETE with a percent-encoded server id, and that bodies
#    over the upload limit answer 413;
# 5. checks the control token never appears in the daemon's logs nor in any response;
# 6. stops the daemon with SIGTERM and checks it exits with status 0.
# Ends with `control API fuzz: N passed, N failed` and exits non-zero when anything failed.
#
# Environment:
#   FUZZ_VENV          the virtualenv to create / reuse (default .venv-fuzz, relative to the current directory)
#   FUZZ_MAX_EXAMPLES  schemathesis examples per operation and phase (default 150)
#   FUZZ_SEED          schemathesis seed (default random; printed to reproduce a run)
#   FUZZ_WORKERS       schemathesis workers (default 2)
#   FUZZ_WORKDIR       where logs and reports go (default a new temporary directory, kept on failure)
#   FUZZ_SCHEMATHESIS  pip requirement for schemathesis (default schemathesis==4.32.5)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
binary=${1:-$root/.build/debug/ecs-warden}
spec=$root/docs/control-api.yaml
venv=${FUZZ_VENV:-.venv-fuzz}
[[ "$venv" == /* ]] || venv=$PWD/$venv
max_examples=${FUZZ_MAX_EXAMPLES:-150}
seed=${FUZZ_SEED:-$(( (RANDOM << 15) | RANDOM ))}
workers=${FUZZ_WORKERS:-2}
schemathesis_requirement=${FUZZ_SCHEMATHESIS:-schemathesis==4.32.5}
validator_requirement=openapi-spec-validator==0.9.0
started_at=$(date +%s)

if [[ -n "${FUZZ_WORKDIR:-}" ]]; then
    work=$FUZZ_WORKDIR
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-control-api.XXXXXX")
fi

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok    $*"; }
fail() { failed=$((failed + 1)); echo "FAIL  $*"; }
say() { echo "--- $*"; }

daemon_pid=""
state_dir=""
cleanup() {
    if [[ -n "$daemon_pid" ]] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$daemon_pid" 2>/dev/null || true
    fi
    if [[ -n "$state_dir" && -d "$state_dir" && "$state_dir" == */ecs-warden-demo-* ]]; then rm -rf "$state_dir"; fi
}
trap cleanup EXIT

finish() {
    local elapsed=$(( $(date +%s) - started_at ))
    say "work directory: $work (seed $seed, ${elapsed}s)"
    if [[ $failed -eq 0 && -z "${FUZZ_WORKDIR:-}" ]]; then rm -rf "$work"; fi
    echo "control API fuzz: $passed passed, $failed failed"
    if [[ $failed -eq 0 ]]; then exit 0; fi
    exit 1
}

# ---------------------------------------------------------------------------------------------
say "virtualenv $venv"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
py=$venv/bin/python
if ! "$py" - "$schemathesis_requirement" "$validator_requirement" <<'EOF' 2>/dev/null; then
import sys
from importlib.metadata import version
from packaging.requirements import Requirement
for text in sys.argv[1:]:
    requirement = Requirement(text)
    if not requirement.specifier.contains(version(requirement.name), prereleases=True):
        sys.exit(1)
EOF
    "$py" -m pip install --quiet --disable-pip-version-check "$schemathesis_requirement" "$validator_requirement" pyyaml packaging
fi
"$venv/bin/schemathesis" --version

if [[ ! -x "$binary" ]]; then
    fail "no ecs-warden binary at $binary"
    finish
fi

# ---------------------------------------------------------------------------------------------
say "the document"
if "$venv/bin/openapi-spec-validator" "$spec" >"$work/validator.log" 2>&1; then
    pass "docs/control-api.yaml is valid OpenAPI 3.0.3"
else
    fail "docs/control-api.yaml is not valid OpenAPI: $(tail -5 "$work/validator.log")"
fi

# The routes the server registers, from its sources, against the document's operations.
if [[ -f "$root/Sources/WardenHTTP/ControlRoutes.swift" ]]; then
    if "$py" - "$spec" "$root/Sources/WardenHTTP/ControlAPI.swift" "$root/Sources/WardenHTTP/ControlRoutes.swift" >"$work/routes.log" 2>&1 <<'EOF'; then
import re, sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item
              if method in ("get", "put", "post", "delete", "patch", "head", "options")}
served = set()
for source in sys.argv[2:]:
    for base, method, path in re.findall(r'\b(router|v1)\.(get|post|put|patch|delete|head)\("([^"]+)"', open(source).read()):
        path = ("/v1/" + path) if base == "v1" else path
        served.add((method.upper(), re.sub(r":(\w+)", r"{\1}", path)))
missing, extra = served - documented, documented - served
print("routes served:", len(served), "documented:", len(documented))
for route in sorted(missing): print("not documented:", *route)
for route in sorted(extra): print("documented but not served:", *route)
sys.exit(1 if missing or extra else 0)
EOF
        pass "the document has exactly the served routes ($(head -1 "$work/routes.log"))"
    else
        fail "the document and the served routes differ: $(tr '\n' ';' <"$work/routes.log")"
    fi
fi

# ---------------------------------------------------------------------------------------------
say "starting $binary demo"
"$binary" demo --metrics-port 0 --control-port 0 --duration 600 >"$work/daemon.stdout" 2>"$work/daemon.stderr" &
daemon_pid=$!
control="" metrics="" token_path=""
for _ in $(seq 1 300); do
    control=$(sed -n 's#^demo: control API: http://\([^/]*\)/v1/status.*#\1#p' "$work/daemon.stdout" | head -1)
    metrics=$(sed -n 's#^demo: metrics: http://\([^/]*\)/metrics.*#\1#p' "$work/daemon.stdout" | head -1)
    token_path=$(sed -n 's#^demo: control API: .*\$(cat \([^)]*\)).*#\1#p' "$work/daemon.stdout" | head -1)
    [[ -n "$control" && -n "$metrics" && -n "$token_path" ]] && break
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z "$control" || -z "$metrics" || -z "$token_path" || ! -s "$token_path" ]]; then
    fail "the demo did not announce its listeners and token (stdout: $(tr '\n' ' ' <"$work/daemon.stdout" | tail -c 400); stderr: $(tail -c 400 "$work/daemon.stderr"))"
    finish
fi
state_dir=$(dirname "$token_path")
token=$(cat "$token_path")
base=http://$control
metrics_base=http://$metrics
say "control $base, metrics $metrics_base"

if [[ "$(stat -c %a "$token_path")" == "600" ]]; then
    pass "the token file is mode 600"
else
    fail "the token file $token_path is mode $(stat -c %a "$token_path"), expected 600"
fi

ready=""
for _ in $(seq 1 120); do
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" == "200" ]]; then ready=yes; break; fi
    sleep 0.5
done
if [[ -n "$ready" ]]; then pass "GET /readyz answers 200 once the loops have run"; else fail "GET /readyz never answered 200 within 60 s"; fi

# ---------------------------------------------------------------------------------------------
# schemathesis writes its hypothesis database and reads schemathesis.toml in its current directory.
run_schemathesis() {
    local name=$1
    shift
    (cd "$work" && "$venv/bin/schemathesis" run "$spec" --seed "$seed" --max-examples "$max_examples" \
        --workers "$workers" --request-timeout 60 --suppress-health-check all --no-color \
        --report junit,har --report-junit-path "$work/$name.junit.xml" --report-har-path "$work/$name.har.json" \
        "$@") >"$work/$name.schemathesis.log" 2>&1
}

# Counts each operation of a JUnit report as a check; prints the run's summary.
score_schemathesis() {
    local name=$1 status=$2 line
    while IFS= read -r line; do
        case "$line" in
            "ok "*) pass "schemathesis ($name): ${line#ok }" ;;
            "FAIL "*) fail "schemathesis ($name): ${line#FAIL }" ;;
            *) echo "      $line" ;;
        esac
    done < <("$py" - "$work/$name.junit.xml" "$work/$name.schemathesis.log" "$status" <<'EOF'
import re, sys, xml.etree.ElementTree as ET
junit, log, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(log, errors="replace").read()
try:
    cases = ET.parse(junit).getroot().iter("testcase")
except (OSError, ET.ParseError) as error:
    print(f"FAIL no JUnit report ({error}); exit status {status}")
    sys.exit(0)
bad = 0
for case in cases:
    problems = [child for child in case if child.tag in ("failure", "error")]
    if problems:
        bad += 1
        print(f"FAIL {case.get('name')}: " + " | ".join((p.get("message") or p.text or p.tag).strip().splitlines()[0] for p in problems))
    else:
        print(f"ok {case.get('name')}")
if status != 0 and bad == 0:
    print(f"FAIL schemathesis exited with status {status} without a failing operation (see {log})")
for pattern in (r"Operations:\s+.*", r"\d+ generated.*", r"Seed: \d+"):
    found = re.search(pattern, text)
    if found: print(found.group(0).strip())
EOF
    )
}

checks=not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance,response_headers_conformance,ignored_auth

say "schemathesis: control listener (every operation but /metrics; $max_examples examples per operation and phase, seed $seed)"
status=0
run_schemathesis control --url "$base" -H "Authorization: Bearer $token" --exclude-path /metrics --checks "$checks" || status=$?
score_schemathesis control "$status"

say "schemathesis: metrics listener (/metrics, /healthz, /readyz)"
status=0
run_schemathesis metrics --url "$metrics_base" --include-path /metrics --include-path /healthz --include-path /readyz \
    --phases examples,coverage,fuzzing --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance || status=$?
score_schemathesis metrics "$status"

if kill -0 "$daemon_pid" 2>/dev/null; then pass "the daemon is still running after fuzzing"; else fail "the daemon died during fuzzing"; fi

# ---------------------------------------------------------------------------------------------
say "mutating operations without a valid token"
mkdir -p "$work/responses"
request_number=0
# request OUTPUT-VAR ARGS...: runs curl, keeps the response (headers and body), sets OUTPUT-VAR to the status.
request() {
    local -n result=$1
    shift
    request_number=$((request_number + 1))
    local file=$work/responses/$request_number
    result=$(curl -s -o "$file.body" -D "$file.headers" -w '%{http_code}' --max-time 60 "$@") || result="curl-error"
    last_body=$(cat "$file.body" 2>/dev/null || true)
}
code=""
last_body=""
request code -X POST -H "Authorization: Bearer $token" "$base/v1/loops/quota/resume"
[[ "$code" == "200" ]] || fail "POST /v1/loops/quota/resume with the token answered $code"

# Every mutating operation of the document, with its path parameters and example body filled in.
mapfile -t operations < <("$py" - "$spec" <<'EOF'
import json, sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
values = {"name": "quota", "project": "shop-prod", "server": "fuzz-unauthorized"}
for path, item in spec["paths"].items():
    for method, operation in item.items():
        if method not in ("put", "post", "delete", "patch"):
            continue
        if operation.get("x-read-only"):
            continue  # a question with a body (POST /v1/preflight): changes nothing, needs no token
        body = ""
        content = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if content is not None:
            example = dict(content.get("example", {}))
            if "serverId" in example: example["serverId"] = "fuzz-unauthorized"
            body = json.dumps(example)
        for key, value in values.items(): path = path.replace("{" + key + "}", value)
        print(f"{method.upper()}\t{path}\t{body}")
        if path.endswith("/run"): print(f"{method.upper()}\t{path}?wait=true\t{body}")
EOF
)
if [[ ${#operations[@]} -lt 8 ]]; then fail "found only ${#operations[@]} mutating operations in the document"; fi
for operation in "${operations[@]}"; do
    IFS=$'\t' read -r method path body <<<"$operation"
    for variant in none wrong-token no-scheme longer-token; do
        headers=()
        case $variant in
            none) ;;
            wrong-token) headers=(-H "Authorization: Bearer not-the-token") ;;
            no-scheme) headers=(-H "Authorization: $token") ;;
            longer-token) headers=(-H "Authorization: Bearer ${token}x") ;;
        esac
        if [[ -n "$body" ]]; then headers+=(-H "Content-Type: application/json" --data-binary "$body"); fi
        request code -X "$method" "${headers[@]}" "$base$path"
        if [[ "$code" == "401" && "$last_body" == '{"error":{"code":"unauthorized","message":'* ]]; then
            pass "$method $path ($variant) answers 401 unauthorized"
        else
            fail "$method $path ($variant) answered $code ${last_body:0:200}, expected 401 with code unauthorized"
        fi
    done
done
request code "$base/v1/loops"
if [[ "$code" == "200" ]] && "$py" -c 'import json,sys; loops={l["name"]: l for l in json.load(sys.stdin)}; sys.exit(0 if loops["quota"]["paused"] is False else 1)' <<<"$last_body"; then
    pass "the refused pause calls left loop quota running"
else
    fail "loop quota is paused after refused calls ($code ${last_body:0:200})"
fi
request code "$base/v1/snoozes"
if [[ "$code" == "200" && "$last_body" != *fuzz-unauthorized* ]]; then
    pass "the refused snooze calls stored no snooze"
else
    fail "a refused snooze call stored a snooze ($code ${last_body:0:300})"
fi

# ---------------------------------------------------------------------------------------------
say "snooze round trip with a server id that needs percent-encoding"
request code -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/json" \
    --data-binary '{"project":"shop-prod","serverId":"fuzz id/1","until":"2099-01-01T00:00:00Z","reason":"fuzz"}' "$base/v1/snoozes"
if [[ "$code" == "201" ]]; then
    request code -X DELETE -H "Authorization: Bearer $token" "$base/v1/snoozes/shop-prod/fuzz%20id%2F1"
    if [[ "$code" == "200" && "$last_body" == *'"serverId":"fuzz id/1"'* ]]; then
        pass "DELETE /v1/snoozes/shop-prod/fuzz%20id%2F1 removes the snooze of server 'fuzz id/1'"
    else
        fail "DELETE /v1/snoozes/shop-prod/fuzz%20id%2F1 answered $code ${last_body:0:200}, expected 200 for the snooze of server 'fuzz id/1' (path parameters are not percent-decoded)"
    fi
else
    fail "POST /v1/snoozes for server 'fuzz id/1' answered $code ${last_body:0:200}, expected 201"
fi

say "a snooze whose reason is 2 MB is refused, not stored; the jobs loop cannot be paused"
big_reason="$(head -c 2000000 /dev/zero | tr '\0' 'x')"
printf '{"project":"shop-prod","serverId":"fuzz-big","until":"2099-01-01T00:00:00Z","reason":"%s"}' "$big_reason" >"$work/big-snooze.json"
request code -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/json" --data-binary @"$work/big-snooze.json" "$base/v1/snoozes"
big_code="$code"
request code "$base/v1/snoozes"
if [[ "$big_code" == "400" || "$big_code" == "413" ]] && [[ "$last_body" != *fuzz-big* ]]; then
    pass "POST /v1/snoozes with a 2 MB reason answered $big_code and stored nothing"
else
    fail "POST /v1/snoozes with a 2 MB reason answered $big_code; stored: $([[ "$last_body" == *fuzz-big* ]] && echo yes || echo no)"
fi
request code -X POST -H "Authorization: Bearer $token" "$base/v1/loops/jobs/pause"
if [[ "$code" == "409" ]]; then pass "POST /v1/loops/jobs/pause answered 409 (job following is never paused)"; else fail "POST /v1/loops/jobs/pause answered $code ${last_body:0:200}, expected 409"; fi

# ---------------------------------------------------------------------------------------------
say "request bodies over the upload limit (2 MiB)"
{ printf '{"project":"shop-prod","serverId":"fuzz-large","jobId":"fuzz-large","until":"2099-01-01T00:00:00Z","pad":"'
  head -c 3000000 /dev/zero | tr '\0' a
  printf '"}'; } >"$work/large.json"
for path in /v1/jobs /v1/snoozes; do
    request code -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/json" --data-binary "@$work/large.json" "$base$path"
    if [[ "$code" == "413" && "$last_body" == '{"error":{"code":'* ]]; then
        pass "POST $path with a 3 MB body answers 413 with a JSON error"
    else
        fail "POST $path with a 3 MB body answered $code ${last_body:0:200}, expected 413 with a JSON error"
    fi
done
rm -f "$work/large.json"

# ---------------------------------------------------------------------------------------------
say "the control token in logs and responses"
response_count=$("$py" - "$work" "$work/responses.txt" <<'EOF'
import glob, json, os, sys
work, out = sys.argv[1], sys.argv[2]
count = 0
with open(out, "w") as sink:
    for har in glob.glob(os.path.join(work, "*.har.json")):
        for entry in json.load(open(har))["log"]["entries"]:
            count += 1
            response = entry["response"]
            for header in response.get("headers", []): sink.write(f"{header['name']}: {header['value']}\n")
            sink.write(response.get("content", {}).get("text", "") + "\n")
    for path in sorted(glob.glob(os.path.join(work, "responses", "*"))):
        if path.endswith(".body"): count += 1
        sink.write(open(path, errors="replace").read() + "\n")
print(count)
EOF
)
for source in "daemon stdout:$work/daemon.stdout" "daemon stderr:$work/daemon.stderr" "$response_count responses:$work/responses.txt"; do
    label=${source%%:*}
    file=${source#*:}
    if grep -qF -- "$token" "$file"; then
        fail "the control token appears in the $label ($(grep -cF -- "$token" "$file") lines)"
    else
        pass "the control token does not appear in the $label ($(wc -l <"$file") lines)"
    fi
done

# ---------------------------------------------------------------------------------------------
say "stopping the daemon with SIGTERM"
kill -TERM "$daemon_pid"
stopped=""
for _ in $(seq 1 150); do
    if ! kill -0 "$daemon_pid" 2>/dev/null; then stopped=yes; break; fi
    sleep 0.2
done
if [[ -z "$stopped" ]]; then
    fail "the daemon did not stop within 30 s of SIGTERM"
    kill -KILL "$daemon_pid" 2>/dev/null || true
fi
exit_status=0
wait "$daemon_pid" || exit_status=$?
daemon_pid=""
if [[ -n "$stopped" && $exit_status -eq 0 ]]; then
    pass "the daemon exited with status 0 on SIGTERM"
elif [[ -n "$stopped" ]]; then
    fail "the daemon exited with status $exit_status on SIGTERM (stderr: $(tail -c 300 "$work/daemon.stderr"))"
fi

finish
