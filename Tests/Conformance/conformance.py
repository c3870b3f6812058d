#!/usr/bin/env python3
"""Conformance suite: the ECS simulator (ecs-sim) driven by the OFFICIAL Huawei Cloud Python SDK.

Usage: python conformance.py ECS_SIM_BINARY

Starts ecs-sim on a free port with its own credentials, runs every check against it with
`huaweicloudsdkecs.v2.EcsClient` (and `huaweicloudsdkcore`), uses the unauthenticated /_sim admin
API (stdlib urllib) for scenario control, stops the simulator with SIGTERM and prints one line per
check (`PASS name` / `FAIL name: why`), then `conformance: N passed, N failed`. Exit 0 only if
nothing failed.

SDK facts this suite relies on (huaweicloudsdkcore / huaweicloudsdkecs 3.1.219):
* The endpoint is given with `with_endpoint("http://127.0.0.1:PORT")`, never `with_region`, and
  BasicCredentials always carry the project id (else the SDK asks IAM for it).
* Error responses (status >= 400) raise ClientRequestException / ServerResponseException with
  status_code, error_code, error_msg and request_id (from the X-Request-Id response header).
  Nova fault bodies ({"itemNotFound": {"code": 404, ...}}) yield error_code == 404 (an int).
* 2xx responses never raise: a 202 carrying an error body becomes a response object whose fields
  are all None (only `status_code` is set).
* The SDK's transport retries 429 only for idempotent methods and, with the default retry_times=0,
  turns a 429 on a GET into urllib3's RetryError -> ClientRequestException(429, error_code "429",
  request_id "") with the body and X-Request-Id LOST. A 429 on a POST is parsed normally. The
  throttling check therefore uses list_servers_by_tag (a POST).
* Every nova_* method and list_servers_by_tag emits a DeprecationWarning (silenced here).
"""

import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections import Counter
from urllib.parse import urlsplit

warnings.simplefilter("ignore", DeprecationWarning)
# The SDK logs every exception it raises at ERROR on this handler-less logger (Python would print
# them on stderr); the checks report what matters.
logging.getLogger("HuaweiCloud-SDK-EcsClient").addHandler(logging.NullHandler())

from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions import exceptions as sdk_exceptions  # noqa: E402
from huaweicloudsdkcore.http.http_handler import HttpHandler  # noqa: E402
from huaweicloudsdkcore.sdk_request import SdkRequest  # noqa: E402
from huaweicloudsdkcore.signer.signer import Signer  # noqa: E402
from huaweicloudsdkecs.v2 import (  # noqa: E402
    BatchAddServerTag,
    BatchCreateServerTagsRequest,
    BatchCreateServerTagsRequestBody,
    BatchDeleteServerTagsRequest,
    BatchDeleteServerTagsRequestBody,
    BatchRebootServersRequest,
    BatchRebootServersRequestBody,
    BatchRebootSeversOption,
    BatchStartServersOption,
    BatchStartServersRequest,
    BatchStartServersRequestBody,
    BatchStopServersOption,
    BatchStopServersRequest,
    BatchStopServersRequestBody,
    CreatePostPaidServersRequest,
    CreatePostPaidServersRequestBody,
    EcsClient,
    ListFlavorsRequest,
    ListServersByTagRequest,
    ListServersByTagRequestBody,
    ListServersDetailsRequest,
    ListServerTagsRequest,
    NovaListServersDetailsRequest,
    NovaShowServerRequest,
    PostPaidServer,
    PostPaidServerNic,
    PostPaidServerRootVolume,
    ServerId,
    ServerTag,
    ServerTagMatch,
    ServerTags,
    ShowJobRequest,
    ShowServerLimitsRequest,
    ShowServerRequest,
    ShowServerTagsRequest,
)

# Credentials of this suite's simulator (a test credential, nothing real).
AK = "CONFORMANCEACCESSKEY"
SK = "conformance-secret-key-not-a-real-secret"
PROJECT = "c0ffee00c0ffee00c0ffee00c0ffee01"
SERVERS_PER_PROJECT = 2500
FLAVORS = 32  # small, medium (1 vCPU), large (2 vCPU) and xlarge (4 vCPU) sizes of 8 families
CREATE_FLAVOR = "c3.xlarge.2"  # 4 vCPU, 8192 MB with the default catalogue
SPEED = 50.0  # simulated seconds per real second: a 10 s stop takes 0.2 s
JOB_TIMEOUT = 20.0  # real seconds to wait for a job to finish
AZS = ["eu-west-0a", "eu-west-0b", "eu-west-0c"]
# Seed-style ids (Sources/ECSSimulator/FleetGenerator.swift); any non-empty string is accepted.
IMAGE_ID = "1189efbf-d48b-46ad-a823-94b942e2a000"
VPC_ID = "0dae26c9-9a70-4392-93f3-87d53115d171"
SUBNET_ID = "157ee789-03ea-45b1-a698-76c92660dd83"
JOB_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")  # 2016-04-25T20:04:47.591Z
DEFAULT_FAULTS = {
    "stickNextJobs": 0, "failNextJobs": 0, "failNextJobsCode": None, "latencyMs": 0, "errorRate": 0,
    "errorStatus": 503, "dropRate": 0, "outage": None, "throttleRequestsPerSecond": None,
    "throttleBurst": 10, "throttleMode": "429",
}


class Sim:
    """The running simulator process and everything that talks to it."""

    def __init__(self, binary, servers_per_project=SERVERS_PER_PROJECT):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--access-key", AK, "--secret-key", SK, "--project-id", PROJECT,
             "--projects", "2", "--servers-per-project", str(servers_per_project), "--flavors", str(FLAVORS),
             "--speed", str(SPEED)],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        lines = queue.Queue()

        def pump():
            for line in self.proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        try:
            first = lines.get(timeout=60)
        except queue.Empty:
            first = None
        match = re.search(r"listening on (http://[^\s]+)", first or "")
        if not match:
            self.proc.kill()
            self.stderr.seek(0)
            raise RuntimeError(f"ecs-sim did not announce its port (first line {first!r}); stderr: "
                               f"{self.stderr.read().decode(errors='replace')[-2000:]}")
        self.base = match.group(1).rstrip("/")
        self.host = urlsplit(self.base).netloc
        # Every HTTP response the SDK clients receive: (method, path, status, X-Request-Id).
        self.seen = []
        # Every raw (urllib) API call: (method, path, status).
        self.raw_seen = []
        self.client = self.make_client(SK)

    def make_client(self, sk, ak=AK):
        def record(**kwargs):
            response = kwargs.get("response")
            if response is None:
                return
            self.seen.append((response.request.method, urlsplit(response.request.url).path, response.status_code,
                              response.headers.get("X-Request-Id")))

        handler = HttpHandler().add_response_handler(record)
        return (EcsClient.new_builder().with_credentials(BasicCredentials(ak, sk, PROJECT))
                .with_endpoint(self.base).with_http_handler(handler).build())

    # /_sim admin API (no authentication)
    def admin(self, method, path, body=None, expect_ok=True):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + "/_sim/" + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        parsed = json.loads(text) if text else None
        if expect_ok and not 200 <= status < 300:
            raise AssertionError(f"admin {method} /_sim/{path} -> {status} {text[:300]}")
        return status, parsed

    def reset_faults(self):
        self.admin("PUT", "faults", DEFAULT_FAULTS)

    # raw HTTP, for headers the SDK does not expose
    def raw(self, method, path, query=None, body=None, sign=True, headers=None):
        header_params = {"Content-Type": "application/json" if body is None else "application/json;charset=utf-8",
                         "X-Project-Id": PROJECT}
        header_params.update(headers or {})
        payload = "" if body is None else json.dumps(body)
        request = SdkRequest(method=method, schema="http", host=self.host, resource_path=path,
                             query_params=list((query or {}).items()), header_params=header_params, body=payload)
        if sign:
            request = Signer(BasicCredentials(AK, SK, PROJECT)).sign(request)
        else:
            Signer.process_request_uri(request)
        data = request.body if body is not None else None
        if isinstance(data, str):
            data = data.encode()
        raw_request = urllib.request.Request(self.base + request.uri, data=data, method=method,
                                             headers=dict(request.header_params))
        try:
            with urllib.request.urlopen(raw_request, timeout=30) as response:
                result = response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            result = error.code, dict(error.headers), error.read().decode()
        self.raw_seen.append((method, path, result[0]))
        return result

    def stderr_excerpt(self):
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace")
        lines = [line for line in text.splitlines() if line.strip()]
        interesting = [line for line in lines if re.match(r"^(Simultaneous accesses|Fatal|.*[Ee]rror:|\*\*\* Program crashed)", line)]
        return " | ".join((interesting or lines)[:3])[:400]

    def stop(self, timeout=5.0):
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


