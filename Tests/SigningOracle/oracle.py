#!/usr/bin/env python3
"""Conformance oracle for SDK-HMAC-SHA256 request signing (see spec/signing.md).

The official Huawei Cloud Python SDK (``huaweicloudsdkcore`` 3.1.219) is the reference: every
expected value below is produced by its ``Signer`` class, never by a second implementation of our
own.  The implementation under test (the "peer") is started as a subprocess and spoken to in JSON
lines over its stdin/stdout:

    {"op":"sign", "access_key", "secret_key", "method", "host", "path", "query", "headers",
     "body_b64"}                    -> {"authorization": ..., "query_string": ...}
    {"op":"verify", "credentials", "now", "max_skew_seconds", "method", "path", "query_string",
     "headers", "body_b64"}         -> {"ok": true} | {"ok": false, "reason": ...}
    {"op":"quit"}                   -> the peer exits

For every generated case the oracle runs three checks:

  sign           the peer's Authorization value and wire query string equal the official signer's;
  verify-accept  the request as the SDK puts it on the wire (header values stripped, transport
                 headers such as Accept/Connection/Content-Length added, header-name casing
                 randomised) is accepted with a clock a few minutes off X-Sdk-Date;
  verify-reject  the same request with ONE meaningful one-character change to a signed component
                 (body byte, path, query value, signed header value, signature, access key,
                 X-Sdk-Date) is rejected.

Every tenth case additionally checks that a 20-minute clock skew or an unknown access key is
rejected, and the first two cases are the known-answer vectors of spec/signing.md, which the
official signer itself must reproduce (a sanity check of the oracle).

Cases are generated reproducibly: case i depends only on (seed, i), so a failing case can be
re-run alone with ``--case i``.

Usage:
    python oracle.py PEER_EXECUTABLE [--count N] [--seed S] [--case I] [--verbose] [-- PEER_ARGS...]

A peer path ending in ``.py`` is run with the current Python interpreter.  Output: one line per
failed check, then ``signing oracle: N passed, N failed``.  Exit status 0 only if nothing failed
and at least 200 cases ran.
"""

from __future__ import annotations

import argparse
import base64
import copy
import dataclasses
import datetime
import json
import queue
import random
import re
import string
import subprocess
import sys
import threading
from typing import Any, Callable, Optional
from urllib.parse import quote, unquote

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

DATE_FORMAT = "%Y%m%dT%H%M%SZ"
DEFAULT_COUNT = 300
DEFAULT_SEED = 20261122
MIN_CASES_FOR_SUCCESS = 200
MAX_SKEW_SECONDS = 900
PEER_TIMEOUT_SECONDS = 30

ALNUM = string.ascii_letters + string.digits
HEX_DIGITS = "0123456789abcdef"
# A %XX escape; mutations never touch these so that a change is never a mere re-spelling.
ESCAPE_RE = re.compile(r"%[0-9A-Fa-f]{2}")
AUTH_RE = re.compile(
    r"^SDK-HMAC-SHA256 Access=(?P<ak>[^,]*), SignedHeaders=(?P<signed>[^,]*), Signature=(?P<sig>[0-9a-f]*)$")


# --------------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Case:
    """One signing input, in the shapes the SDK itself uses (query values may be str/int/bool/list)."""
    index: int
    access_key: str
    secret_key: str
    method: str
    host: str
    resource_path: str
    query_params: list            # [(key, str | int | bool | list[str])], as SdkRequest.query_params
    header_params: dict           # as SdkRequest.header_params before signing (insertion-ordered)
    body: bytes                   # b"" for none
    expected_authorization: Optional[str] = None   # known-answer vectors only
    expected_query_string: Optional[str] = None

    def summary(self) -> str:
        return f"{self.method} {self.resource_path}"


@dataclasses.dataclass
class SdkResult:
    """What the official signer produced for a case."""
    authorization: str
    query_string: str             # SdkRequest.uri after '?' ("" when there is none)
    headers: list                 # [(name, value)] exactly as sent, values as unicode text


@dataclasses.dataclass
class WireRequest:
    """A request as a server receives it (the input of a peer 'verify')."""
    method: str
    path: str
    query_string: str
    headers: list                 # [(name, value)]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def replace_header(self, name: str, value: str) -> "WireRequest":
        headers = [(k, value if k.lower() == name.lower() else v) for k, v in self.headers]
        return dataclasses.replace(self, headers=headers)


# --------------------------------------------------------------------------------------------
# The official signer
# --------------------------------------------------------------------------------------------

