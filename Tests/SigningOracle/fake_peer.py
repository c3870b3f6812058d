#!/usr/bin/env python3
"""Stand-in peer for oracle.py: an independent, stdlib-only implementation of spec/signing.md.

It speaks the oracle's JSON-lines protocol (see oracle.py) and exists to test the oracle before
the Swift peer is available, and to show the oracle catches mistakes: ``--bug [MODE]`` switches on
one deliberate, subtle deviation (default: repeated query values are not sorted).

It does not import huaweicloudsdkcore: everything below is written from the spec.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import re
import sys
import time
from typing import Optional

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
HEXDIGITS = "0123456789abcdefABCDEF"
AUTHORIZATION_RE = re.compile(
    r"^SDK-HMAC-SHA256 Access=(?P<ak>[^,]+), SignedHeaders=(?P<signed>[^,]+), Signature=(?P<sig>[0-9a-f]{64})$")
DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")

BUGS = {
    "unsorted-values": "repeated query keys keep their values in the given order",
    "encoded-sort": "query parameters sorted by their percent-encoded form",
    "no-path-decode": "path segments encoded without percent-decoding the path first",
    "no-trailing-slash": "canonical URI does not get a trailing '/'",
    "drop-empty-segments": "empty path segments ('//') are dropped",
    "trim-spaces-only": "header values trimmed of spaces but not tabs",
    "content-type-any-case": "Content-Type looked up case-insensitively for UNSIGNED-PAYLOAD",
    "no-skew-check": "the verifier ignores the request date",
}
bug: Optional[str] = None


# ----------------------------------------------------------------------------- canonical form

def percent_encode(text: str) -> str:
    """UTF-8 percent-encoding leaving only A-Z a-z 0-9 - _ . ~ as is (upper-case hex)."""
    return "".join(chr(b) if b in UNRESERVED else "%%%02X" % b for b in text.encode("utf-8"))


def percent_decode(text: str) -> str:
    """Decode %XX escapes (as UTF-8 bytes); anything else, including '+', is literal."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%" and i + 2 < len(text) and text[i + 1] in HEXDIGITS and text[i + 2] in HEXDIGITS:
            out.append(int(text[i + 1:i + 3], 16))
            i += 3
        else:
            out += text[i].encode("utf-8")
            i += 1
    return out.decode("utf-8", errors="replace")


def canonical_uri(path: str) -> str:
    decoded = path if bug == "no-path-decode" else percent_decode(path)
    segments = decoded.split("/")
    if bug == "drop-empty-segments":
        segments = [""] + [s for s in segments if s]
    uri = "/".join(percent_encode(s) for s in segments)
    if not uri.endswith("/") and bug != "no-trailing-slash":
        uri += "/"
    return uri


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    """Sorted by key then value, comparing Unicode code points of the raw (decoded) strings."""
    if bug == "unsorted-values":
        ordered = sorted(pairs, key=lambda kv: kv[0])   # stable: values keep their order
    elif bug == "encoded-sort":
        ordered = sorted(pairs, key=lambda kv: (percent_encode(kv[0]), percent_encode(kv[1])))
    else:
        ordered = sorted(pairs)
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in ordered)


def trim(value: str) -> str:
    # The reference signer uses Python's str.strip(): all Unicode whitespace at both ends.
    return value.strip(" ") if bug == "trim-spaces-only" else value.strip()