SIM = None
CHECKS = []
USED = set()  # servers a check has already changed, so later checks pick fresh ones


def check(fn):
    CHECKS.append(fn)
    return fn


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def describe(error):
    if isinstance(error, sdk_exceptions.ServiceResponseException):
        return (f"{type(error).__name__}(status={error.status_code}, error_code={error.error_code!r}, "
                f"request_id={error.request_id!r}, error_msg={str(error.error_msg)[:200]!r})")
    return f"{type(error).__name__}: {error}"


def expect_error(call, status, codes=None, what="call"):
    """Runs `call`; it must raise an SDK service exception with `status` (and one of `codes`)."""
    try:
        result = call()
    except sdk_exceptions.ServiceResponseException as error:
        expect(error.status_code == status, f"{what}: expected HTTP {status}, got {describe(error)}")
        if codes is not None:
            expect(error.error_code in codes, f"{what}: expected error_code in {codes}, got {describe(error)}")
        return error
    raise AssertionError(f"{what}: expected HTTP {status} {codes or ''}, but the SDK returned "
                         f"status {getattr(result, 'status_code', '?')}: {str(result)[:300]}")


def c():
    return SIM.client


# ---------------------------------------------------------------- helpers over the SDK

def list_all_v1(**filters):
    """All servers via GET /v1/{p}/cloudservers/detail, limit 1000, offset = page number from 1."""
    servers, page, counts = [], 1, set()
    while True:
        response = c().list_servers_details(ListServersDetailsRequest(limit=1000, offset=page, **filters))
        counts.add(response.count)
        batch = response.servers or []
        servers.extend(batch)
        if len(batch) < 1000:
            return servers, counts, page
        page += 1
        expect(page < 100, "v1 paging does not end")


def project_server_count():
    _, state = SIM.admin("GET", "state")
    return next(p["servers"] for p in state["projects"] if p["id"] == PROJECT)


def pick(status, n):
    """n servers of the project in `status` with no task_state, unlocked, not used by another check."""
    servers, _, _ = list_all_v1(status=status)
    chosen = [s.id for s in servers
              if s.id not in USED and not s.os_ext_st_stask_state and not s.locked and s.status == status][:n]
    expect(len(chosen) == n, f"only {len(chosen)} fresh {status} servers available")
    USED.update(chosen)
    return chosen


def show(server_id):
    return c().show_server(ShowServerRequest(server_id=server_id)).server