def sdk_sign(case: Case) -> SdkResult:
    """Sign a fresh SdkRequest with the official Signer.

    Signer.sign mutates its input (header values are stripped and re-encoded, list-valued query
    params are sorted in place), so it always gets deep copies.
    """
    request = SdkRequest(method=case.method, schema="http", host=case.host,
                         resource_path=case.resource_path,
                         query_params=copy.deepcopy(case.query_params),
                         header_params=copy.deepcopy(case.header_params),
                         body=case.body or None)
    Signer(BasicCredentials(case.access_key, case.secret_key)).sign(request)
    uri = request.uri
    query_string = uri[len(case.resource_path) + 1:] if uri != case.resource_path else ""
    # The signer stores header values as UTF-8 bytes decoded as ISO-8859-1 so that the HTTP
    # library (which encodes header values as ISO-8859-1) puts UTF-8 on the wire.  Undo that to
    # get the text a server decodes.
    headers = [(name, value.encode("iso-8859-1").decode("utf-8"))
               for name, value in request.header_params.items()]
    return SdkResult(authorization=request.header_params["Authorization"],
                     query_string=query_string, headers=headers)


def sdk_reference_signature(wire: WireRequest, secret_key: str) -> Optional[str]:
    """Recompute, with the official Signer, the signature a correct verifier expects for `wire`.

    This is the server's view built only from what arrives: the headers named in SignedHeaders,
    the wire path and the decoded wire query.  It guards the oracle itself: the unmodified wire
    request must reproduce the original signature (so the wire rendering is faithful) and every
    mutation must change it (so the mutation changes the request's meaning).  Returns None when
    the request cannot even be signed (e.g. a mutated X-Sdk-Date that is no valid date).
    """
    match = AUTH_RE.match(wire.header("Authorization") or "")
    if not match:
        return None
    header_params = {}
    for name in match.group("signed").split(";"):
        value = wire.header(name)
        if value is None:
            return None
        # Lower-case names on purpose: given a "Content-Type" key the Signer would derive
        # X-Sdk-Content-Sha256 itself; a verifier must use the received (signed) one as is.
        header_params[name] = value
    query_params = []
    for pair in filter(None, wire.query_string.split("&")):
        key, _, value = pair.partition("=")
        query_params.append((unquote(key), unquote(value)))
    request = SdkRequest(method=wire.method, schema="http", host=None, resource_path=wire.path,
                         query_params=query_params, header_params=header_params,
                         body=wire.body or None)
    try:
        Signer(BasicCredentials("reference", secret_key)).sign(request)
    except ValueError:
        return None
    return AUTH_RE.match(request.header_params["Authorization"]).group("sig")


# --------------------------------------------------------------------------------------------
# Case generation
# --------------------------------------------------------------------------------------------

def known_answer_cases() -> list[Case]:
    """The two vectors of spec/signing.md, with their published Authorization values."""
    common = dict(access_key="AKTESTVECTOR", secret_key="SKtestvector", host="127.0.0.1:8080")
    return [
        Case(index=1, method="GET", resource_path="/v1/p1/cloudservers/detail",
             query_params=[("offset", 1), ("limit", 100), ("tags", "Schedule=office")],
             header_params={"Content-Type": "application/json", "X-Project-Id": "p1",
                            "X-Sdk-Date": "20240101T000000Z"},
             body=b"",
             expected_query_string="limit=100&offset=1&tags=Schedule%3Doffice",
             expected_authorization="SDK-HMAC-SHA256 Access=AKTESTVECTOR, SignedHeaders=content-type;"
                                    "host;x-project-id;x-sdk-date, Signature=6cc37a03d72edc2f3c0f1f342d"
                                    "a5063cee0fb757908ba90a483549d6bb7b707f",
             **common),
        Case(index=2, method="POST", resource_path="/v1/p1/cloudservers/action", query_params=[],
             header_params={"Content-Type": "application/json;charset=utf-8", "X-Project-Id": "p1",
                            "X-Sdk-Date": "20240101T000000Z"},
             body=b'{"os-stop":{"servers":[{"id":"s-1"}],"type":"SOFT"}}',
             expected_query_string="",
             expected_authorization="SDK-HMAC-SHA256 Access=AKTESTVECTOR, SignedHeaders=content-type;"
                                    "host;x-project-id;x-sdk-date, Signature=0c2af81cdbff626cd50efd5d09"
                                    "c3e12c9e000364948a9247ee6b16222fd06339",
             **common),
    ]


# Strings that exercise percent-encoding: reserved and sub-delimiter characters, '~' (never
# encoded), '+' (not a space), '%', unicode in NFC and NFD form, astral characters.
SPECIAL_TEXT = ["my server", "café", "测试", "a/b", "x~y", "a+b", "wow!", "st*r", "it's", "(paren)",
                "50%", "k=v", "a;b", "a,b", "user@host", "c:d", "e\u0301", "😀", "dollar$", "amp&",
                "[br]", "tab\tin", "Straße", "ｱｲｳ"]
