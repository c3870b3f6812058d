#!/usr/bin/env python3
"""The reads a user would write with the official Huawei Cloud Python SDK, as a baseline for
`ecs-warden run --once` (Benchmarks/warden-bench.sh).

For every project: every server's details (Nova `nova_list_servers_details`, pages of 1,000 with
`marker`, microversion 2.26 so that tags come with them -- or the v1 `list_servers_details`, pages
of 1,000 by page number, with --api v1) and `show_server_limits`; once per region: `list_flavors`
and `nova_list_availability_zones`. Sequential, one `EcsClient` per project (the SDK's credentials
carry the project id), as a plain user script would do it. Nothing but the official SDK
(huaweicloudsdkecs 3.1.219) is used to talk to the API.

    WB_AK=SIMACCESSKEY WB_SK=SIMSECRETKEY venv/bin/python Benchmarks/sdk_baseline.py \\
        --endpoint http://127.0.0.1:PORT --projects ID1,ID2 --json out.json

The credentials come from the environment (WB_AK, WB_SK), never from the command line.
Exit status: 0 when every read succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter

STARTED = time.perf_counter()

# The SDK is imported after the clock starts: its import time is part of what a user pays.
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.exceptions import exceptions as sdk_exceptions  # noqa: E402
from huaweicloudsdkecs.v2 import (  # noqa: E402
    EcsClient,
    ListFlavorsRequest,
    ListServersDetailsRequest,
    NovaListAvailabilityZonesRequest,
    NovaListServersDetailsRequest,
    ShowServerLimitsRequest,
)

IMPORTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[sdk-baseline] {message}", file=sys.stderr, flush=True)


def client_for(endpoint: str, ak: str, sk: str, project_id: str) -> EcsClient:
    # Never .with_region(): it adds the real cloud's endpoints. Always a project id: without it
    # the SDK asks the identity service for one.
    return (EcsClient.new_builder()
            .with_credentials(BasicCredentials(ak, sk, project_id))
            .with_endpoint(endpoint)
            .build())


def list_nova(client: EcsClient, page_size: int, microversion: str, calls: Counter) -> int:
    servers = 0
    marker = None
    while True:
        request = NovaListServersDetailsRequest(limit=page_size, open_stack_api_version=microversion)
        if marker:
            request.marker = marker
        response = client.nova_list_servers_details(request)
        calls["NovaListServersDetails"] += 1
        page = response.servers or []
        servers += len(page)
        links = response.servers_links or []
        if not page or not any(getattr(link, "rel", None) == "next" for link in links):
            return servers
        marker = page[-1].id


def list_v1(client: EcsClient, page_size: int, calls: Counter) -> int:
    servers = 0
    page_number = 1
    while True:
        response = client.list_servers_details(ListServersDetailsRequest(limit=page_size, offset=page_number))
        calls["ListServersDetails"] += 1
        page = response.servers or []
        servers += len(page)
        total = response.count if response.count is not None else servers
        if not page or servers >= total:
            return servers
        page_number += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="the ECS endpoint, e.g. http://127.0.0.1:8080")
    parser.add_argument("--projects", required=True, help="comma-separated project ids (all in one region)")
    parser.add_argument("--api", choices=("nova", "v1"), default="nova", help="which server listing (default nova)")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--microversion", default="2.26", help="Nova microversion (2.26 brings tags)")
    parser.add_argument("--json", default="", help="write the results here as JSON")
    options = parser.parse_args()

    ak = os.environ.get("WB_AK", "")
    sk = os.environ.get("WB_SK", "")
    if not ak or not sk:
        log("error: set WB_AK and WB_SK")
        return 1
    # Quiet: a user script would not log every call either.
    logging.getLogger("HuaweiCloud-SDK").setLevel(logging.ERROR)
    project_ids = [p for p in options.projects.split(",") if p]

    calls: Counter = Counter()
    servers = 0
    limits_read = 0
    flavors = 0
    zones = 0
    cpu0 = os.times()
    t0 = time.perf_counter()
    try:
        clients = {pid: client_for(options.endpoint, ak, sk, pid) for pid in project_ids}
        # Once per region: the flavor catalogue with its sale states, and the AZs.
        region_client = clients[project_ids[0]]
        flavors = len(region_client.list_flavors(ListFlavorsRequest()).flavors or [])
        calls["ListFlavors"] += 1
        zones = len(region_client.nova_list_availability_zones(NovaListAvailabilityZonesRequest()).availability_zone_info or [])
        calls["NovaListAvailabilityZones"] += 1
        for pid in project_ids:
            client = clients[pid]
            if options.api == "nova":
                servers += list_nova(client, options.page_size, options.microversion, calls)
            else:
                servers += list_v1(client, options.page_size, calls)
            response = client.show_server_limits(ShowServerLimitsRequest())
            calls["ShowServerLimits"] += 1
            if response.absolute is not None:
                limits_read += 1
    except sdk_exceptions.SdkException as error:
        log(f"error: SDK call failed: {error}")
        return 1
    reads_wall = time.perf_counter() - t0
    cpu1 = os.times()
    result = {
        "api": options.api,
        "page_size": options.page_size,
        "microversion": options.microversion if options.api == "nova" else None,
        "projects": len(project_ids),
        "servers": servers,
        "limits": limits_read,
        "flavors": flavors,
        "availability_zones": zones,
        "calls": dict(calls),
        "import_seconds": IMPORTED - STARTED,
        "reads_wall_seconds": reads_wall,
        "reads_cpu_seconds": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
    }
    log(f"{len(project_ids)} projects, {servers} servers, {limits_read} limits, {flavors} flavors, {zones} AZs "
        f"in {reads_wall:.2f} s ({result['reads_cpu_seconds']:.2f} s CPU); calls {dict(calls)}")
    if options.json:
        with open(options.json, "w") as handle:
            json.dump(result, handle, indent=2)
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