def signature(secret_key: str, method: str, path: str, query: str, headers: dict[str, str],
              signed: list[str], payload_hash: str, date: str) -> str:
    """headers: lower-case name -> trimmed value, for (at least) every name in `signed`."""
    canonical_headers = "".join(f"{name}:{headers[name]}\n" for name in signed)
    canonical_request = "\n".join([method.upper(), canonical_uri(path), query, canonical_headers,
                                   ";".join(signed), payload_hash])
    string_to_sign = "\n".join([ALGORITHM, date,
                                hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])
    return hmac.new(secret_key.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def payload_hash(body: bytes, content_sha256: Optional[str]) -> str:
    if not body:
        return EMPTY_BODY_SHA256
    if content_sha256:
        return content_sha256
    return hashlib.sha256(body).hexdigest()


# ----------------------------------------------------------------------------- operations

def sign(request: dict) -> dict:
    headers = [(name, value) for name, value in request["headers"]]
    body = base64.b64decode(request["body_b64"])

    # Non-JSON Content-Type => unsigned payload.  The reference looks the header up by its exact
    # name "Content-Type" and tests the raw (untrimmed) value.
    if bug == "content-type-any-case":
        content_type = next((v for n, v in headers if n.lower() == "content-type"), None)
    else:
        content_type = next((v for n, v in headers if n == "Content-Type"), None)
    if content_type and not content_type.startswith(("application/json", "application/bson")):
        headers.append(("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD"))
    date = next((v for n, v in headers if n.lower() == "x-sdk-date"), None)
    if date is None:
        date = time.strftime(DATE_FORMAT, time.gmtime())
        headers.append(("X-Sdk-Date", date))
    if not any(n.lower() == "host" for n, _ in headers):
        headers.append(("Host", request["host"]))

    values = {name.lower(): trim(value) for name, value in headers}
    signed = sorted({name.lower() for name, _ in headers if "_" not in name})
    query = canonical_query([(k, v) for k, v in request["query"]])
    sig = signature(request["secret_key"], request["method"], request["path"], query, values, signed,
                    payload_hash(body, values.get("x-sdk-content-sha256")), date)
    authorization = f"{ALGORITHM} Access={request['access_key']}, SignedHeaders={';'.join(signed)}, Signature={sig}"
    return {"authorization": authorization, "query_string": query}


def verify(request: dict) -> dict:
    def reject(reason: str) -> dict:
        return {"ok": False, "reason": reason}

    headers: dict[str, str] = {}
    for name, value in request["headers"]:
        headers.setdefault(name.lower(), trim(value))
    match = AUTHORIZATION_RE.match(headers.get("authorization", ""))
    if not match:
        return reject("missing or malformed Authorization")
    secret_key = request["credentials"].get(match["ak"])
    if secret_key is None:
        return reject("unknown access key")
    signed = match["signed"].split(";")
    if "x-sdk-date" not in signed or "host" not in signed:
        return reject("X-Sdk-Date and Host must be signed")
    missing = [name for name in signed if name not in headers]
    if missing:
        return reject(f"signed header(s) missing: {', '.join(missing)}")

    date = headers["x-sdk-date"]
    try:
        if not DATE_RE.match(date):
            raise ValueError(date)
        then = datetime.datetime.strptime(date, DATE_FORMAT)
    except ValueError:
        return reject("malformed X-Sdk-Date")
    now = datetime.datetime.strptime(request["now"], DATE_FORMAT)
    if abs((now - then).total_seconds()) > request["max_skew_seconds"] and bug != "no-skew-check":
        return reject("request time too far from server time")

    pairs = []
    for item in filter(None, request["query_string"].split("&")):
        key, _, value = item.partition("=")
        pairs.append((percent_decode(key), percent_decode(value)))
    body = base64.b64decode(request["body_b64"])
    content_sha256 = headers["x-sdk-content-sha256"] if "x-sdk-content-sha256" in signed else None
    expected = signature(secret_key, request["method"], request["path"], canonical_query(pairs), headers,
                         signed, payload_hash(body, content_sha256), date)
    if not hmac.compare_digest(expected, match["sig"]):
        return reject("signature mismatch")
    return {"ok": True}


def main() -> int:
    global bug
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bug", nargs="?", const="unsorted-values", choices=sorted(BUGS),
                        help="introduce one deliberate deviation: " +
                             "; ".join(f"{k}: {v}" for k, v in BUGS.items()))
    bug = parser.parse_args().bug

    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op")
        if op == "quit":
            break
        try:
            answer = sign(request) if op == "sign" else verify(request) if op == "verify" \
                else {"error": f"unknown op {op!r}"}
        except Exception as error:   # report, keep serving
            answer = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
