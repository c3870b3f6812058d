#!/usr/bin/env bash
# Checks the ecs-warden deployment files in this directory:
#   - prometheus.yml is a valid Prometheus config (its rule_files resolve);
#   - alerts.yml is valid, and every alert has `for:`, a severity label and summary/description;
#   - alerts_test.yml passes (`promtool test rules`) and covers every alert, firing and not;
#   - grafana-dashboard.json is valid JSON with the expected datasource and variables;
#   - every metric name used by the alerts and the dashboard is one ecs-warden exports (or `up`).
#
# Usage: deploy/check.sh (from anywhere). Installs promtool with apt-get if it is missing (the
# Debian `prometheus` package, which on a systemd host also enables a prometheus service; set
# PROMTOOL=/path/to/promtool to use another one) and PyYAML likewise (python3-yaml). Prints one
# line per check (CHECK_VERBOSE=1 also shows the output of passing checks) and ends with
# "deploy checks: N passed, N failed"; exits non-zero on a failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

passed=0
failed=0

# check NAME COMMAND...: runs COMMAND, records the result, shows its output on failure.
check() {
    local name=$1
    shift
    local output
    if output=$("$@" 2>&1); then
        passed=$((passed + 1))
        echo "ok   - $name"
        if [[ "${CHECK_VERBOSE:-0}" == 1 ]]; then printf '%s\n' "$output" | sed 's/^/       /'; fi
    else
        failed=$((failed + 1))
        echo "FAIL - $name"
        printf '%s\n' "$output" | sed 's/^/       /'
    fi
}

# ------------------------------------------------------------------ tools
install_promtool() {
    if [[ -n "${PROMTOOL:-}" ]]; then
        [[ -x "$PROMTOOL" ]] || { echo "PROMTOOL=$PROMTOOL is not executable"; return 1; }
        return 0
    fi
    if command -v promtool >/dev/null 2>&1; then
        PROMTOOL=$(command -v promtool)
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || { echo "promtool is missing and apt-get is not available"; return 1; }
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    echo "installing promtool (Debian package prometheus)"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends prometheus
    PROMTOOL=$(command -v promtool)
}

PYTHON=python3
install_pyyaml() {
    if "$PYTHON" -c 'import yaml' 2>/dev/null; then return 0; fi
    if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
        PYTHON=/usr/bin/python3
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || { echo "PyYAML is missing and apt-get is not available"; return 1; }
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends python3-yaml
    PYTHON=/usr/bin/python3
}

# Not through check(): the variables they set must survive (check runs in a subshell).
install_log=$(mktemp)
trap 'rm -f "$install_log"' EXIT
if install_promtool >"$install_log" 2>&1; then
    passed=$((passed + 1))
    echo "ok   - promtool available ($("$PROMTOOL" --version 2>&1 | head -n 1))"
else
    failed=$((failed + 1))
    echo "FAIL - promtool available"
    sed 's/^/       /' "$install_log"
    PROMTOOL=false
fi
if install_pyyaml >"$install_log" 2>&1; then
    passed=$((passed + 1))
    echo "ok   - python3 with PyYAML available ($PYTHON)"
else
    failed=$((failed + 1))
    echo "FAIL - python3 with PyYAML available"
    sed 's/^/       /' "$install_log"
fi

# ------------------------------------------------------------------ promtool
check "promtool check config prometheus.yml" "$PROMTOOL" check config prometheus.yml
check "promtool check rules alerts.yml" "$PROMTOOL" check rules alerts.yml
check "promtool test rules alerts_test.yml" "$PROMTOOL" test rules alerts_test.yml

# ------------------------------------------------------------------ JSON
check "grafana-dashboard.json is valid JSON" "$PYTHON" -m json.tool grafana-dashboard.json /dev/null

# ------------------------------------------------------------------ content checks (python)
# The metric names ecs-warden exports: the product's contract. Histograms are listed by base
# name and may be used only with _bucket, _sum or _count.
read -r -d '' CHECKS <<'PY' || true
import json, re, sys
import yaml