PATH_WORDS = ["cloudservers", "servers", "detail", "action", "tags", "resource_instances", "jobs",
              "os-availability-zone", "flavors", "metadata", "nics", "block_device", "limits"]
HOSTS = ["127.0.0.1:8080", "127.0.0.1:8080", "localhost:18080", "ecs.cn-north-4.myhuaweicloud.com",
         "[::1]:8443"]
USER_AGENTS = ["huaweicloud-usdk-python/3.0; Linux/6.1.0 x86_64 python/3.11.7 impl/CPython",
               "huaweicloud-usdk-swift/0.1 (Linux)", "curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)"]
UNICODE_HEADER_VALUES = ["测试客户端", "café au lait", "naïve  résumé", "Ωmega\tvalue", "日本語",
                         "e\u0301t\u0301e\u0301"]

QUERY_KEYS = ["limit", "offset", "name", "status", "flavor", "marker", "changes-since", "ip",
              "not-tags", "reservation_id", "enterprise_project_id", "image", "tags", "ids",
              "server_id", "名称", "ké", "naïve", "😀key", "sort key", "a+b", "x=y", "k&v"]
# Key pairs whose order by raw code points (what the SDK uses) differs from the order of their
# percent-encodings, their UTF-16 form, or their Unicode-normalised form.
SORT_TRAP_KEYS = [("tag:1", "tag0"), ("k~", "ké"), ("x[0]", "xA"), ("e\u0301", "é"), ("ｱ", "😀"),
                  ("Z", "a")]
QUERY_VALUES = ["", "a=b", "x&y", "1+1", "a b", "~!*'()", "50%", "Schedule=office", "café", "测试",
                "e\u0301", "é", "😀", "ｱ", "ACTIVE", "SHUTOFF", "plain", "/slash/", "q?x#y", "Z",
                "a", "10", "9", "-", "_", ".", "key=value=more", "  spaced  "]
CONTENT_TYPES_JSON = ["application/json", "application/json;charset=utf-8",
                      "application/json; charset=UTF-8", "application/bson"]
CONTENT_TYPES_OTHER = ["application/octet-stream", "text/plain; charset=utf-8", "application/xml",
                       "multipart/form-data; boundary=----7MA4YWxk", "application/x-www-form-urlencoded"]