def wait_job(job_id, timeout=JOB_TIMEOUT):
    """Polls show_job until SUCCESS or FAIL, at most `timeout` real seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = c().show_job(ShowJobRequest(job_id=job_id))
        if last.status in ("SUCCESS", "FAIL"):
            return last
        expect(last.status in ("INIT", "RUNNING"), f"job {job_id}: unexpected status {last.status!r}")
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not finished after {timeout}s (last status {getattr(last, 'status', None)})")


def ids_body(server_ids):
    return [ServerId(id=i) for i in server_ids]


def batch_stop(server_ids, stop_type="SOFT"):
    return c().batch_stop_servers(BatchStopServersRequest(body=BatchStopServersRequestBody(
        os_stop=BatchStopServersOption(servers=ids_body(server_ids), type=stop_type))))


def batch_start(server_ids):
    return c().batch_start_servers(BatchStartServersRequest(body=BatchStartServersRequestBody(
        os_start=BatchStartServersOption(servers=ids_body(server_ids)))))


def create_request(name, flavor, count=1, az=None):
    server = PostPaidServer(
        availability_zone=az, count=count, flavor_ref=flavor, image_ref=IMAGE_ID, name=name, vpcid=VPC_ID,
        nics=[PostPaidServerNic(subnet_id=SUBNET_ID)], root_volume=PostPaidServerRootVolume(volumetype="SATA"))
    return CreatePostPaidServersRequest(body=CreatePostPaidServersRequestBody(server=server))


def limits():
    return c().show_server_limits(ShowServerLimitsRequest()).absolute


class QuotaHeadroom:
    """Raises the instance quota to usage + `room` for the duration of a check, then restores it.

    Needed because the generated fleet (2500 servers) is larger than the default quota (2048
    instances, the seed example's value), see limits_fleet_within_quota."""

    def __init__(self, room=50):
        self.room = room

    def __enter__(self):
        _, self.saved = SIM.admin("GET", f"projects/{PROJECT}/quota")
        used = limits().total_instances_used
        if self.saved["instances"] >= 0 and self.saved["instances"] < used + self.room:
            SIM.admin("PUT", f"projects/{PROJECT}/quota", {"instances": used + self.room})
        return self

    def __exit__(self, *exc):
        SIM.admin("PUT", f"projects/{PROJECT}/quota", self.saved)
        return False


def flavors(az=None):
    return {f.id: f for f in c().list_flavors(ListFlavorsRequest(availability_zone=az)).flavors or []}


def by_tag(action, tags=None, not_tags=None, matches=None, limit=None, offset=None):
    return c().list_servers_by_tag(ListServersByTagRequest(body=ListServersByTagRequestBody(
        action=action, tags=tags, not_tags=not_tags, matches=matches, limit=limit, offset=offset)))


def split_tag(text):
    key, _, value = text.partition("=")
    return key, value


def check_job_times(job, what):
    for field in ("begin_time", "end_time"):
        value = getattr(job, field)
        expect(isinstance(value, str) and JOB_TIME.match(value),
               f"{what} {field} {value!r} is not in the seed format 2016-04-25T20:04:47.591Z")
    expect(job.begin_time <= job.end_time, f"{what}: begin_time {job.begin_time} after end_time {job.end_time}")


def check_finished_job(job, job_id, server_ids, status, what):
    expect(job.job_id == job_id, f"{what}: job_id {job.job_id!r} != {job_id!r}")
    expect(job.status == status, f"{what}: status {job.status!r}, expected {status} "
                                 f"(error_code={job.error_code!r}, fail_reason={job.fail_reason!r})")
    check_job_times(job, f"{what} job")
    expect(job.entities is not None and job.entities.sub_jobs is not None, f"{what}: no entities.sub_jobs")
    subs = job.entities.sub_jobs
    expect(job.entities.sub_jobs_total == len(server_ids),
           f"{what}: sub_jobs_total {job.entities.sub_jobs_total}, expected {len(server_ids)}")
    got = sorted(s.entities.server_id for s in subs if s.entities)
    expect(got == sorted(server_ids), f"{what}: sub-job server ids {got} != {sorted(server_ids)}")
    for sub in subs:
        expect(sub.status == status, f"{what}: sub-job {sub.job_id} status {sub.status!r}, expected {status}")
        expect(sub.job_id and sub.job_id != job_id, f"{what}: sub-job has no own job_id ({sub.job_id!r})")
        check_job_times(sub, f"{what} sub-job {sub.job_id}")
    return subs


def expect_state(server_id, status, vm_state, power_state, what):
    server = show(server_id)
    expect(server.status == status and server.os_ext_st_svm_state == vm_state
           and server.os_ext_st_stask_state is None and server.os_ext_st_spower_state == power_state,
           f"{what}: server {server_id} is status={server.status} vm_state={server.os_ext_st_svm_state} "
           f"task_state={server.os_ext_st_stask_state} power_state={server.os_ext_st_spower_state}; expected "
           f"{status}/{vm_state}/None/{power_state}")


# ---------------------------------------------------------------- checks: listing

@check
def limits_fleet_within_quota():
    now = limits()
    for used, limit, what in ((now.total_instances_used, now.max_total_instances, "instances"),
                              (now.total_cores_used, now.max_total_cores, "cores"),
                              (now.total_ram_used, now.max_total_ram_size, "RAM MB")):
        expect(limit < 0 or used <= limit, f"usage exceeds quota out of the box: {used} {what} used, quota {limit} "
                                           f"(fleet of {SERVERS_PER_PROJECT} servers per project)")


@check
def list_servers_details_v1_paging():
    total = project_server_count()
    expect(total == SERVERS_PER_PROJECT, f"/_sim/state says {total} servers, started with {SERVERS_PER_PROJECT}")
    servers, counts, pages = list_all_v1()
    ids = [s.id for s in servers]
    expect(counts == {total}, f"count on the pages was {sorted(counts)}, expected {total} on every page")
    expect(len(ids) == total, f"{len(ids)} servers over {pages} pages, expected {total}")
    expect(len(set(ids)) == total, f"{len(ids) - len(set(ids))} servers came back more than once")
    expect(pages == (total // 1000) + 1, f"{pages} pages for {total} servers at limit 1000")
    beyond = c().list_servers_details(ListServersDetailsRequest(limit=1000, offset=pages + 1))
    expect(not beyond.servers and beyond.count == total,
           f"page {pages + 1}: {len(beyond.servers or [])} servers, count {beyond.count}; expected none, count {total}")
    small = c().list_servers_details(ListServersDetailsRequest(limit=7, offset=3))
    expect([s.id for s in small.servers] == ids[14:21],
           "limit=7&offset=3 is not the third page of 7 (offset must be a page number, not a row offset)")
    zero = c().list_servers_details(ListServersDetailsRequest(limit=7, offset=0))
    expect([s.id for s in zero.servers] == ids[:7], "offset=0 is not treated as page 1")


@check
def list_servers_details_v1_status_filter():
    servers, _, _ = list_all_v1()
    expected = {"ACTIVE": {s.id for s in servers if s.status == "ACTIVE"},
                "SHUTOFF": {s.id for s in servers if s.status == "SHUTOFF"}}
    expect(expected["ACTIVE"] and expected["SHUTOFF"], "the fleet needs both ACTIVE and SHUTOFF servers")
    for status, want in expected.items():
        got, counts, _ = list_all_v1(status=status)
        wrong = [s.id for s in got if s.status != status]
        expect(not wrong, f"status={status} returned {len(wrong)} servers of another status")
        expect({s.id for s in got} == want and len(got) == len(want),
               f"status={status}: {len(got)} servers, expected {len(want)}")
        expect(counts == {len(want)}, f"status={status}: count {sorted(counts)}, expected {len(want)}")
    expect(len(expected["ACTIVE"]) + len(expected["SHUTOFF"]) == len(servers),
           "servers other than ACTIVE/SHUTOFF in an idle fleet")


@check
def list_servers_details_v1_tag_and_name_filters():
    servers, _, _ = list_all_v1()
    expected = {
        "tags=env=prod": {s.id for s in servers if "env=prod" in (s.tags or [])},
        "not-tags=env=prod": {s.id for s in servers if "env=prod" not in (s.tags or [])},
        "name=web-prod": {s.id for s in servers if "web-prod" in s.name},
    }
    for label, filters in (("tags=env=prod", {"tags": "env=prod"}), ("not-tags=env=prod", {"not_tags": "env=prod"}),
                           ("name=web-prod", {"name": "web-prod"})):
        got, counts, _ = list_all_v1(**filters)
        want = expected[label]
        expect(want, f"{label}: nothing to find in the fleet")
        expect({s.id for s in got} == want and len(got) == len(want),
               f"{label}: {len(got)} servers, expected {len(want)}")
        expect(counts == {len(want)}, f"{label}: count {sorted(counts)}, expected {len(want)}")


@check
def nova_list_servers_details_marker_paging():
    v1_ids = {s.id for s in list_all_v1()[0]}
    limit, marker, ids, pages = 400, None, [], 0
    # The SDK request has a field for the microversion header: open_stack_api_version ->
    # `OpenStack-API-Version: compute 2.26` (tags appear from 2.26 on).
    while True:
        response = c().nova_list_servers_details(NovaListServersDetailsRequest(
            limit=limit, marker=marker, open_stack_api_version="compute 2.26"))
        pages += 1
        batch = response.servers or []
        expect(len(batch) <= limit, f"page {pages}: {len(batch)} servers > limit {limit}")
        expect(all(isinstance(s.tags, list) for s in batch), f"page {pages}: tags missing at microversion 2.26")
        ids.extend(s.id for s in batch)
        links = [link for link in (response.servers_links or []) if link.rel == "next"]
        if not links:
            expect(len(ids) == len(v1_ids), f"no next link after {len(ids)} of {len(v1_ids)} servers")
            break
        expect(len(batch) == limit, f"page {pages}: {len(batch)} servers but a next link")
        query = urllib.parse.parse_qs(urlsplit(links[0].href).query)
        expect(query.get("marker") == [batch[-1].id],
               f"page {pages}: next link {links[0].href} does not carry marker={batch[-1].id}")
        marker = batch[-1].id
        expect(pages < 50, "Nova paging does not end")
    expect(pages >= 5, f"only {pages} pages")
    expect(len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} servers came back twice")
    expect(set(ids) == v1_ids, f"Nova listing differs from v1: {len(set(ids) - v1_ids)} extra, {len(v1_ids - set(ids))} missing")
    plain = c().nova_list_servers_details(NovaListServersDetailsRequest(limit=2))
    expect(all(s.tags is None for s in plain.servers), "tags present without a microversion (default 2.1)")


# ---------------------------------------------------------------- checks: show

@check
def show_server_v1():
    listed = c().list_servers_details(ListServersDetailsRequest(limit=5, offset=2)).servers[3]
    server = show(listed.id)
    expect(server.id == listed.id and server.name == listed.name and server.status == listed.status,
           f"show_server {server.id}/{server.name}/{server.status} differs from the listing "
           f"{listed.id}/{listed.name}/{listed.status}")
    expect(server.flavor.id == listed.flavor.id and server.flavor.vcpus == listed.flavor.vcpus,
           "flavor differs between show and list")
    expect(server.tenant_id == PROJECT, f"tenant_id {server.tenant_id}")
    expect(server.os_ext_a_zavailability_zone in AZS, f"AZ {server.os_ext_a_zavailability_zone}")
    expect(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", server.created or ""), f"created {server.created!r}")


@check
def show_server_v1_unknown_404():
    error = expect_error(lambda: c().show_server(ShowServerRequest(server_id="00000000-0000-0000-0000-000000000000")),
                         404, ["Ecs.0114"], "show_server(unknown)")
    expect(isinstance(error, sdk_exceptions.ClientRequestException), f"{type(error).__name__}, not ClientRequestException")
    expect(error.request_id, "no request_id (X-Request-Id) on the 404")


@check
def nova_show_server():
    listed = c().list_servers_details(ListServersDetailsRequest(limit=3, offset=5)).servers[1]
    server = c().nova_show_server(NovaShowServerRequest(server_id=listed.id, open_stack_api_version="compute 2.26")).server
    expect(server.id == listed.id and server.name == listed.name and server.status == listed.status,
           f"Nova show {server.id}/{server.name}/{server.status} differs from v1 {listed.id}/{listed.name}/{listed.status}")
    expect(sorted(server.tags or []) == sorted(listed.tags or []), f"tags {server.tags} vs v1 {listed.tags}")
    expect(server.flavor.id == listed.flavor.id, f"flavor {server.flavor.id} vs {listed.flavor.id}")


@check
def nova_show_server_unknown_404():
    error = expect_error(lambda: c().nova_show_server(NovaShowServerRequest(server_id="00000000-0000-0000-0000-00000000dead")),
                         404, None, "nova_show_server(unknown)")
    # The Nova fault body {"itemNotFound": {"code": 404, "message": ...}} gives an int error_code in the SDK.
    expect(error.error_code in (404, "404"), f"error_code {error.error_code!r}, expected the Nova fault code 404")
    expect(error.request_id, "no request_id on the Nova 404")


@check
def show_job_unknown():
    expect_error(lambda: c().show_job(ShowJobRequest(job_id="ffffffffffffffffffffffffffffffff")),
                 400, ["Common.0011"], "show_job(unknown)")


# ---------------------------------------------------------------- checks: tag query

@check
def list_servers_by_tag():
    servers, _, _ = list_all_v1()
    tagged = {s.id: dict(split_tag(t) for t in (s.tags or [])) for s in servers}
    names = {s.id: s.name for s in servers}

    def collect(tags=None, not_tags=None, matches=None, page=150):
        got, offset, totals = [], 0, set()
        while True:
            response = by_tag("filter", tags, not_tags, matches, limit=str(page), offset=str(offset))
            totals.add(response.total_count)
            batch = response.resources or []
            got.extend(batch)
            if len(batch) < page:
                return got, totals
            offset += page
            expect(offset < 100000, "tag paging does not end")

    def verify(label, expected_ids, tags=None, not_tags=None, matches=None):
        got, totals = collect(tags, not_tags, matches)
        ids = [r.resource_id for r in got]
        expect(len(ids) == len(set(ids)), f"{label}: duplicates over the pages")
        expect(set(ids) == expected_ids,
               f"{label}: {len(set(ids) - expected_ids)} unexpected, {len(expected_ids - set(ids))} missing "
               f"of {len(expected_ids)}")
        expect(totals == {len(expected_ids)}, f"{label}: total_count {sorted(totals)}, expected {len(expected_ids)}")
        for r in got:
            expect(r.resource_name == names[r.resource_id], f"{label}: resource_name {r.resource_name!r} wrong")
            expect({t.key: t.value for t in r.tags or []} == tagged[r.resource_id], f"{label}: tags of {r.resource_id} wrong")
        count = by_tag("count", tags, not_tags, matches)
        expect(count.total_count == len(expected_ids),
               f"{label}: action=count total_count {count.total_count}, filter found {len(expected_ids)}")
        expect(not count.resources, f"{label}: action=count returned resources")

    prod = {i for i, t in tagged.items() if t.get("env") == "prod"}
    expect(len(prod) > 300, f"only {len(prod)} env=prod servers in the fleet")
    verify("env=prod", prod, tags=[ServerTags(key="env", values=["prod"])])
    verify("env in (prod, staging)", {i for i, t in tagged.items() if t.get("env") in ("prod", "staging")},
           tags=[ServerTags(key="env", values=["prod", "staging"])])
    verify("warden-schedule (any value)", {i for i, t in tagged.items() if "warden-schedule" in t},
           tags=[ServerTags(key="warden-schedule", values=[])])
    verify("env=prod AND NOT team=payments",
           {i for i in prod if tagged[i].get("team") != "payments"},
           tags=[ServerTags(key="env", values=["prod"])], not_tags=[ServerTags(key="team", values=["payments"])])
    verify("env=prod AND name contains web-prod", {i for i in prod if "web-prod" in names[i]},
           tags=[ServerTags(key="env", values=["prod"])], matches=[ServerTagMatch(key="resource_name", value="web-prod")])
    verify("env=prod AND team=data", {i for i in prod if tagged[i].get("team") == "data"},
           tags=[ServerTags(key="env", values=["prod"]), ServerTags(key="team", values=["data"])])


# ---------------------------------------------------------------- checks: batch actions and jobs

@check
def batch_stop_then_start():
    ids = pick("ACTIVE", 3)
    accepted = batch_stop(ids)
    expect(accepted.job_id and re.match(r"^[0-9a-f]{16,}$", accepted.job_id), f"batch_stop job_id {accepted.job_id!r}")
    job = wait_job(accepted.job_id)
    check_finished_job(job, accepted.job_id, ids, "SUCCESS", "stop")
    expect(job.error_code is None and job.fail_reason is None, f"stop SUCCESS with error_code {job.error_code!r}")
    for server_id in ids:
        expect_state(server_id, "SHUTOFF", "stopped", 3, "after batch stop")
    started = batch_start(ids)
    expect(started.job_id and started.job_id != accepted.job_id, f"batch_start job_id {started.job_id!r}")
    check_finished_job(wait_job(started.job_id), started.job_id, ids, "SUCCESS", "start")
    for server_id in ids:
        expect_state(server_id, "ACTIVE", "active", 1, "after batch start")


@check
def batch_reboot_soft():
    ids = pick("ACTIVE", 2)
    accepted = c().batch_reboot_servers(BatchRebootServersRequest(body=BatchRebootServersRequestBody(
        reboot=BatchRebootSeversOption(servers=ids_body(ids), type="SOFT"))))
    expect(accepted.job_id, "batch_reboot returned no job_id")
    check_finished_job(wait_job(accepted.job_id), accepted.job_id, ids, "SUCCESS", "reboot")
    for server_id in ids:
        expect_state(server_id, "ACTIVE", "active", 1, "after reboot")


@check
def job_failure_injected():
    ids = pick("SHUTOFF", 2)
    SIM.admin("POST", "jobs/fail", {"count": 1, "error_code": "Ecs.0226"})
    accepted = batch_start(ids)
    expect(accepted.job_id, "batch_start returned no job_id")
    job = wait_job(accepted.job_id)
    subs = check_finished_job(job, accepted.job_id, ids, "FAIL", "failing start")
    expect(job.error_code == "Ecs.0226", f"job error_code {job.error_code!r}, expected Ecs.0226")
    expect(job.fail_reason, f"job fail_reason {job.fail_reason!r}")
    for sub in subs:
        expect(sub.error_code == "Ecs.0226", f"sub-job error_code {sub.error_code!r}")
        expect(sub.fail_reason, f"sub-job {sub.job_id} has no fail_reason")
    for server_id in ids:
        expect_state(server_id, "SHUTOFF", "stopped", 3, "after the failed start")
    # The fault was for one job only: the next start works.
    retry = batch_start(ids)
    check_finished_job(wait_job(retry.job_id), retry.job_id, ids, "SUCCESS", "retried start")
    for server_id in ids:
        expect_state(server_id, "ACTIVE", "active", 1, "after the retried start")


@check
def job_stuck_then_released():
    ids = pick("ACTIVE", 2)
    SIM.admin("POST", "jobs/stick", {"count": 1})
    try:
        accepted = batch_stop(ids)
        expect(accepted.job_id, "batch_stop returned no job_id")
        time.sleep(0.5)  # 25 simulated seconds: a normal stop takes 10
        SIM.admin("POST", "clock", {"advance": 600})  # and ten more simulated minutes
        job = c().show_job(ShowJobRequest(job_id=accepted.job_id))
        expect(job.status == "RUNNING", f"stuck job status {job.status!r} after 10+ simulated minutes, expected RUNNING")
        expect(job.end_time is None, f"running job has end_time {job.end_time!r}")
        expect(all(s.status == "RUNNING" and s.end_time is None for s in job.entities.sub_jobs),
               f"sub-jobs {[s.status for s in job.entities.sub_jobs]} of a stuck job")
        for server_id in ids:
            server = show(server_id)
            expect(server.status == "ACTIVE" and server.os_ext_st_stask_state == "powering-off"
                   and server.os_ext_st_svm_state == "active",
                   f"stuck stop: server {server_id} is {server.status}/{server.os_ext_st_svm_state}/"
                   f"{server.os_ext_st_stask_state}, expected ACTIVE/active/powering-off")
            nova = c().nova_show_server(NovaShowServerRequest(server_id=server_id)).server
            expect(nova.os_ext_st_stask_state == "powering-off", f"Nova task_state {nova.os_ext_st_stask_state!r}")
    finally:
        SIM.admin("POST", "jobs/release", {})
    job = wait_job(accepted.job_id)
    check_finished_job(job, accepted.job_id, ids, "SUCCESS", "released stop")
    for server_id in ids:
        expect_state(server_id, "SHUTOFF", "stopped", 3, "after release")


# ---------------------------------------------------------------- checks: create, quota, flavors

@check
def create_servers_updates_limits():
    flavor_id = CREATE_FLAVOR
    catalogue = flavors()
    expect(flavor_id in catalogue, f"flavor {flavor_id} not in list_flavors (started with --flavors {FLAVORS})")
    vcpus, ram = int(catalogue[flavor_id].vcpus), int(catalogue[flavor_id].ram)
    expect(vcpus > 1, f"{flavor_id} has {vcpus} vCPU: cores would not be told apart from instances")
    with QuotaHeadroom():
        _create_servers_updates_limits(flavor_id, vcpus, ram)


def _create_servers_updates_limits(flavor_id, vcpus, ram):
    before = limits()
    response = c().create_post_paid_servers(create_request("conf-create", flavor_id, count=2, az="eu-west-0a"))
    expect(response.job_id, f"create returned no job_id ({response})")
    expect(response.server_ids and len(response.server_ids) == 2, f"create serverIds {response.server_ids!r}")
    USED.update(response.server_ids)
    job = wait_job(response.job_id)
    check_finished_job(job, response.job_id, response.server_ids, "SUCCESS", "create")
    # Whether usage grows when the create is accepted or when it completes is not in the seeds
    # (digest §17.14): compare once the job has succeeded.
    after = limits()
    deltas = (after.total_instances_used - before.total_instances_used, after.total_cores_used - before.total_cores_used,
              after.total_ram_used - before.total_ram_used)
    expect(deltas == (2, 2 * vcpus, 2 * ram),
           f"usage grew by instances/cores/RAM {deltas}, expected (2, {2 * vcpus}, {2 * ram}) for 2 x {flavor_id}")
    expect((after.max_total_instances, after.max_total_cores, after.max_total_ram_size)
           == (before.max_total_instances, before.max_total_cores, before.max_total_ram_size), "quota changed on create")
    listed = c().list_servers_details(ListServersDetailsRequest(name="conf-create", limit=1000))
    expect(listed.count == 2, f"name=conf-create lists {listed.count} servers")
    by_name = {s.name: s for s in listed.servers}
    expect(sorted(by_name) == ["conf-create-0000", "conf-create-0001"], f"names {sorted(by_name)}")
    expect(sorted(s.id for s in listed.servers) == sorted(response.server_ids), "listed ids differ from serverIds")
    for server in listed.servers:
        expect(server.status == "ACTIVE" and server.os_ext_st_stask_state is None and server.flavor.id == flavor_id
               and server.flavor.vcpus == str(vcpus) and server.os_ext_a_zavailability_zone == "eu-west-0a",
               f"{server.name}: {server.status}/{server.os_ext_st_stask_state} {server.flavor.id} "
               f"{server.os_ext_a_zavailability_zone}")


@check
def create_refused_for_quota():
    _, quota = SIM.admin("GET", f"projects/{PROJECT}/quota")
    before = limits()
    try:
        SIM.admin("PUT", f"projects/{PROJECT}/quota", {"instances": before.total_instances_used})
        expect(limits().max_total_instances == before.total_instances_used, "admin quota change not visible in limits")
        expect_error(lambda: c().create_post_paid_servers(create_request("conf-quota", "s3.small.2")),
                     400, ["Ecs.0001"], "create over the instance quota")
        expect(limits().total_instances_used == before.total_instances_used, "a refused create changed usage")
    finally:
        SIM.admin("PUT", f"projects/{PROJECT}/quota", quota)


@check
def create_refused_for_sold_out_flavor():
    flavor_id = "c3.small.2"
    with QuotaHeadroom():
        _create_refused_for_sold_out_flavor(flavor_id)


def _create_refused_for_sold_out_flavor(flavor_id):
    try:
        SIM.admin("PUT", f"flavors/{flavor_id}/sale", {"az": "eu-west-0b", "status": "sellout"})
        expect_error(lambda: c().create_post_paid_servers(create_request("conf-sellout", flavor_id, az="eu-west-0b")),
                     400, ["Ecs.0319"], "create of a sold-out flavor")
        SIM.admin("PUT", f"flavors/{flavor_id}/sale", {"az": "eu-west-0b", "status": "abandon"})
        expect_error(lambda: c().create_post_paid_servers(create_request("conf-abandon", flavor_id, az="eu-west-0b")),
                     400, ["Ecs.0029"], "create of an abandoned flavor")
        response = c().create_post_paid_servers(create_request("conf-otheraz", flavor_id, az="eu-west-0c"))
        expect(response.job_id and response.server_ids, f"create in eu-west-0c refused: {response}")
        USED.update(response.server_ids)
        check_finished_job(wait_job(response.job_id), response.job_id, response.server_ids, "SUCCESS", "create in c")
        server = show(response.server_ids[0])
        expect(server.os_ext_a_zavailability_zone == "eu-west-0c" and server.status == "ACTIVE",
               f"created server {server.os_ext_a_zavailability_zone}/{server.status}")
        SIM.admin("PUT", f"flavors/{flavor_id}/sale", {"az": "eu-west-0b", "status": None})
        SIM.admin("PUT", f"flavors/{flavor_id}/sale", {"status": "sellout"})
        expect_error(lambda: c().create_post_paid_servers(create_request("conf-regionsell", flavor_id, az="eu-west-0a")),
                     400, ["Ecs.0319"], "create of a flavor sold out region-wide")
    finally:
        SIM.admin("PUT", f"flavors/{flavor_id}/sale", {"az": "eu-west-0b", "status": None})
        SIM.admin("PUT", f"flavors/{flavor_id}/sale", {"status": None})


def az_states(spec):
    states = {}
    for entry in (spec or "").split(","):
        match = re.match(r"^\s*([^()]+?)\((\w*)\)\s*$", entry)
        expect(match, f"cond:operation:az entry {entry!r} is not NAME(STATUS)")
        states[match.group(1)] = match.group(2)
    return states


@check
def list_flavors_sale_states():
    a, b, p = "m3.small.8", "c6.small.4", "s6.small.4"
    try:
        SIM.admin("PUT", f"flavors/{a}/sale", {"az": "eu-west-0a", "status": "sellout"})
        SIM.admin("PUT", f"flavors/{a}/sale", {"az": "eu-west-0c", "status": "obt"})
        SIM.admin("PUT", f"flavors/{b}/sale", {"status": "abandon"})
        SIM.admin("PUT", f"flavors/{b}/sale", {"az": "eu-west-0b", "status": "normal"})
        SIM.admin("PUT", f"flavors/{p}/sale", {"status": "promotion"})
        every = flavors()
        expect({a, b, p} <= set(every), f"list_flavors without AZ lacks {({a, b, p} - set(every))}")
        spec_a, spec_b, spec_p = every[a].os_extra_specs, every[b].os_extra_specs, every[p].os_extra_specs
        expect(az_states(spec_a.condoperationaz) == {"eu-west-0a": "sellout", "eu-west-0c": "obt"},
               f"{a} cond:operation:az {spec_a.condoperationaz!r}")
        expect(spec_a.condoperationstatus is None, f"{a} cond:operation:status {spec_a.condoperationstatus!r}")
        expect(spec_b.condoperationstatus == "abandon", f"{b} cond:operation:status {spec_b.condoperationstatus!r}")
        expect(az_states(spec_b.condoperationaz) == {"eu-west-0b": "normal"}, f"{b} cond:operation:az {spec_b.condoperationaz!r}")
        expect(spec_p.condoperationstatus == "promotion", f"{p} cond:operation:status {spec_p.condoperationstatus!r}")
        expect(spec_a.ecsperformancetype == "highmem", f"{a} ecs:performancetype {spec_a.ecsperformancetype!r}")
        want = {"eu-west-0a": {a: False, b: False, p: True}, "eu-west-0b": {a: True, b: True, p: True},
                "eu-west-0c": {a: True, b: False, p: True}}
        for az, expected in want.items():
            listed = flavors(az)
            for flavor_id, present in expected.items():
                expect((flavor_id in listed) == present,
                       f"availability_zone={az}: {flavor_id} {'absent' if present else 'present'}, expected "
                       f"{'present' if present else 'absent'}")
            expect(len(listed) == len(every) - sum(not v for v in expected.values()),
                   f"availability_zone={az}: {len(listed)} flavors, other flavors went missing")
    finally:
        for flavor_id in (a, b, p):
            for az in AZS:
                SIM.admin("PUT", f"flavors/{flavor_id}/sale", {"az": az, "status": None})
            SIM.admin("PUT", f"flavors/{flavor_id}/sale", {"status": None})
    cleared = flavors()[a].os_extra_specs
    expect(cleared.condoperationaz is None and cleared.condoperationstatus is None,
           f"cleared sale state still listed: {cleared.condoperationaz!r} / {cleared.condoperationstatus!r}")
    expect(a in flavors("eu-west-0a"), f"{a} still missing in eu-west-0a after clearing")


# ---------------------------------------------------------------- checks: tags

def server_tags(server_id):
    return {t.key: t.value for t in c().show_server_tags(ShowServerTagsRequest(server_id=server_id)).tags or []}


def create_tags(server_id, pairs):
    return c().batch_create_server_tags(BatchCreateServerTagsRequest(server_id=server_id, body=BatchCreateServerTagsRequestBody(
        action="create", tags=[BatchAddServerTag(key=k, value=v) for k, v in pairs])))


def delete_tags(server_id, pairs):
    return c().batch_delete_server_tags(BatchDeleteServerTagsRequest(server_id=server_id, body=BatchDeleteServerTagsRequestBody(
        action="delete", tags=[ServerTag(key=k, value=v) for k, v in pairs])))


@check
def server_tags_create_show_delete():
    server_id = pick("ACTIVE", 1)[0]
    original = server_tags(server_id)
    expect(original, "fleet server has no tags")
    expect(show(server_id).tags and sorted(show(server_id).tags) == sorted(
        k if v == "" else f"{k}={v}" for k, v in original.items()), "show_server tags differ from show_server_tags")
    create_tags(server_id, [("conf-a", "1"), ("conf_b", "x.y")])
    expect(server_tags(server_id) == {**original, "conf-a": "1", "conf_b": "x.y"},
           f"after create: {server_tags(server_id)}")
    create_tags(server_id, [("conf-a", "2")])
    expect(server_tags(server_id).get("conf-a") == "2", "create with an existing key did not overwrite the value")
    expect("conf-a=2" in (show(server_id).tags or []), "show_server does not show the new tag as conf-a=2")
    nova = c().nova_show_server(NovaShowServerRequest(server_id=server_id, open_stack_api_version="compute 2.26")).server
    expect("conf-a=2" in (nova.tags or []), f"Nova 2.26 tags {nova.tags}")
    delete_tags(server_id, [("conf-a", None), ("conf_b", "x.y")])
    expect(server_tags(server_id) == original, f"after delete: {server_tags(server_id)}, expected {original}")
    delete_tags(server_id, [("conf-never-there", None)])  # idempotent
    expect(server_tags(server_id) == original, "deleting an absent tag changed the tags")


@check
def server_tags_too_many():
    server_id = pick("ACTIVE", 1)[0]
    original = server_tags(server_id)
    expect_error(lambda: create_tags(server_id, [(f"conf-k{i}", "v") for i in range(11)]), 400, ["Ecs.0905"],
                 "11 tags")
    expect(server_tags(server_id) == original, "a refused tag create changed the tags")
    room = 10 - len(original)
    create_tags(server_id, [(f"conf-k{i}", "v") for i in range(room)])
    expect(len(server_tags(server_id)) == 10, "could not fill up to 10 tags")
    expect_error(lambda: create_tags(server_id, [("conf-one-more", "v")]), 400, ["Ecs.0905"], "11th tag")


@check
def server_tags_invalid_key():
    server_id = pick("ACTIVE", 1)[0]
    original = server_tags(server_id)
    for key in ("bad key!", "semi;colon", "dot.ted"):
        expect_error(lambda: create_tags(server_id, [(key, "v")]), 400, ["Ecs.0906", "Ecs.0907"], f"tag key {key!r}")
    # Over-long keys: the code for a length violation is not in the seeds.
    expect_error(lambda: create_tags(server_id, [("x" * 37, "v")]), 400, ["Ecs.0005", "Ecs.0906", "Ecs.0907"],
                 "37-character tag key")
    expect_error(lambda: create_tags(server_id, [("conf-ok", "bad value!")]), 400, ["Ecs.0906", "Ecs.0907"],
                 "tag value 'bad value!'")
    expect(server_tags(server_id) == original, "a refused tag create changed the tags")


@check
def list_server_tags_project():
    expected = {}
    for server in list_all_v1()[0]:
        for text in server.tags or []:
            key, value = split_tag(text)
            expected.setdefault(key, set()).add(value)
    response = c().list_server_tags(ListServerTagsRequest())
    got = {t.key: set(t.values or []) for t in response.tags or []}
    expect(len(response.tags or []) == len(got), "a key is listed twice")
    expect(set(got) == set(expected), f"keys {sorted(got)} != {sorted(expected)}")
    for key in expected:
        expect(got[key] == expected[key], f"values of {key}: {sorted(got[key])} != {sorted(expected[key])}")


# ---------------------------------------------------------------- checks: auth, throttling, request ids, log

@check
def wrong_secret_key_401():
    for label, client in (("wrong SK", SIM.make_client("not-the-secret")),
                          ("unknown AK", SIM.make_client(SK, ak="UNKNOWNACCESSKEY"))):
        error = expect_error(lambda: client.list_servers_details(ListServersDetailsRequest(limit=1)), 401, None, label)
        expect(isinstance(error, sdk_exceptions.ClientRequestException), f"{label}: {type(error).__name__}")
        expect(isinstance(error.error_code, str) and re.match(r"^[A-Za-z]+\.\d+$", error.error_code),
               f"{label}: error_code {error.error_code!r} is not a parsed code like APIGW.0301")
        expect(error.request_id, f"{label}: no request_id")
        expect(error.error_msg and error.error_msg != "401", f"{label}: no error message")
        error = expect_error(lambda: client.batch_stop_servers(BatchStopServersRequest(body=BatchStopServersRequestBody(
            os_stop=BatchStopServersOption(servers=[ServerId(id="x")])))), 401, None, f"{label} POST")
        expect(error.request_id and isinstance(error.error_code, str) and "." in error.error_code,
               f"{label} POST: {describe(error)}")


def set_faults(**changes):
    faults = dict(DEFAULT_FAULTS)
    faults.update(changes)
    SIM.admin("PUT", "faults", faults)


def burst(calls, fn):
    results = []
    for _ in range(calls):
        try:
            results.append(fn())
        except sdk_exceptions.ServiceResponseException as error:
            results.append(error)
    return results


@check
def throttling_429_common_1503():
    set_faults(throttleRequestsPerSecond=0.2, throttleBurst=3, throttleMode="429")
    try:
        results = burst(8, lambda: by_tag("count", tags=[ServerTags(key="env", values=["prod"])]))
    finally:
        SIM.reset_faults()
    errors = [r for r in results if isinstance(r, Exception)]
    passed = [r for r in results if not isinstance(r, Exception)]
    expect(errors, f"8 rapid calls at 0.2/s with burst 3 were never throttled")
    expect(1 <= len(passed) <= 4, f"{len(passed)} calls passed; burst is 3")
    for error in errors:
        expect(error.status_code == 429 and error.error_code == "Common.1503",
               f"throttled call: {describe(error)}, expected 429 Common.1503")
        expect(error.request_id, f"throttled call has no request_id: {describe(error)}")
        expect(isinstance(error, sdk_exceptions.ClientRequestException), type(error).__name__)
    after = by_tag("count", tags=[ServerTags(key="env", values=["prod"])])
    expect(after.status_code == 200 and isinstance(after.total_count, int), "calls still refused after the faults reset")


@check
def throttling_429_on_get_sdk_quirk():
    # Documents the SDK quirk: with the default retry_times=0, urllib3 turns a 429 on a GET into a
    # RetryError; the SDK raises ClientRequestException(429) with error_code "429" and the body and
    # X-Request-Id are lost. Only the status survives, so that is all that can be asserted.
    set_faults(throttleRequestsPerSecond=0.2, throttleBurst=1, throttleMode="429")
    try:
        results = burst(4, lambda: c().show_server_limits(ShowServerLimitsRequest()))
    finally:
        SIM.reset_faults()
    errors = [r for r in results if isinstance(r, Exception)]
    LOST_GET_429.extend(e for e in errors if e.status_code == 429)
    expect(errors, "GETs were never throttled")
    expect(all(e.status_code == 429 for e in errors), f"throttled GET: {[describe(e) for e in errors]}")


@check
def throttling_202_common_0024():
    server_id = pick("ACTIVE", 1)[0]
    set_faults(throttleRequestsPerSecond=0.2, throttleBurst=2, throttleMode="202")
    try:
        results = burst(6, lambda: by_tag("count", tags=[ServerTags(key="env", values=["prod"])]))
        stop = batch_stop([server_id])  # throttled too: the bucket is empty
        status, headers, body = SIM.raw("GET", f"/v1/{PROJECT}/cloudservers/limits")
    finally:
        SIM.reset_faults()
    # The SDK does not raise on a 2xx: a throttled call comes back as a response object with
    # status_code 202 and every field None (the error body has none of the model's keys).
    errors = [r for r in results if isinstance(r, Exception)]
    expect(not errors, f"202 mode raised: {[describe(e) for e in errors]}")
    throttled = [r for r in results if r.status_code == 202]
    expect(throttled, f"no 202 among statuses {[r.status_code for r in results]}")
    expect(all(r.total_count is None and r.resources is None for r in throttled), "a 202 response carried total_count")
    expect(all(isinstance(r.total_count, int) for r in results if r.status_code == 200), "a 200 lacked total_count")
    expect(stop.status_code == 202 and stop.job_id is None, f"throttled batch_stop: status {stop.status_code}, job_id {stop.job_id!r}")
    server = show(server_id)
    expect(server.status == "ACTIVE" and server.os_ext_st_stask_state is None,
           f"a throttled (202) stop was executed anyway: {server.status}/{server.os_ext_st_stask_state}")
    error = json.loads(body).get("error", {}) if body else {}
    expect(status == 202 and error.get("code") == "Common.0024", f"raw throttled GET: {status} {body[:200]}")
    expect(headers.get("X-Request-Id"), "raw throttled GET has no X-Request-Id")


@check
def x_request_id_on_every_response():
    seen = list(SIM.seen)
    expect(len(seen) > 50, f"only {len(seen)} SDK responses recorded")
    missing = [(m, p, s) for m, p, s, rid in seen if not rid]
    expect(not missing, f"{len(missing)} SDK responses without X-Request-Id, e.g. {missing[:3]}")
    rids = [rid for *_, rid in seen]
    expect(len(set(rids)) == len(rids), f"{len(rids) - len(set(rids))} X-Request-Id values repeated")
    raw_calls = [
        ("signed GET limits", dict(method="GET", path=f"/v1/{PROJECT}/cloudservers/limits"), 200),
        ("signed POST tag count", dict(method="POST", path=f"/v1/{PROJECT}/cloudservers/resource_instances/action",
                                      body={"action": "count"}), 200),
        ("unsigned GET", dict(method="GET", path=f"/v1/{PROJECT}/cloudservers/limits", sign=False), 401),
        ("signed POST bad body", dict(method="POST", path=f"/v1/{PROJECT}/cloudservers/action", body={"nope": {}}), 400),
        ("Nova unknown route", dict(method="GET", path=f"/v2.1/{PROJECT}/no-such-thing"), 404),
        ("unknown API family", dict(method="GET", path="/v9/nothing/here"), 404),
    ]
    for label, kwargs, want in raw_calls:
        status, headers, _ = SIM.raw(**kwargs)
        expect(status == want, f"{label}: HTTP {status}, expected {want}")
        rid = headers.get("X-Request-Id")
        expect(rid and rid not in rids, f"{label}: X-Request-Id {rid!r}")


@check
def request_log_records_calls():
    status, log = SIM.admin("GET", f"requests?since={LOG_START}")
    records = log["requests"]
    expect(log["next"] >= LOG_START + len(records), f"next {log['next']} with {len(records)} records since {LOG_START}")
    expect(all(not r["path"].startswith("/_sim") for r in records), "admin calls are in the API request log")
    logged = Counter((r["method"], r["path"], r["status"]) for r in records)
    made = Counter((m, p, s) for m, p, s, _ in SIM.seen) + Counter(SIM.raw_seen)
    absent = made - logged
    expect(not absent, f"{sum(absent.values())} calls missing from the log, e.g. {list(absent)[:3]}")
    # The only calls no client-side record has: the throttled GETs whose 429 the SDK could not read.
    extra = logged - made
    lost = Counter({("GET", f"/v1/{PROJECT}/cloudservers/limits", 429): len(LOST_GET_429)}) if LOST_GET_429 else Counter()
    expect(extra == lost, f"log entries nobody made: {dict(extra - lost)}; lost GET 429s not logged: {dict(lost - extra)}")
    for method, path, want in [
        ("GET", f"/v1/{PROJECT}/cloudservers/detail", 200),
        ("GET", f"/v2.1/{PROJECT}/servers/detail", 200),
        ("POST", f"/v1/{PROJECT}/cloudservers/action", 200),
        ("POST", f"/v1/{PROJECT}/cloudservers", 200),
        ("POST", f"/v1/{PROJECT}/cloudservers", 400),
        ("GET", f"/v1/{PROJECT}/cloudservers/00000000-0000-0000-0000-000000000000", 404),
        ("GET", f"/v1/{PROJECT}/cloudservers/limits", 401),
        ("POST", f"/v1/{PROJECT}/cloudservers/resource_instances/action", 429),
        ("POST", f"/v1/{PROJECT}/cloudservers/resource_instances/action", 202),
        ("GET", f"/v1/{PROJECT}/cloudservers/limits", 429),  # the GET whose 429 the SDK could not read
    ]:
        expect(logged[(method, path, want)] > 0, f"no {method} {path} -> {want} in the request log")
    jobs = [r for r in records if r["method"] == "GET" and "/jobs/" in r["path"]]
    expect(len(jobs) >= 10, f"only {len(jobs)} show_job calls logged")
    times = [r["time"] for r in records]
    expect(times == sorted(times), "request log is not in time order")
    expect(all(r.get("project_id") in (PROJECT, None) for r in records), "a logged call names another project")


@check
def sim_admin_faults_partial_put():
    # The admin API maps an empty body to {} (SimAdminAPI.swift), i.e. a partial SimFaults object is
    # meant to be accepted with every omitted field at its default.
    status, body = SIM.admin("PUT", "faults", {"latencyMs": 1}, expect_ok=False)
    try:
        expect(status == 200, f"PUT /_sim/faults {{\"latencyMs\": 1}} -> {status} {body}")
        _, now = SIM.admin("GET", "faults")
        expect(now.get("latencyMs") == 1 and now.get("throttleMode") == "429", f"faults after partial PUT: {now}")
    finally:
        SIM.reset_faults()


@check
def version_documents():
    # Run against a second, empty simulator: a crash here must not take the main one down.
    other = Sim(BINARY, servers_per_project=0)
    try:
        for path, key in (("/", "versions"), ("/v2.1", "version"), ("/v2", "version")):
            try:
                status, headers, body = other.raw("GET", path, sign=False)
            except Exception as error:  # noqa: BLE001
                try:
                    died = other.proc.wait(timeout=10)  # an aborting Swift process first prints a backtrace
                except subprocess.TimeoutExpired:
                    died = None
                raise AssertionError(f"GET {path}: {describe(error)}; simulator "
                                     f"{'died with status %s: %s' % (died, other.stderr_excerpt()) if died is not None else 'still running'}")
            expect(status == 200, f"GET {path}: HTTP {status}")
            expect(headers.get("X-Request-Id"), f"GET {path}: no X-Request-Id")
            document = json.loads(body)
            expect(key in document, f"GET {path}: no {key!r} in {body[:200]}")
            if key == "versions":
                v21 = next((v for v in document["versions"] if v.get("id") == "v2.1"), None)
                expect(v21 and v21.get("min_version") == "2.1" and v21.get("version") == "2.60",
                       f"GET /: v2.1 entry {v21}")
    finally:
        code = other.stop()
    expect(code == 0, f"the second simulator exited with {code} on SIGTERM")


LOG_START = 0
BINARY = None
LOST_GET_429 = []


def main():
    global SIM, LOG_START, BINARY
    if len(sys.argv) != 2:
        print("usage: python conformance.py ECS_SIM_BINARY", file=sys.stderr)
        return 2
    binary = BINARY = sys.argv[1]
    if not os.access(binary, os.X_OK):
        print(f"conformance: {binary} is not an executable", file=sys.stderr)
        return 2
    started = time.monotonic()
    passed = failed = 0

    def report(name, error=None):
        nonlocal passed, failed
        if error is None:
            passed += 1
            print(f"PASS {name}", flush=True)
        else:
            failed += 1
            print(f"FAIL {name}: {error}", flush=True)

    try:
        SIM = Sim(binary)
    except Exception as error:  # noqa: BLE001
        report("simulator_starts", describe(error))
        print(f"conformance: {passed} passed, {failed} failed")
        return 1
    report("simulator_starts")
    try:
        _, log = SIM.admin("GET", "requests?since=0")
        LOG_START = log["next"]
        for fn in CHECKS:
            try:
                fn()
                report(fn.__name__)
            except AssertionError as error:
                report(fn.__name__, str(error) or traceback.format_exc(limit=2).strip().replace("\n", " | "))
            except Exception as error:  # noqa: BLE001
                report(fn.__name__, describe(error) + " @ " + traceback.format_exc(limit=3).strip().splitlines()[-3].strip())
            finally:
                try:
                    SIM.reset_faults()
                except Exception:  # noqa: BLE001
                    pass
    finally:
        died = SIM.proc.poll()
        code = SIM.stop(timeout=5.0)
        if died is not None:
            report("simulator_exits_0_on_sigterm", f"the simulator had already died (status {died}) before SIGTERM: "
                                                   f"{SIM.stderr_excerpt()}")
        else:
            report("simulator_exits_0_on_sigterm",
                   None if code == 0 else ("did not exit within 5 s of SIGTERM (killed)" if code is None
                                           else f"exit status {code}: {SIM.stderr_excerpt()}"))
    print(f"# run time {time.monotonic() - started:.1f}s", file=sys.stderr)
    print(f"conformance: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