GAUGES_COUNTERS = {
    "ecs_warden_quota_limit", "ecs_warden_quota_used", "ecs_warden_quota_usage_ratio",
    "ecs_warden_quota_exhaustion_eta_seconds",
    "ecs_warden_stuck_jobs", "ecs_warden_stuck_servers", "ecs_warden_stuck_server_age_seconds",
    "ecs_warden_flavor_sold_out", "ecs_warden_flavor_state_changes_total",
    "ecs_warden_schedule_servers", "ecs_warden_schedule_actions_total", "ecs_warden_schedule_tag_errors",
    "ecs_warden_schedule_listing_errors", "ecs_warden_schedule_at_risk", "ecs_warden_remediation_actions_total",
    "ecs_warden_unhealthy_servers", "ecs_warden_store_writable", "ecs_warden_schedule_stopped_server_seconds_total",
    "ecs_warden_schedule_stopped_vcpu_seconds_total", "ecs_warden_schedule_stopped_ram_mb_seconds_total",
    "ecs_warden_loop_runs_total", "ecs_warden_loop_last_success_timestamp_seconds",
    "ecs_warden_api_requests_total",
    "ecs_warden_build_info",
    # cluster mode (state.backend: postgres), each with a node label
    "ecs_warden_cluster_nodes_alive", "ecs_warden_cluster_shards_configured", "ecs_warden_cluster_shards_owned",
    "ecs_warden_cluster_shards_unowned", "ecs_warden_cluster_shard_epoch", "ecs_warden_cluster_handovers_total",
    "ecs_warden_cluster_renew_failures_total", "ecs_warden_cluster_node_name_conflict",
    "up",
}
HISTOGRAMS = {"ecs_warden_loop_duration_seconds", "ecs_warden_api_request_duration_seconds"}
ALLOWED = GAUGES_COUNTERS | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "atan2"}