def random_word(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def generate_credentials(rng: random.Random) -> tuple[str, str]:
    """Access key / secret key pairs of various shapes, incl. SKs longer than the HMAC block."""
    upper_alnum = string.ascii_uppercase + string.digits
    roll = rng.random()
    if roll < 0.5:   # the shape Huawei Cloud issues: 20-char AK, 40-char SK
        return random_word(rng, upper_alnum, 20), random_word(rng, ALNUM, 40)
    if roll < 0.65:
        return "ak-" + random_word(rng, string.ascii_lowercase + string.digits, 12), \
            random_word(rng, ALNUM + "+/=", 40)
    if roll < 0.75:  # longer than SHA-256's 64-byte block: HMAC must hash the key first
        return random_word(rng, upper_alnum, 20), random_word(rng, ALNUM, rng.choice([64, 65, 100]))
    if roll < 0.85:  # non-ASCII secret: keyed with its UTF-8 bytes
        return random_word(rng, upper_alnum, 16), "密钥-sk-é-" + random_word(rng, ALNUM, 8)
    if roll < 0.93:
        return "AK_" + random_word(rng, upper_alnum, 10), random_word(rng, string.printable[:94], 32)
    return random_word(rng, upper_alnum, 1), random_word(rng, ALNUM, 1)   # minimal lengths


def render_segment(rng: random.Random, text: str) -> str:
    """Put `text` into a path segment the way a caller might: SDK-quoted, raw, or lower-case hex."""
    mode = rng.choice(["sdk", "sdk", "raw", "lower"])
    if mode == "raw":   # as typed; only characters that would break the path are escaped
        return "".join("%%%02X" % ord(c) if c in "%/?#" else c for c in text)
    quoted = quote(text, safe="")   # what the SDK client does to path parameters
    if mode == "lower":
        quoted = ESCAPE_RE.sub(lambda m: m.group(0).lower(), quoted)
    return quoted


def generate_path(rng: random.Random, project_id: str) -> str:
    if rng.random() < 0.02:
        return "/"
    segments = rng.choice([["v1", project_id], ["v2.1", project_id], ["v1"], ["v3", "projects", project_id]])
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.45:
            segments.append(rng.choice(PATH_WORDS))
        elif roll < 0.6:
            segments.append(random_word(rng, HEX_DIGITS, 8) + "-" + random_word(rng, HEX_DIGITS, 4))
        else:
            segments.append(render_segment(rng, rng.choice(SPECIAL_TEXT)))
    if rng.random() < 0.04:   # an empty segment ("//") must survive canonicalisation
        segments.insert(rng.randint(1, len(segments)), "")
    path = "/" + "/".join(segments)
    if rng.random() < 0.3:
        path += "/"
    return path


def generate_query(rng: random.Random) -> list:
    """SdkRequest.query_params: scalar, repeated-key and list-valued parameters.

    Each key is used by one kind of parameter only: the SDK sorts (key, value) tuples, so a key
    mixing e.g. a list and a str value raises TypeError inside the official signer.
    """
    if rng.random() < 0.2:
        return []
    keys = rng.sample(QUERY_KEYS, len(QUERY_KEYS))
    minimum = 1
    if rng.random() < 0.3:   # put a sort-trap pair first (and keep both of its keys)
        keys = list(dict.fromkeys(list(rng.choice(SORT_TRAP_KEYS)) + keys))
        minimum = 2
    params = []
    for key in keys[:rng.randint(minimum, 6)]:
        kind = rng.random()
        if kind < 0.3:
            params.append((key, rng.choice(QUERY_VALUES)))
        elif kind < 0.4:
            params.append((key, rng.randint(0, 10 ** rng.randint(1, 6))))
        elif kind < 0.5:
            params.append((key, rng.choice([True, False])))
        elif kind < 0.75:   # the same key several times, values deliberately unsorted
            params.extend((key, rng.choice(QUERY_VALUES)) for _ in range(rng.randint(2, 4)))
        else:               # a list value ("multi" collection format); rarely empty
            params.append((key, [rng.choice(QUERY_VALUES) for _ in range(rng.choice([0] + [1, 2, 3, 4] * 3))]))
    rng.shuffle(params)
    return params


def generate_json_body(rng: random.Random, unicode_text: bool) -> bytes:
    pool = SPECIAL_TEXT if unicode_text else ["web-01", "s6.small.1", "SOFT", "HARD", "az1"]
    document = {rng.choice(["server", "os-stop", "os-start", "tags"]): {
        "name": rng.choice(pool),
        "servers": [{"id": random_word(rng, HEX_DIGITS, 8)} for _ in range(rng.randint(1, 3))],
        "type": rng.choice(["SOFT", "HARD"]),
        "count": rng.randint(1, 500),
        "metadata": {rng.choice(pool): rng.choice(pool)},
    }}
    separators = rng.choice([(",", ":"), (", ", ": ")])
    return json.dumps(document, ensure_ascii=not unicode_text, separators=separators).encode("utf-8")


def generate_body(rng: random.Random, method: str) -> tuple[bytes, Optional[str]]:
    """A body and the Content-Type header value to go with it (None: no Content-Type)."""
    if method in ("GET", "HEAD", "DELETE") and rng.random() < 0.8:
        return b"", rng.choice(["application/json"] * 6 + [None, None, "text/plain"])
    roll = rng.random()
    if roll < 0.35:
        return generate_json_body(rng, unicode_text=False), rng.choice(CONTENT_TYPES_JSON)
    if roll < 0.6:
        return generate_json_body(rng, unicode_text=True), rng.choice(CONTENT_TYPES_JSON[:3])
    if roll < 0.85:
        # Arbitrary bytes; lengths around SHA-256's padding boundaries (55/56, 63/64, 119/120).
        length = rng.choice([1, 55, 56, 63, 64, 65, 119, 120, 128, rng.randint(1, 3000)])
        return rng.randbytes(length), rng.choice(CONTENT_TYPES_OTHER + ["application/json"])
    if roll < 0.93:
        return "naïve text body ✓\n".encode("utf-8") * rng.randint(1, 3), rng.choice(CONTENT_TYPES_OTHER)
    return b"", rng.choice(CONTENT_TYPES_JSON + CONTENT_TYPES_OTHER)   # empty body, any type


def pad(rng: random.Random, value: str) -> str:
    """Surround a header value with spaces/tabs that the signer must trim (sometimes)."""
    if rng.random() < 0.35:
        blank = lambda: "".join(rng.choice(" \t") for _ in range(rng.randint(1, 3)))
        return rng.choice([blank() + value, value + blank(), blank() + value + blank()])
    return value


def generate_date(rng: random.Random) -> str:
    start = datetime.datetime(2015, 1, 1)
    moment = start + datetime.timedelta(seconds=rng.randint(0, 20 * 365 * 86400))
    return moment.strftime(DATE_FORMAT)


def generate_case(index: int, seed: int) -> Case:
    rng = random.Random(f"{seed}:{index}")
    access_key, secret_key = generate_credentials(rng)
    method = rng.choice(["GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
    project_id = rng.choice([random_word(rng, HEX_DIGITS, 32), random_word(rng, HEX_DIGITS, 32), "p1"])
    host = rng.choice(HOSTS)
    body, content_type = generate_body(rng, method)

    headers: list[tuple[str, str]] = []
    headers.append((rng.choice(["X-Sdk-Date"] * 4 + ["x-sdk-date"]), generate_date(rng)))
    if content_type is not None:
        quirk = rng.random()
        if quirk < 0.04:
            # The signer looks up "Content-Type" case-sensitively: under another spelling a
            # non-JSON type does NOT turn the payload hash into UNSIGNED-PAYLOAD.
            headers.append(("content-type", content_type))
        elif quirk < 0.07:
            # ... and tests the raw, untrimmed value: " application/json" counts as non-JSON.
            headers.append(("Content-Type", " " + content_type))
        elif quirk < 0.09:
            headers.append(("Content-Type", content_type.replace("application/json", "Application/JSON")))
        else:
            headers.append(("Content-Type", content_type))
    if rng.random() < 0.25:   # Host set by the caller (rarely a virtual host != the endpoint)
        headers.append((rng.choice(["Host", "host"]),
                        pad(rng, rng.choice([host] * 4 + ["ecs.example.com"]))))
    if rng.random() < 0.8:
        headers.append(("X-Project-Id", pad(rng, project_id)))
    if rng.random() < 0.6:
        headers.append(("User-Agent", pad(rng, rng.choice(USER_AGENTS))))
    if rng.random() < 0.2:
        headers.append(("X-Security-Token", random_word(rng, ALNUM + "+/=", rng.randint(40, 300))))
    if rng.random() < 0.25:   # names with '_' are never signed
        headers.append((rng.choice(["X_Trace_Id", "x_request_tag", "My_Header"]),
                        pad(rng, random_word(rng, ALNUM, 12))))
    if rng.random() < 0.3:
        headers.append((rng.choice(["X-Client-Name", "X-Note"]), pad(rng, rng.choice(UNICODE_HEADER_VALUES))))
    if rng.random() < 0.1:
        headers.append(("X-Request-Id", pad(rng, "req " + random_word(rng, ALNUM, 8) + "\t  end")))
    if rng.random() < 0.03:   # signed with an empty value after trimming
        headers.append(("X-Empty", rng.choice(["", " ", "\t \t"])))
    if rng.random() < 0.1:
        headers.append(("Accept", "application/json"))
    rng.shuffle(headers)

    return Case(index=index, access_key=access_key, secret_key=secret_key, method=method,
                host=host, resource_path=generate_path(rng, project_id),
                query_params=generate_query(rng), header_params=dict(headers), body=body)


# --------------------------------------------------------------------------------------------
# Turning a case into peer messages and wire requests
# --------------------------------------------------------------------------------------------

def flatten_query(query_params: list, rng: random.Random) -> list[list[str]]:
    """The protocol's "query": list values flattened to repeated pairs, booleans as true/false,
    everything else str(); then shuffled (the peer must sort)."""
    pairs = []
    for key, value in query_params:
        if isinstance(value, list):
            pairs.extend([key, str(item)] for item in value)
        elif isinstance(value, bool):
            pairs.append([key, "true" if value else "false"])
        else:
            pairs.append([key, str(value)])
    rng.shuffle(pairs)
    return pairs


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sign_message(case: Case, rng: random.Random) -> dict:
    return {"op": "sign", "access_key": case.access_key, "secret_key": case.secret_key,
            "method": case.method, "host": case.host, "path": case.resource_path,
            "query": flatten_query(case.query_params, rng),
            "headers": [[k, v] for k, v in case.header_params.items()],
            "body_b64": b64(case.body)}


# Characters an HTTP client leaves in a request-target path as they are; everything else
# (space, non-ASCII, '"', '[', ...) is percent-encoded as UTF-8.  This is what requests/urllib3
# send up to the spelling of escapes, which does not change the meaning.
WIRE_PATH_SAFE = "/%!$&'()*+,;=:@~"


def wire_path(resource_path: str) -> str:
    return quote(resource_path, safe=WIRE_PATH_SAFE)


def random_casing(rng: random.Random, name: str) -> str:
    style = rng.choice(["as-is", "as-is", "lower", "upper", "mixed"])
    if style == "lower":
        return name.lower()
    if style == "upper":
        return name.upper()
    if style == "mixed":
        return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)
    return name


def build_wire_request(case: Case, signed: SdkResult, rng: random.Random) -> WireRequest:
    """The signed request as it arrives at a server: SDK headers (already stripped by the
    signer) plus Authorization, extra unsigned transport headers, random name casing/order."""
    headers = list(signed.headers)
    present = {name.lower() for name, _ in headers}
    transport = [("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive"),
                 ("User-Agent", "python-requests/2.32.3")]
    if case.body or case.method in ("POST", "PUT", "PATCH"):
        transport.append(("Content-Length", str(len(case.body))))
    transport = [(n, v) for n, v in transport if n.lower() not in present]
    headers += rng.sample(transport, min(len(transport), rng.randint(2, 4)))
    headers = [(random_casing(rng, name), value) for name, value in headers]
    rng.shuffle(headers)
    return WireRequest(method=case.method, path=wire_path(case.resource_path),
                       query_string=signed.query_string, headers=headers, body=case.body)


def verify_message(wire: WireRequest, credentials: dict, now: str) -> dict:
    return {"op": "verify", "credentials": credentials, "now": now,
            "max_skew_seconds": MAX_SKEW_SECONDS, "method": wire.method, "path": wire.path,
            "query_string": wire.query_string, "headers": [[k, v] for k, v in wire.headers],
            "body_b64": b64(wire.body)}


def shift_date(date: str, seconds: int) -> str:
    moment = datetime.datetime.strptime(date, DATE_FORMAT) + datetime.timedelta(seconds=seconds)
    return moment.strftime(DATE_FORMAT)


def decoy_credentials(rng: random.Random, avoid: str) -> dict:
    decoys = {}
    while len(decoys) < 2:
        ak = random_word(rng, string.ascii_uppercase + string.digits, 20)
        if ak != avoid:
            decoys[ak] = random_word(rng, ALNUM, 40)
    return decoys


# --------------------------------------------------------------------------------------------
# Mutations: one meaningful one-character change to a signed component
# --------------------------------------------------------------------------------------------

def other_alnum(rng: random.Random, char: str) -> str:
    """A different alphanumeric character (not merely the same letter in another case)."""
    return rng.choice([c for c in ALNUM if c.lower() != char.lower()])


def unescaped_positions(text: str, start: int = 0, end: Optional[int] = None,
                        accept: Callable[[str], bool] = str.isalnum) -> list[int]:
    """Positions in text[start:end] of characters accepted by `accept`, outside %XX escapes."""
    end = len(text) if end is None else end
    inside = set()
    for match in ESCAPE_RE.finditer(text):
        inside.update(range(match.start(), match.end()))
    return [i for i in range(start, end) if i not in inside and text[i].isascii() and accept(text[i])]


def replace_at(text: str, position: int, char: str) -> str:
    return text[:position] + char + text[position + 1:]


def mutate_body(wire: WireRequest, signed_names: list, rng: random.Random):
    # Only meaningful when the payload hash covers the body (not UNSIGNED-PAYLOAD, not empty).
    if not wire.body or "x-sdk-content-sha256" in signed_names:
        return None
    position = rng.randrange(len(wire.body))
    old = wire.body[position]
    new = rng.choice([b for b in range(256) if b != old])
    body = wire.body[:position] + bytes([new]) + wire.body[position + 1:]
    return f"body byte {position} 0x{old:02x}->0x{new:02x}", dataclasses.replace(wire, body=body)


def mutate_path(wire: WireRequest, signed_names: list, rng: random.Random):
    positions = unescaped_positions(wire.path)
    if not positions:
        return None
    position = rng.choice(positions)
    new = other_alnum(rng, wire.path[position])
    path = replace_at(wire.path, position, new)
    return f"path {wire.path!r}->{path!r}", dataclasses.replace(wire, path=path)


def mutate_query(wire: WireRequest, signed_names: list, rng: random.Random):
    qs = wire.query_string
    positions = []
    offset = 0
    for pair in qs.split("&"):   # alphanumerics of the values only
        equals = pair.find("=")
        if equals >= 0:
            positions += unescaped_positions(qs, offset + equals + 1, offset + len(pair))
        offset += len(pair) + 1
    if not positions:
        return None
    position = rng.choice(positions)
    mutated = replace_at(qs, position, other_alnum(rng, qs[position]))
    return f"query {qs!r}->{mutated!r}", dataclasses.replace(wire, query_string=mutated)


def mutate_header(wire: WireRequest, signed_names: list, rng: random.Random):
    candidates = [(name, value) for name, value in wire.headers
                  if name.lower() in signed_names and name.lower() != "x-sdk-date" and value]
    if not candidates:
        return None
    name, value = rng.choice(candidates)
    position = rng.randrange(len(value))
    # Replace by an alphanumeric: never whitespace, so trimming cannot undo the change.
    new = other_alnum(rng, value[position]) if value[position].isascii() else rng.choice(ALNUM)
    mutated = replace_at(value, position, new)
    return f"header {name}: {value!r}->{mutated!r}", wire.replace_header(name, mutated)


def mutate_signature(wire: WireRequest, signed_names: list, rng: random.Random):
    auth = wire.header("Authorization")
    start = auth.rindex("Signature=") + len("Signature=")
    position = rng.randrange(start, len(auth))
    new = rng.choice([c for c in HEX_DIGITS if c != auth[position]])
    mutated = replace_at(auth, position, new)
    return f"signature hex digit {position - start} {auth[position]}->{new}", \
        wire.replace_header("Authorization", mutated)


def mutate_access_key(wire: WireRequest, signed_names: list, rng: random.Random):
    auth = wire.header("Authorization")
    start = auth.index("Access=") + len("Access=")
    end = auth.index(", SignedHeaders=")
    positions = unescaped_positions(auth, start, end)
    if not positions:
        return None
    position = rng.choice(positions)
    mutated = replace_at(auth, position, other_alnum(rng, auth[position]))
    return f"access key {auth[start:end]!r}->{mutated[start:end]!r}", \
        wire.replace_header("Authorization", mutated)


def mutate_date(wire: WireRequest, signed_names: list, rng: random.Random):
    date = wire.header("X-Sdk-Date")
    position = rng.choice([i for i, c in enumerate(date) if c.isdigit()])
    new = rng.choice([d for d in string.digits if d != date[position]])
    mutated = replace_at(date, position, new)
    return f"X-Sdk-Date {date}->{mutated}", wire.replace_header("X-Sdk-Date", mutated)


MUTATIONS = [mutate_body, mutate_path, mutate_query, mutate_header, mutate_signature,
             mutate_access_key, mutate_date]


def choose_mutation(case: Case, wire: WireRequest, rng: random.Random, known_aks: dict):
    """Rotate through the mutation kinds (case index picks the first one tried) and return the
    first applicable one that provably changes the request, as (kind, description, request)."""
    signed_names = AUTH_RE.match(wire.header("Authorization")).group("signed").split(";")
    original = AUTH_RE.match(wire.header("Authorization")).group("sig")
    start = case.index % len(MUTATIONS)
    for mutate in MUTATIONS[start:] + MUTATIONS[:start]:
        result = mutate(wire, signed_names, rng)
        if result is None:
            continue
        description, mutated = result
        kind = mutate.__name__.removeprefix("mutate_")
        if mutate is mutate_signature:
            return kind, description, mutated
        if mutate is mutate_access_key:
            if AUTH_RE.match(mutated.header("Authorization")).group("ak") not in known_aks:
                return kind, description, mutated
            continue
        if sdk_reference_signature(mutated, case.secret_key) != original:
            return kind, description, mutated
    raise AssertionError(f"case {case.index}: no meaningful mutation found")


# --------------------------------------------------------------------------------------------
# The peer process
# --------------------------------------------------------------------------------------------

class PeerError(Exception):
    """The peer died, timed out or answered something that is not a JSON object."""


class Peer:
    def __init__(self, command: list[str], timeout: float):
        self.timeout = timeout
        # stderr is inherited so the peer's diagnostics show up next to our report.
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        encoding="utf-8", bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)   # EOF

    def call(self, message: dict) -> dict:
        try:
            self.process.stdin.write(json.dumps(message, ensure_ascii=False) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise PeerError(f"cannot write to peer: {error}")
        try:
            line = self.lines.get(timeout=self.timeout)
        except queue.Empty:
            raise PeerError(f"no answer within {self.timeout}s")
        if line is None:
            raise PeerError(f"peer exited (status {self.process.poll()})")
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            raise PeerError(f"not JSON: {line.strip()[:200]!r}")
        if not isinstance(answer, dict):
            raise PeerError(f"not a JSON object: {line.strip()[:200]!r}")
        return answer

    def close(self):
        try:
            self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


# --------------------------------------------------------------------------------------------
# Running the checks
# --------------------------------------------------------------------------------------------

def show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


class Report:
    def __init__(self, verbose: bool):
        self.passed = 0
        self.failed = 0
        self.verbose = verbose

    def check(self, case: Case, name: str, ok: bool, detail: str = "", message: Optional[dict] = None):
        if ok:
            self.passed += 1
            return
        self.failed += 1
        print(f"case {case.index} [{case.summary()}]: {name}: {detail}", flush=True)
        if self.verbose and message is not None:
            print(f"    request: {show(message)}", flush=True)


def run_case(case: Case, seed: int, peer: Peer, report: Report):
    rng = random.Random(f"{seed}:{case.index}:checks")
    signed = sdk_sign(case)

    # Oracle sanity: the official signer must reproduce the published vectors.
    if case.expected_authorization is not None:
        ok = (signed.authorization, signed.query_string) == (case.expected_authorization,
                                                             case.expected_query_string)
        report.check(case, "known-answer vector (official signer)", ok,
                     f"official signer gave {show(signed.authorization)} / {show(signed.query_string)}")

    # 1. sign
    message = sign_message(case, rng)
    answer = peer.call(message)
    differences = []
    if answer.get("authorization") != signed.authorization:
        differences.append(f"authorization expected {show(signed.authorization)} "
                           f"got {show(answer.get('authorization'))}")
    if answer.get("query_string") != signed.query_string:
        differences.append(f"query_string expected {show(signed.query_string)} "
                           f"got {show(answer.get('query_string'))}")
    report.check(case, "sign", not differences, "; ".join(differences), message)

    # 2. verify-accept: the request exactly as sent, with a clock a few minutes off.
    wire = build_wire_request(case, signed, rng)
    date = wire.header("X-Sdk-Date")
    signature = AUTH_RE.match(signed.authorization).group("sig")
    if sdk_reference_signature(wire, case.secret_key) != signature:   # oracle self-check
        report.check(case, "oracle self-check", False, "wire request does not reproduce the signature")
        return
    credentials = {case.access_key: case.secret_key, **decoy_credentials(rng, case.access_key)}
    message = verify_message(wire, credentials, shift_date(date, rng.randint(-240, 240)))
    answer = peer.call(message)
    report.check(case, "verify-accept", answer.get("ok") is True,
                 f"valid request rejected: {show(answer)}", message)

    # 3. verify-reject: one meaningful change to a signed component.
    kind, description, mutated = choose_mutation(case, wire, rng, credentials)
    message = verify_message(mutated, credentials, shift_date(date, rng.randint(-240, 240)))
    answer = peer.call(message)
    report.check(case, "verify-reject", answer.get("ok") is False,
                 f"tampered request accepted ({kind} mutation: {description}): {show(answer)}", message)

    # 4. (every tenth case) clock skew of 20 minutes either way, or an unknown access key.
    extra = case.index % 10
    if extra in (3, 6):
        skew = 1200 if extra == 3 else -1200
        message = verify_message(wire, credentials, shift_date(date, skew))
        answer = peer.call(message)
        report.check(case, "verify-reject", answer.get("ok") is False,
                     f"request {skew:+d}s away from the verifier's clock accepted: {show(answer)}", message)
    elif extra == 9:
        message = verify_message(wire, decoy_credentials(rng, case.access_key), date)
        answer = peer.call(message)
        report.check(case, "verify-reject", answer.get("ok") is False,
                     f"unknown access key accepted: {show(answer)}", message)


def parse_arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    own, peer_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description="SDK-HMAC-SHA256 signing conformance oracle",
                                     epilog="Arguments after '--' are passed to the peer.")
    parser.add_argument("peer", help="the program under test (a .py file runs with this Python)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="number of cases (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed (default %(default)s)")
    parser.add_argument("--case", type=int, action="append", help="run only this case number (repeatable)")
    parser.add_argument("--timeout", type=float, default=PEER_TIMEOUT_SECONDS, help="seconds per peer answer")
    parser.add_argument("--verbose", action="store_true", help="print the peer request of each failure")
    return parser.parse_args(own), peer_args


def main(argv: list[str]) -> int:
    args, peer_args = parse_arguments(argv)
    indices = args.case or list(range(1, args.count + 1))
    command = ([sys.executable] if args.peer.endswith(".py") else []) + [args.peer] + peer_args

    report = Report(args.verbose)
    try:
        peer = Peer(command, args.timeout)
    except OSError as error:
        print(f"cannot start peer {show(command)}: {error}")
        print("signing oracle: 0 passed, 1 failed")
        return 1
    ran = 0
    try:
        kat = {case.index: case for case in known_answer_cases()}
        for index in indices:
            case = kat.get(index) or generate_case(index, args.seed)
            try:
                run_case(case, args.seed, peer, report)
            except PeerError as error:
                report.check(case, "peer", False, str(error))
                break
            ran += 1
    finally:
        peer.close()

    print(f"signing oracle: {report.passed} passed, {report.failed} failed")
    if ran < MIN_CASES_FOR_SUCCESS:
        print(f"note: only {ran} cases ran; at least {MIN_CASES_FOR_SUCCESS} are required for success",
              file=sys.stderr)
    return 0 if report.failed == 0 and ran >= MIN_CASES_FOR_SUCCESS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