def metric_names(expr):
    """Metric names of a PromQL expression (a small tokenizer, enough for these files)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)   # strings
    s = re.sub(r"\{[^{}]*\}", " ", s)                                           # matchers
    s = re.sub(r"\[[^\[\]]*\]", " ", s)                                         # ranges
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if call or word in KEYWORDS:
            continue
        names.add(word)
    return names

def check_names(where, expr, problems, used):
    names = metric_names(expr)
    used |= names
    for name in sorted(names - ALLOWED):
        problems.append(f"{where}: unknown metric {name!r} in: {' '.join(expr.split())}")

def main(what):
    problems = []
    if what == "alerts":
        doc = yaml.safe_load(open("alerts.yml"))
        groups = doc.get("groups", [])
        if [g.get("name") for g in groups] != ["ecs-warden"]:
            problems.append("alerts.yml: expected exactly one group, named ecs-warden")
        alerts = [r for g in groups for r in g.get("rules", []) if "alert" in r]
        names = [r["alert"] for r in alerts]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"alerts.yml: duplicate alert {dup}")
        for r in alerts:
            a = r["alert"]
            if "for" not in r:
                problems.append(f"{a}: no for:")
            if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                problems.append(f"{a}: severity label must be critical, warning or info")
            ann = r.get("annotations", {})
            for key in ("summary", "description"):
                if not ann.get(key):
                    problems.append(f"{a}: no {key} annotation")
            if not any("$labels" in ann.get(k, "") or "$value" in ann.get(k, "") for k in ("summary", "description")):
                problems.append(f"{a}: annotations use no label value")
        # Every alert: a test where it fires and one where it must not.
        tests = yaml.safe_load(open("alerts_test.yml"))
        fires, silent = set(), set()
        for t in tests.get("tests", []):
            for case in t.get("alert_rule_test", []) or []:
                (fires if case.get("exp_alerts") else silent).add(case.get("alertname"))
        for a in names:
            if a not in fires:
                problems.append(f"{a}: no test where it fires")
            if a not in silent:
                problems.append(f"{a}: no test where it must not fire")
        for a in sorted((fires | silent) - set(names)):
            problems.append(f"alerts_test.yml: tests an unknown alert {a}")
        print(f"{len(names)} alerts, {sum(len(t.get('alert_rule_test', []) or []) for t in tests['tests'])} "
              f"rule test cases in {len(tests['tests'])} tests")
    elif what == "alert-metrics":
        doc = yaml.safe_load(open("alerts.yml"))
        used = set()
        for g in doc["groups"]:
            for r in g["rules"]:
                check_names(r.get("alert") or r.get("record"), str(r["expr"]), problems, used)
        print("metrics used:", ", ".join(sorted(used)))
    elif what == "dashboard":
        d = json.load(open("grafana-dashboard.json"))
        if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 38:
            problems.append(f"schemaVersion {d.get('schemaVersion')!r} < 38")
        variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
        ds = variables.get("DS_PROMETHEUS")
        if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            problems.append("no datasource variable DS_PROMETHEUS of type prometheus")
        for name in ("project", "region"):
            v = variables.get(name)
            q = v and (v.get("query") if isinstance(v.get("query"), str) else v.get("query", {}).get("query", ""))
            if not v or v.get("type") != "query" or not q or not q.startswith("label_values("):
                problems.append(f"variable {name} missing or not a label_values() query")
        panels = [p for p in d.get("panels", []) for p in [p] + p.get("panels", [])]
        ids = [p.get("id") for p in panels]
        for dup in sorted({i for i in ids if ids.count(i) > 1}, key=str):
            problems.append(f"duplicate panel id {dup}")
        titles = set()
        for p in panels:
            if p.get("type") == "row":
                continue
            titles.add(p.get("title"))
            if not p.get("targets"):
                problems.append(f"panel {p.get('title')!r} has no query")
            refs = [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]
            for ref in refs:
                if not isinstance(ref, dict) or ref.get("uid") != "${DS_PROMETHEUS}":
                    problems.append(f"panel {p.get('title')!r}: datasource is not ${{DS_PROMETHEUS}}: {ref!r}")
                    break
            for t in p.get("targets", []):
                if not t.get("expr"):
                    problems.append(f"panel {p.get('title')!r}: target {t.get('refId')} has no expr")
            pos = p.get("gridPos", {})
            if not all(isinstance(pos.get(k), int) for k in "xywh") or pos["x"] + pos["w"] > 24:
                problems.append(f"panel {p.get('title')!r}: bad gridPos {pos}")
        print(f"{len(panels) - sum(p.get('type') == 'row' for p in panels)} panels in "
              f"{sum(p.get('type') == 'row' for p in panels)} rows; schemaVersion {d.get('schemaVersion')}")
    elif what == "dashboard-metrics":
        d = json.load(open("grafana-dashboard.json"))
        used = set()
        panels = [p for p in d.get("panels", []) for p in [p] + p.get("panels", [])]
        for p in panels:
            for t in p.get("targets", []):
                check_names(f"panel {p.get('title')!r}", t.get("expr", ""), problems, used)
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            q = v["query"] if isinstance(v["query"], str) else v["query"].get("query", "")
            m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", q)
            check_names(f"variable {v['name']}", m.group(1) if m else q, problems, used)
        print("metrics used:", ", ".join(sorted(used)))
    elif what == "dashboard-rules":
        # Every dashboard query as a recording rule, for `promtool check rules` to parse.
        # Grafana's interval variables become 5m; $project/$region stay (valid regexes).
        d = json.load(open("grafana-dashboard.json"))
        rules = []
        panels = [p for p in d.get("panels", []) for p in [p] + p.get("panels", [])]
        for p in panels:
            for t in p.get("targets", []):
                expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", t.get("expr", ""))
                rules.append({"record": f"dashboard:panel_{p.get('id')}_{t.get('refId')}", "expr": expr})
        print(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, sort_keys=False))
    for p in problems:
        print(p)
    return 1 if problems else 0

sys.exit(main(sys.argv[1]))
PY

check "alerts: for/severity/annotations; tests cover every alert" "$PYTHON" -c "$CHECKS" alerts
check "alerts use only ecs-warden metric names" "$PYTHON" -c "$CHECKS" alert-metrics
check "dashboard: schema, datasource, variables, panels" "$PYTHON" -c "$CHECKS" dashboard
check "dashboard uses only ecs-warden metric names" "$PYTHON" -c "$CHECKS" dashboard-metrics

# The dashboard's queries parse as PromQL (each as a recording rule in a scratch file).
dashboard_rules() {
    local rules
    rules=$(mktemp --suffix=.yml)
    "$PYTHON" -c "$CHECKS" dashboard-rules >"$rules" && "$PROMTOOL" check rules "$rules"
    local rc=$?
    rm -f "$rules"
    return $rc
}
check "dashboard queries parse as PromQL" dashboard_rules

echo "deploy checks: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
