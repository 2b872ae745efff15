#!/usr/bin/env python3
"""A local AWS endpoint for cks-doctor's live tests: moto, extended.

One HTTP server on 127.0.0.1 (port 0 = a free port) that speaks, like AWS, every service on one
endpoint, routed by the service in the SigV4 credential scope:

* EC2 (Query protocol) is moto's (VPCs, subnets with AvailableIpAddressCount, security groups,
  route tables, network ACLs, ENIs, VPC endpoint services and their permissions), and so are
  Elastic Load Balancing v2 and STS (AWS Query protocol), with moto 5.2.5's differences from AWS
  corrected in moto's own objects (``patch_moto``): ``net/``/``gwy/`` load balancer ARNs, strict
  DescribeLoadBalancers, a private DNS verification state per endpoint service, working Filters,
  principal types, and another account's endpoint service listed by DescribeVpcEndpointServices
  (with its Owner) to the accounts it allows while DescribeVpcEndpointServiceConfigurations does
  not show it. Every passed-through call is made as the scenario's ``account`` (moto's
  ``x-moto-account-id``), so GetCallerIdentity answers that account.
* CloudHSM v2 ``BaldrApiService.DescribeClusters``, KMS ``TrentService.DescribeCustomKeyStores``,
  ``TrentService.ListKeys`` and ``TrentService.DescribeKey`` (seeded ``keys``)
  (AWS JSON 1.1) are served here from seeded state: moto's CloudHSM v2 is not usable by the Rust
  SDK and moto has no custom key stores. ``TrentService.ConnectCustomKeyStore`` and
  ``DisconnectCustomKeyStore`` run KMS's connection state machine on the seeded stores (see
  ``StoreLifecycle``): Connect moves a DISCONNECTED store to CONNECTING and, after the store's
  configured delay, to its configured outcome (CONNECTED, or FAILED with a ConnectionErrorCode).
  That state is per Region, as in AWS: a call sees what was seeded in the Region of its SigV4
  credential scope (scenarios default to us-east-1; ``regions`` in a seed adds others).
* CloudWatch ``GetMetricData``, ``ListMetrics``, ``DescribeAlarmsForMetric`` and ``DescribeAlarms``
  (Smithy RPC v2 CBOR, which moto 5.2.5 does not speak; decoded and encoded with ``cbor2``) are
  served from the seed's ``metrics`` and ``alarms`` (see ``seed_cloudwatch``); the search
  expressions cks-doctor sends are evaluated on the seeded samples. Actions are
  ``cloudwatch:GetMetricData`` etc. (the SDK signs as ``monitoring``).
* CloudTrail ``LookupEvents`` (AWS JSON 1.1; moto 5.2.5's CloudTrail has none) is served from
  the seed's ``trail`` events (see ``seed_trail``): one lookup attribute at most
  (InvalidLookupAttributesException otherwise), StartTime/EndTime, MaxResults 1-50 and
  NextToken pages, newest first, per Region. Its action is ``cloudtrail:LookupEvents``.
* Everything else goes to moto; a moto 500 ("not implemented") is turned into a 501 error in
  the service's own error shape (AWS JSON, EC2 Query or AWS Query), which the SDK does not retry.

A control API lives under ``/_cks/`` (a path moto never uses); it is not counted as AWS calls:

=====================  ==================================================================
``GET /_cks/health``   ``{"ok": true, "port": N}``
``POST /_cks/reset``   forget everything: moto's state, clusters, key stores, faults, calls;
                       requests left hanging are released
``POST /_cks/seed``    reset, then build a scenario (JSON, see ``seed``); answers the ids made
``POST /_cks/faults``  add faults (one object or a list, see ``Fault``)
``GET /_cks/calls``    calls per action since the last reset: ``{"ec2:DescribeSubnets": 1}``;
                       ``?region=eu-west-1``: only the calls signed for that Region;
                       ``?account=N``: only the calls made in that account
``GET /_cks/findings`` the findings BatchImportFindings accepted: ``[{"account", "region",
                       "finding"}]``
``GET /_cks/requests`` every call since the last reset with its parameters and Region, in order
``GET /_cks/in-flight`` ``{"max": N}``: the most AWS calls being answered at once since the
                       last reset (how many a client had in flight)
``GET /_cks/state``    the seeded clusters and key stores, as served, and the caller's account
=====================  ==================================================================

Actions are named as in IAM: ``cloudhsm:DescribeClusters``, ``kms:DescribeCustomKeyStores``,
``ec2:DescribeSecurityGroups``, ``ec2:DescribeVpcEndpointServicePermissions``,
``elasticloadbalancing:DescribeLoadBalancers`` (``elbv2:`` is accepted too),
``sts:GetCallerIdentity`` (the service is the SigV4 signing name). Faults answer in the
service's error shape, hang, or reset the connection mid-response (see ``Fault``); a fault
may be limited to one Region.

On start the server warms up moto's EC2 backend (its first call takes ~2 s), then prints the
port on stdout (one line, just the number) and serves. It exits when its standard input
closes (so a test process that dies can never leave it behind) or on SIGTERM/SIGINT.
``--no-stdin`` keeps it running regardless of stdin (manual use).

Run: ``.venv/bin/python tests/live/server.py [--verbose]`` (``scripts/setup-venv.sh`` makes .venv).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import io
import json
import logging
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures" / "certs"

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DEFAULT_CLUSTER_CERT = "rsa2048-pkcs1-sha256-cluster.crt"
DEFAULT_TRUST_ANCHOR = "rsa2048-pkcs1-sha256-ca.crt"

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
CLUSTER_ID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"

# Default HTTP status per error code (AWS JSON services answer 400 for client errors).
STATUS_BY_CODE = {
    "UnauthorizedOperation": 403,
    "AuthFailure": 401,
    "RequestLimitExceeded": 503,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "KMSInternalException": 500,
    "CloudHsmInternalFailureException": 500,
    "CloudHsmServiceException": 400,
}

log = logging.getLogger("cks-live")

# The account the request being answered acts in (set per request by ``CksApp.dispatch``).
_CALLER = threading.local()


class ControlError(Exception):
    """A bad control request: answered 400 with the reason."""


# ----------------------------------------------------------------------------------------------
# certificates that a real cluster carries besides the customer-signed cluster certificate


class Pki:
    """Certificates generated once per server: the HSM's own certificate chain and CSRs."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._x509, self._hashes, self._ser, self._ec, self._oid = x509, hashes, serialization, ec, NameOID
        now = datetime.datetime.now(datetime.timezone.utc)
        self._now = now

        def name(cn: str, org: str) -> Any:
            return x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                    x509.NameAttribute(NameOID.COMMON_NAME, cn),
                ]
            )

        def cert(subject: Any, key: Any, issuer: Any, issuer_key: Any, ca: bool) -> Any:
            return (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(issuer)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .sign(issuer_key, hashes.SHA256())
            )

        aws_key = ec.generate_private_key(ec.SECP256R1())
        aws_name = name("AWS CloudHSM Hardware Root (cks-doctor live test)", "Amazon Web Services")
        self.aws_hardware = self._pem(cert(aws_name, aws_key, aws_name, aws_key, True))
        mfr_key = ec.generate_private_key(ec.SECP256R1())
        mfr_name = name("HSM Manufacturer Root (cks-doctor live test)", "HSM Manufacturer")
        self.manufacturer = self._pem(cert(mfr_name, mfr_key, mfr_name, mfr_key, True))
        hsm_key = ec.generate_private_key(ec.SECP256R1())
        self._hsm_key = hsm_key
        self.hsm = self._pem(
            cert(name("HSM:cks-doctor-live-test:PARTN:1", "AWS CloudHSM"), hsm_key, aws_name, aws_key, False)
        )

    def _pem(self, c: Any) -> str:
        return c.public_bytes(self._ser.Encoding.PEM).decode()

    def csr(self, cluster_id: str) -> str:
        x509, NameOID = self._x509, self._oid
        req = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "AWS CloudHSM"),
                        x509.NameAttribute(NameOID.COMMON_NAME, f"HSM:{cluster_id}:PARTN:1, for FIPS mode"),
                    ]
                )
            )
            .sign(self._hsm_key, self._hashes.SHA256())
        )
        return req.public_bytes(self._ser.Encoding.PEM).decode()


def fixture(name: str) -> str:
    path = (FIXTURES / name).resolve()
    if FIXTURES.resolve() not in path.parents:
        raise ControlError(f"fixture {name!r} is not in {FIXTURES}")
    try:
        return path.read_text()
    except OSError as e:
        raise ControlError(f"fixture {name!r}: {e}") from e


def random_id(prefix: str, n: int, alphabet: str = CLUSTER_ID_ALPHABET) -> str:
    return prefix + "".join(random.choice(alphabet) for _ in range(n))


def request_id() -> str:
    return str(uuid.uuid4())


# ----------------------------------------------------------------------------------------------
# talking to moto in-process (seeding): EC2 and ELBv2 Query calls straight into moto's WSGI app


class QuerySeeder:
    """Calls one AWS Query-protocol service of moto in-process, as ``account`` (moto's
    ``x-moto-account-id``; None: moto's default account)."""

    service = "ec2"
    version = "2016-11-15"

    def __init__(self, moto_app: Callable, region: str, account: str | None = None) -> None:
        from werkzeug.test import Client

        self.client = Client(moto_app)
        self.region = region
        self.account = account
        self.auth = (
            "AWS4-HMAC-SHA256 Credential=AKIDCKSDOCTORSEED/20250101/"
            f"{region}/{self.service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
        )

    def call(self, action: str, params: dict[str, Any] | None = None, account: str | None = None) -> ET.Element:
        data = {"Action": action, "Version": self.version}
        for k, v in (params or {}).items():
            if v is None:
                continue
            data[k] = str(v).lower() if isinstance(v, bool) else str(v)
        headers = {"Authorization": self.auth, "Host": f"{self.service}.{self.region}.amazonaws.com"}
        if account or self.account:
            headers["x-moto-account-id"] = account or self.account
        resp = self.client.post("/", data=data, headers=headers)
        text = resp.get_data(as_text=True)
        if resp.status_code != 200:
            raise ControlError(f"moto {self.service} {action} {params} failed ({resp.status_code}): {text[:600]}")
        root = ET.fromstring(text)
        for el in root.iter():  # drop namespaces
            if "}" in el.tag:
                el.tag = el.tag.split("}", 1)[1]
        return root


class Ec2Seeder(QuerySeeder):
    service = "ec2"
    version = "2016-11-15"


class Elbv2Seeder(QuerySeeder):
    service = "elasticloadbalancing"
    version = "2015-12-01"


def text_of(root: ET.Element, path: str) -> str:
    el = root.find(path)
    if el is None or el.text is None:
        raise ControlError(f"moto answered without {path}: {ET.tostring(root)[:400]!r}")
    return el.text


# ----------------------------------------------------------------------------------------------
# state


class Fault:
    """An injected fault for one action (e.g. ``cloudhsm:DescribeClusters``).

    ``{"action": ..., "error": "ThrottlingException", "message": ..., "status": 400, "times": 2}``
    answers that error ``times`` times (null: for ever), then lets calls through.
    ``{"action": ..., "hang": true}`` accepts the request and never answers (until reset).
    ``{"action": ..., "reset": true, "after": N}`` sends the status line, the headers (with the
    whole body's Content-Length) and the first ``N`` bytes of the body (default: half of it),
    then cuts the connection (TCP RST): a connection reset mid-response. The answer cut is the
    normal one, or the ``error`` when one is given.
    ``{"action": ..., "delay_ms": 300}`` waits that long, then answers (normally, or with the
    ``error``): a slow call, so that calls a client makes at once overlap here.
    ``"region": "eu-west-1"`` limits any fault to calls signed for that Region (default: all);
    ``"account": "222233334444"`` to calls made in that account (an organisation's, through a
    role AssumeRole handed out here).
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        if not isinstance(spec, dict) or "action" not in spec:
            raise ControlError(f"a fault needs an action: {spec!r}")
        self.action = normalize_action(spec["action"])
        self.hang = bool(spec.get("hang", False))
        self.reset = bool(spec.get("reset", False))
        self.code = spec.get("error")
        delay = spec.get("delay_ms", 0)
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= 60000:
            raise ControlError(f"\"delay_ms\" is a number of milliseconds up to 60000: {spec!r}")
        self.delay = delay / 1000.0
        if not self.hang and not self.reset and not self.code and not self.delay:
            raise ControlError(
                f"a fault needs \"error\" (a code), \"hang\": true, \"reset\": true or \"delay_ms\": {spec!r}"
            )
        if self.hang and self.reset:
            raise ControlError(f"a fault either hangs or resets, not both: {spec!r}")
        after = spec.get("after")
        if after is not None and (not isinstance(after, int) or after < 0):
            raise ControlError(f"\"after\" is a number of body bytes: {spec!r}")
        self.after: int | None = after
        region = spec.get("region")
        if region is not None and not isinstance(region, str):
            raise ControlError(f"\"region\" is a Region name: {spec!r}")
        self.region: str | None = region
        account = spec.get("account")
        if account is not None and not isinstance(account, str):
            raise ControlError(f"\"account\" is an account id: {spec!r}")
        self.account: str | None = account
        self.message = spec.get("message")
        self.status = spec.get("status")
        times = spec.get("times", None)
        self.remaining = None if times is None else int(times)

    def applies_to(self, region: str, account: str = ACCOUNT_ID) -> bool:
        return (self.region is None or self.region == region) and (self.account is None or self.account == account)

    def describe(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "hang": self.hang,
            "reset": self.reset,
            "delay_ms": self.delay * 1000.0,
            "error": self.code,
            "region": self.region,
            "account": self.account,
            "remaining": self.remaining,
        }


# Connection states in which KMS rejects the call with CustomKeyStoreInvalidStateException (the
# KMS API model's documentation of the exception and of each operation).
CONNECT_INVALID_IN = ("DISCONNECTING", "FAILED")
DISCONNECT_INVALID_IN = ("DISCONNECTED", "DISCONNECTING")
CONNECT_OUTCOMES = ("CONNECTED", "FAILED")
# Up to a day: a connect that must still be CONNECTING when a client gives up.
MAX_TRANSITION_MS = 86_400_000


def _delay_ms(spec: dict[str, Any], where: str) -> float:
    delay = spec.get("delay_ms", 0)
    if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= MAX_TRANSITION_MS:
        raise ControlError(f"{where}: \"delay_ms\" is a number of milliseconds up to {MAX_TRANSITION_MS}: {spec!r}")
    return float(delay)


class StoreLifecycle:
    """How a seeded key store answers ConnectCustomKeyStore and DisconnectCustomKeyStore.

    Seeded per store (beside ``make_key_store``'s keys):
    ``"connect": {"delay_ms": 300, "outcome": "CONNECTED" | "FAILED", "error_code": "XKS_PROXY_TIMED_OUT"}``
    (default: CONNECTED after 0 ms; FAILED without an ``error_code`` is INTERNAL_ERROR), or a
    list of such objects, one per ConnectCustomKeyStore that starts a connection, the last one
    repeated; ``"disconnect": {"delay_ms": 200}`` (default 0: DisconnectCustomKeyStore leaves
    the store DISCONNECTED at once; with a delay it is DISCONNECTING meanwhile).

    As KMS (API model): Connect on DISCONNECTED starts a connection (CONNECTING, no
    ConnectionErrorCode), then the outcome; on CONNECTED or CONNECTING it succeeds and changes
    nothing; on FAILED or DISCONNECTING it is CustomKeyStoreInvalidStateException. Disconnect on
    CONNECTED, CONNECTING or FAILED ends any connection in progress and clears the
    ConnectionErrorCode; on DISCONNECTED or DISCONNECTING it is
    CustomKeyStoreInvalidStateException. Both answer ``{}`` (the API's empty response). A
    transition is due at a time and applied when the store is next read (no timer thread). A
    store seeded CONNECTING or DISCONNECTING with a ``connect`` or ``disconnect`` finishes that
    transition (see ``seeded``); without one it stays as seeded.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        # A seed that says how the store connects or disconnects (else a store seeded CONNECTING
        # or DISCONNECTING stays so, as the scenarios that only read states expect).
        self.moves_when_seeded = {"CONNECTING": "connect" in spec, "DISCONNECTING": "disconnect" in spec}
        connect = spec.get("connect")
        attempts = connect if isinstance(connect, list) else [connect or {}]
        if not attempts:
            raise ControlError(f"\"connect\" is an object or a non-empty list of objects: {spec!r}")
        self.attempts: list[dict[str, Any]] = []
        for a in attempts:
            if not isinstance(a, dict):
                raise ControlError(f"each \"connect\" is an object: {a!r}")
            unknown = set(a) - {"delay_ms", "outcome", "error_code"}
            if unknown:
                raise ControlError(f"\"connect\": unknown keys {sorted(unknown)}")
            outcome = a.get("outcome", "CONNECTED")
            if outcome not in CONNECT_OUTCOMES:
                raise ControlError(f"\"connect\": \"outcome\" is one of {CONNECT_OUTCOMES}: {a!r}")
            code = a.get("error_code")
            if outcome == "CONNECTED" and code:
                raise ControlError(f"\"connect\": a CONNECTED outcome has no error_code: {a!r}")
            self.attempts.append(
                {
                    "delay": _delay_ms(a, "connect") / 1000.0,
                    "outcome": outcome,
                    "error_code": (code or "INTERNAL_ERROR") if outcome == "FAILED" else None,
                }
            )
        disconnect = spec.get("disconnect") or {}
        if not isinstance(disconnect, dict) or set(disconnect) - {"delay_ms"}:
            raise ControlError(f"\"disconnect\" is {{\"delay_ms\": N}}: {disconnect!r}")
        self.disconnect_delay = _delay_ms(disconnect, "disconnect") / 1000.0
        self.started = 0
        # The transition due: {"at": time, "state": ..., "error_code": ...}.
        self.pending: dict[str, Any] | None = None

    def seeded(self, data: dict[str, Any]) -> "StoreLifecycle":
        """A store seeded CONNECTING (with a ``connect``) or DISCONNECTING (with a
        ``disconnect``) is in the middle of that transition: it ends as its first ``connect``
        attempt (or its ``disconnect``) says, timed from now. Without them it stays as seeded."""
        state = data.get("ConnectionState")
        if not self.moves_when_seeded.get(state, False):
            return self
        if state == "CONNECTING":
            a = self.attempts[0]
            self.started = 1
            data.pop("ConnectionErrorCode", None)
            self.pending = {"at": time.time() + a["delay"], "state": a["outcome"], "error_code": a["error_code"]}
        elif state == "DISCONNECTING":
            data.pop("ConnectionErrorCode", None)
            self.pending = {"at": time.time() + self.disconnect_delay, "state": "DISCONNECTED", "error_code": None}
        return self

    def settle(self, data: dict[str, Any], now: float | None = None) -> None:
        """Applies the transition due by ``now`` to the store's served ``data``."""
        p = self.pending
        if p is None or (now if now is not None else time.time()) < p["at"]:
            return
        data["ConnectionState"] = p["state"]
        data.pop("ConnectionErrorCode", None)
        if p.get("error_code"):
            data["ConnectionErrorCode"] = p["error_code"]
        self.pending = None

    def connect(self, data: dict[str, Any]) -> str | None:
        """ConnectCustomKeyStore: None when accepted, else the state that makes it invalid."""
        self.settle(data)
        state = data.get("ConnectionState")
        if state in CONNECT_INVALID_IN:
            return state
        if state == "DISCONNECTED":
            a = self.attempts[min(self.started, len(self.attempts) - 1)]
            self.started += 1
            data["ConnectionState"] = "CONNECTING"
            data.pop("ConnectionErrorCode", None)
            self.pending = {"at": time.time() + a["delay"], "state": a["outcome"], "error_code": a["error_code"]}
        return None

    def disconnect(self, data: dict[str, Any]) -> str | None:
        """DisconnectCustomKeyStore: None when accepted, else the state that makes it invalid."""
        self.settle(data)
        state = data.get("ConnectionState")
        if state in DISCONNECT_INVALID_IN:
            return state
        data.pop("ConnectionErrorCode", None)
        self.pending = None
        if self.disconnect_delay:
            data["ConnectionState"] = "DISCONNECTING"
            self.pending = {"at": time.time() + self.disconnect_delay, "state": "DISCONNECTED", "error_code": None}
        else:
            data["ConnectionState"] = "DISCONNECTED"
        return None


def normalize_action(action: str) -> str:
    service, _, name = action.partition(":")
    if not name:
        raise ControlError(f"actions are service:Name (as in IAM), got {action!r}")
    service = {"cloudhsmv2": "cloudhsm", "elbv2": "elasticloadbalancing", "monitoring": "cloudwatch"}.get(service.lower(), service.lower())
    return f"{service}:{name}"


class State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clusters: list[dict[str, Any]] = []  # each: {"region": r, "data": {...}}
        self.key_stores: list[dict[str, Any]] = []
        # KMS keys (ListKeys, DescribeKey): each {"region": r, "data": KeyMetadata, "deny": bool}
        self.keys: list[dict[str, Any]] = []
        self.options: dict[str, Any] = {}
        self.faults: dict[str, list[Fault]] = {}
        self.calls: Counter[str] = Counter()
        # The same calls per Region (the Region of the SigV4 credential scope).
        self.calls_by_region: dict[str, Counter[str]] = {}
        self.requests: list[dict[str, Any]] = []
        # AWS calls being answered now, and the most at once since the last reset.
        self.in_flight = 0
        self.max_in_flight = 0
        # Bumped by every reset: a call still being answered from before it (a hanging fault, a
        # delay, a client killed mid-call) is not counted in the new period.
        self.generation = 0
        self.release = threading.Event()
        # The caller's account: moto serves every passed-through call as this account.
        self.account = ACCOUNT_ID
        # CloudWatch metrics and alarms (``seed_cloudwatch``).
        self.cloudwatch: dict[str, list[dict[str, Any]]] = {"metrics": [], "alarms": []}
        # An organisation (``seed_organization``): its accounts, by id; None: no organisation.
        self.organization: dict[str, Any] | None = None
        # Access key ids AssumeRole handed out, and the account each one acts in.
        self.issued: dict[str, str] = {}
        # Calls per account (the account the call acted in).
        self.calls_by_account: dict[str, Counter[str]] = {}
        # Findings imported with Security Hub BatchImportFindings: each {"account", "region", "finding"}.
        self.findings: list[dict[str, Any]] = []
        # CloudTrail events (``seed_trail``): each {"region", "ago", "record"}.
        self.trail: list[dict[str, Any]] = []

    def clear(self) -> None:
        with self.lock:
            self.clusters = []
            self.key_stores = []
            self.keys = []
            self.options = {}
            self.faults = {}
            self.calls = Counter()
            self.calls_by_region = {}
            self.requests = []
            self.generation += 1
            self.in_flight = 0
            self.max_in_flight = 0
            self.account = ACCOUNT_ID
            self.cloudwatch = {"metrics": [], "alarms": []}
            self.organization = None
            self.issued = {}
            self.calls_by_account = {}
            self.findings = []
            self.trail = []
            # Requests left hanging by a fault are let go (they answer an error to nobody).
            self.release.set()
            self.release = threading.Event()

    def record(self, action: str, params: Any, region: str = DEFAULT_REGION, account: str | None = None) -> None:
        account = account or self.account
        with self.lock:
            self.calls[action] += 1
            self.calls_by_region.setdefault(region, Counter())[action] += 1
            self.calls_by_account.setdefault(account, Counter())[action] += 1
            self.requests.append({"action": action, "params": params, "region": region, "account": account, "time": time.time()})

    def caller(self) -> str:
        """The account the call being answered acts in (see ``CksApp.dispatch``)."""
        return getattr(_CALLER, "account", None) or self.account

    def here(self, entry: dict[str, Any], region: str) -> bool:
        """Whether seeded ``entry`` is in the Region of the call and the caller's account."""
        return entry["region"] == region and entry.get("account", self.account) == self.caller()

    def enter(self) -> int:
        """Counts a call in; returns the period it belongs to, for ``leave``."""
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.generation

    def leave(self, generation: int) -> None:
        with self.lock:
            if generation == self.generation:
                self.in_flight -= 1

    def take_fault(self, action: str, region: str = DEFAULT_REGION, account: str | None = None) -> Fault | None:
        """The first fault for this action that applies to the Region and has calls left (a
        fault whose ``times`` are used up is dropped)."""
        with self.lock:
            queue = self.faults.get(action) or []
            for f in list(queue):
                if not f.applies_to(region, account or self.account):
                    continue
                if f.remaining is None:
                    return f
                if f.remaining > 0:
                    f.remaining -= 1
                    if f.remaining == 0:
                        queue.remove(f)
                    return f
                queue.remove(f)
            return None


# ----------------------------------------------------------------------------------------------
# moto 5.2.5, corrected where it differs from AWS for what cks-doctor reads (VPC endpoint
# services, their load balancers). Installed once, before the first request; see ``patch_moto``.

# Per-thread: the type of the load balancer moto is creating (its ARN helper is not told).
_LB_TYPE = threading.local()
LB_ARN_KIND = {"application": "app", "network": "net", "gateway": "gwy"}
PRIVATE_DNS_STATES = ("pendingVerification", "verified", "failed")


def stable_hex(*parts: str, n: int = 17) -> str:
    """A hex id derived from ``parts``: the same resource gets the same id on every call."""
    import hashlib

    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def principal_type(principal: str) -> str:
    """The PrincipalType AWS reports for an allowed principal of an endpoint service."""
    if principal == "*":
        return "All"
    if principal.endswith(".amazonaws.com"):
        return "Service"
    if principal.endswith(":root"):
        return "Account"
    if ":role/" in principal:
        return "Role"
    if ":user/" in principal:
        return "User"
    if ":organization/" in principal or ":ou/" in principal:
        return "OrganizationUnit"
    return "Account"


def allows_account(principals: Iterable[str], account: str) -> bool:
    """Whether an endpoint service with these allowed principals is visible to ``account``
    (DescribeVpcEndpointServices lists another account's service only to its allowed principals)."""
    return any(p == "*" or p.startswith(f"arn:aws:iam::{account}:") or p == account for p in principals)


_PATCHED = False


def patch_moto() -> None:
    """Corrects moto 5.2.5 where it differs from AWS, in moto's own objects (so that every call,
    seeding included, sees AWS's behaviour, and moto still serializes the answers):

    * ELBv2 ARNs: moto names every load balancer ``loadbalancer/app/...``; AWS uses ``net/`` for
      network and ``gwy/`` for gateway load balancers.
    * ELBv2 DescribeLoadBalancers with several ARNs: moto raises LoadBalancerNotFound only when
      the first ARN is unknown and silently drops later unknown ones; AWS fails the whole call.
    * Endpoint services: moto reports every private DNS name as ``verified`` with the TXT record
      ``n``/``val``; here each service has a state (``cks_private_dns_state``, default
      ``verified``) and a TXT record shaped like AWS's (``_<hex>`` / ``vpce:<hex>``).
    * DescribeVpcEndpointServiceConfigurations: moto ignores Filters (answers every service);
      service-name, service-id and service-state are applied here, other names are InvalidFilter.
    * DescribeVpcEndpointServicePermissions: moto answers bare principals; AWS adds
      PrincipalType, ServicePermissionId and ServiceId.
    * DescribeVpcEndpointServices: moto crashes (KeyError 'Value') on any Filter and lists only
      the caller's own services, without PrivateDnsNameVerificationState; here filters work, the
      detail carries the verification state, and another account's service is listed (with its
      Owner) to the accounts its allowed principals name (``*`` or ``arn:aws:iam::<acct>:...``),
      as AWS does for cross-account endpoint services.
    """
    global _PATCHED
    if _PATCHED:
        return
    _PATCHED = True
    import moto

    if moto.__version__ != "5.2.5":
        log.warning("moto %s: patch_moto was written against 5.2.5 (tests/live/requirements.txt)", moto.__version__)

    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import InvalidFilter, InvalidNextToken, InvalidServiceName
    from moto.ec2.models import ec2_backends
    from moto.ec2.models import vpcs as ec2_vpcs
    from moto.ec2.models.vpc_service_configuration import VPCServiceConfiguration
    from moto.ec2.responses.vpc_service_configuration import VPCEndpointServiceConfiguration
    from moto.elbv2 import models as elbv2_models
    from moto.elbv2.exceptions import LoadBalancerNotFoundError

    # -- ELBv2: ARNs by type; strict DescribeLoadBalancers

    original_arn = elbv2_models.make_arn_for_load_balancer

    def make_arn_for_load_balancer(account_id: str, lb_id: str, name: str, region_name: str) -> str:
        arn = original_arn(account_id=account_id, lb_id=lb_id, name=name, region_name=region_name)
        kind = LB_ARN_KIND.get(getattr(_LB_TYPE, "value", None) or "application", "app")
        return arn.replace(":loadbalancer/app/", f":loadbalancer/{kind}/", 1)

    elbv2_models.make_arn_for_load_balancer = make_arn_for_load_balancer
    original_create_lb = elbv2_models.ELBv2Backend.create_load_balancer

    def create_load_balancer(self: Any, *args: Any, **kwargs: Any) -> Any:
        _LB_TYPE.value = kwargs.get("loadbalancer_type") or "application"
        try:
            return original_create_lb(self, *args, **kwargs)
        finally:
            _LB_TYPE.value = None

    elbv2_models.ELBv2Backend.create_load_balancer = create_load_balancer
    original_describe_lbs = elbv2_models.ELBv2Backend.describe_load_balancers

    def describe_load_balancers(self: Any, arns: list[str] | None, names: list[str] | None) -> Any:
        if any(a not in self.load_balancers for a in arns or []):
            raise LoadBalancerNotFoundError()
        return original_describe_lbs(self, arns, names)

    elbv2_models.ELBv2Backend.describe_load_balancers = describe_load_balancers

    # -- ELBv2 target health: moto calls every registered IP target healthy; a seeded target
    # may carry its own state, reason and description (``cks_health`` on the target group).
    original_health_for = elbv2_models.FakeTargetGroup.health_for

    def health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        seeded = self.__dict__.get("cks_health", {}).get(target["Id"])
        if seeded is None:
            return original_health_for(self, target, ec2_backend)
        t = self.targets.get(target["Id"]) or target
        return elbv2_models.FakeHealthStatus(
            target["Id"], t.get("Port", self.port), self.health_check_port, seeded[0], seeded[1], seeded[2]
        )

    elbv2_models.FakeTargetGroup.health_for = health_for

    # -- endpoint services: private DNS verification state and record

    def dns_record(self: Any) -> dict[str, str]:
        rec = self.__dict__.get("cks_private_dns_record")
        if rec is None:
            rec = {
                "Name": "_" + stable_hex(self.id, "name", n=20),
                "Value": "vpce:" + stable_hex(self.id, "value", n=20),
            }
            self.__dict__["cks_private_dns_record"] = rec
        return rec

    def private_dns_name_configuration(self: Any) -> dict[str, str]:
        if not self.private_dns_name:
            return {}
        rec = dns_record(self)
        state = self.__dict__.get("cks_private_dns_state", "verified")
        return {"State": state, "Type": "TXT", "Value": rec["Value"], "Name": rec["Name"]}

    VPCServiceConfiguration.private_dns_name_configuration = property(private_dns_name_configuration)
    original_to_dict = VPCServiceConfiguration.to_dict

    def to_dict(self: Any) -> dict[str, Any]:
        d = original_to_dict(self)
        if self.private_dns_name:
            d["PrivateDnsNameVerificationState"] = self.private_dns_name_configuration["State"]
        else:
            d.pop("PrivateDnsName", None)
            d["PrivateDnsNames"] = []
        d["AvailabilityZones"] = sorted(set(self.availability_zones))
        return d

    VPCServiceConfiguration.to_dict = to_dict

    # -- DescribeVpcEndpointServiceConfigurations: filters

    def describe_vpc_endpoint_service_configurations(self: Any) -> Any:
        service_ids = self._get_param("ServiceIds", [])
        configs = self.ec2_backend.describe_vpc_endpoint_service_configurations(service_ids)
        for name, values in self._filters_from_querystring().items():
            if name == "service-name":
                configs = [c for c in configs if c.service_name in values]
            elif name == "service-id":
                configs = [c for c in configs if c.id in values]
            elif name == "service-state":
                configs = [c for c in configs if c.service_state in values]
            else:
                raise InvalidFilter(name)
        return ActionResult({"ServiceConfigurations": configs})

    VPCEndpointServiceConfiguration.describe_vpc_endpoint_service_configurations = (
        describe_vpc_endpoint_service_configurations
    )

    # -- DescribeVpcEndpointServicePermissions: the fields AWS sends

    def describe_vpc_endpoint_service_permissions(self: Any) -> Any:
        service_id = self._get_param("ServiceId")
        principals = self.ec2_backend.describe_vpc_endpoint_service_permissions(service_id)
        allowed = [
            {
                "PrincipalType": principal_type(p),
                "Principal": p,
                "ServicePermissionId": "vpce-svc-perm-" + stable_hex(service_id, p),
                "ServiceId": service_id,
            }
            for p in sorted(principals)
        ]
        return ActionResult({"AllowedPrincipals": allowed})

    VPCEndpointServiceConfiguration.describe_vpc_endpoint_service_permissions = (
        describe_vpc_endpoint_service_permissions
    )

    # -- DescribeVpcEndpointServices: filters, other accounts' services

    def foreign_services(account_id: str, region: str) -> list[dict[str, Any]]:
        out = []
        for other in list(ec2_backends.keys()):
            if other == account_id:
                continue
            regions = ec2_backends[other]
            if region not in regions:
                continue
            for config in list(regions[region].configurations.values()):
                if allows_account(config.principals, account_id):
                    out.append(config.to_dict())
        return out

    def describe_vpc_endpoint_services(
        self: Any, service_names: list[str], filters: Any, max_results: int, next_token: str | None, region: str
    ) -> dict[str, Any]:
        # moto's filter code reads "Value"; its request parser gives "Values".
        filters = [dict(f, Value=f.get("Values", f.get("Value", []))) for f in filters or []]
        services = self._collect_default_endpoint_services(self.account_id, region)
        services = services + [c.to_dict() for c in self.configurations.values()]
        services = services + foreign_services(self.account_id, region)
        for name in service_names:
            if name not in [s["ServiceName"] for s in services]:
                raise InvalidServiceName(name)
        found = sorted(self._filter_endpoint_services(service_names, filters, services), key=lambda s: s["ServiceName"])
        ids = [s["ServiceId"] for s in found]
        start = 0
        if next_token:
            if next_token not in ids:
                raise InvalidNextToken(next_token)
            start = ids.index(next_token)
        size = max_results if max_results and max_results <= ec2_vpcs.MAX_NUMBER_OF_ENDPOINT_SERVICES_RESULTS else ec2_vpcs.MAX_NUMBER_OF_ENDPOINT_SERVICES_RESULTS
        page = found[start : start + size]
        return {
            "servicesDetails": page,
            "serviceNames": [s["ServiceName"] for s in page],
            "nextToken": found[start + size]["ServiceId"] if len(found) > start + size else None,
        }

    ec2_vpcs.VPCBackend.describe_vpc_endpoint_services = describe_vpc_endpoint_services


# ----------------------------------------------------------------------------------------------
# the WSGI application


def service_of(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """(signing service, region) from the SigV4 Authorization header."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].strip()
        _key, _date, region, service, _term = scope.split("/")
        return service.lower(), region
    except (IndexError, ValueError):
        return None, None


def access_key_of(environ: dict[str, Any]) -> str:
    """The access key id of the SigV4 Authorization header ("" when unsigned)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        return auth.split("Credential=", 1)[1].split("/", 1)[0].strip()
    except IndexError:
        return ""


def read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            body = stream.read(int(length))
        except ValueError:
            body = b""
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def params_json(environ: dict[str, Any]) -> Any:
    """The JSON body of a REST JSON call (``read_body`` left it in ``wsgi.input``)."""
    stream = environ.get("wsgi.input")
    raw = stream.getvalue() if isinstance(stream, io.BytesIO) else b""
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return None


def rest_json_error(code: str, message: str, status: int) -> Response:
    return Response(
        status,
        json.dumps({"Code": code, "Message": message}).encode(),
        [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)],
    )


def describe_regions_answer(acct: dict[str, Any], params: Any) -> Response:
    """EC2 DescribeRegions for an account of the organisation: its enabled Regions, and with
    AllRegions=true also the opt-in Regions it has not enabled (optInStatus not-opted-in)."""
    every = str((params or {}).get("AllRegions", "false")).lower() == "true"
    rows = [(r, "opt-in-not-required") for r in acct["regions"]]
    if every:
        rows += [(r, "not-opted-in") for r in acct.get("disabled_regions", ())]
    items = "".join(
        f"<item><regionName>{r}</regionName><regionEndpoint>ec2.{r}.amazonaws.com</regionEndpoint><optInStatus>{o}</optInStatus></item>"
        for r, o in rows
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        f"<requestId>{request_id()}</requestId><regionInfo>{items}</regionInfo></DescribeRegionsResponse>"
    )
    return Response(200, body.encode(), [("Content-Type", "text/xml;charset=UTF-8")])



class Response:
    def __init__(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or []


def json_response(payload: Any, status: int = 200, extra: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload).encode()
    headers = [
        ("Content-Type", JSON_CONTENT_TYPE),
        ("x-amzn-RequestId", request_id()),
    ] + (extra or [])
    return Response(status, body, headers)


def json_error(code: str, message: str, status: int | None = None) -> Response:
    return json_response(
        {"__type": code, "message": message},
        status or STATUS_BY_CODE.get(code, 400),
        [("x-amzn-ErrorType", code)],
    )


def xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def ec2_error(code: str, message: str, status: int | None = None) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response><Errors><Error><Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message>"
        f"</Error></Errors><RequestID>{request_id()}</RequestID></Response>"
    )
    return Response(status or STATUS_BY_CODE.get(code, 400), body.encode(), [("Content-Type", "text/xml;charset=UTF-8")])


# Services that speak the AWS Query protocol (their errors are <ErrorResponse>, not EC2's <Response>).
QUERY_SERVICES = {"elasticloadbalancing", "sts", "iam", "sns", "sqs", "rds", "cloudformation", "autoscaling"}


# Services that speak REST JSON (errors: a JSON body and ``x-amzn-ErrorType``).
REST_JSON_SERVICES = {"securityhub"}


def protocol_of(service: str | None, target: str | None) -> str:
    """``json`` (AWS JSON 1.0/1.1, X-Amz-Target), ``restjson``, ``query`` (AWS Query) or ``ec2``
    (EC2 Query)."""
    if target:
        return "json"
    if service in REST_JSON_SERVICES:
        return "restjson"
    return "query" if service in QUERY_SERVICES else "ec2"


def query_error(code: str, message: str, status: int | None = None) -> Response:
    body = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message></Error>"
        f"<RequestId>{request_id()}</RequestId></ErrorResponse>"
    )
    return Response(status or STATUS_BY_CODE.get(code, 400), body.encode(), [("Content-Type", "text/xml")])


def error_response(protocol: str, code: str, message: str, status: int | None = None) -> Response:
    """An error in the shape the protocol's SDK parser expects."""
    if protocol == "restjson":
        return rest_json_error(code, message, status or STATUS_BY_CODE.get(code, 400))
    return {"json": json_error, "query": query_error, "cbor": cbor_error}.get(protocol, ec2_error)(code, message, status)


def default_message(action: str, code: str, account: str = ACCOUNT_ID) -> str:
    caller = f"arn:aws:iam::{account}:user/cks-doctor-live-test"
    if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
        denial = (
            f"User: {caller} is not authorized to perform: {action} "
            f"because no identity-based policy allows the {action} action"
        )
        if code == "UnauthorizedOperation":
            return f"You are not authorized to perform this operation. {denial}"
        return denial
    if code in ("ThrottlingException", "Throttling", "RequestLimitExceeded"):
        return "Rate exceeded"
    return f"{code} (injected by tests/live/server.py for {action})"


# ----------------------------------------------------------------------------------------------
# CloudWatch (Smithy RPC v2 CBOR): moto 5.2.5 does not speak the protocol the Rust SDK uses
# (POST /service/GraniteServiceVersion20100801/operation/<Operation>, header
# ``smithy-protocol: rpc-v2-cbor``, CBOR bodies), so GetMetricData, ListMetrics,
# DescribeAlarmsForMetric and DescribeAlarms are served here from the seed's ``metrics`` and
# ``alarms`` sections (see ``seed_cloudwatch``). Errors follow the protocol: a CBOR body with
# ``__type`` and ``message``, the ``smithy-protocol`` header, and CloudWatch's query-compatible
# ``x-amzn-query-error: <code>;Sender``.

CBOR_CONTENT_TYPE = "application/cbor"
CLOUDWATCH_OPERATIONS = ("GetMetricData", "ListMetrics", "DescribeAlarmsForMetric", "DescribeAlarms")


def rpcv2_cbor_operation(environ: dict[str, Any], path: str) -> str | None:
    """The operation of an RPC v2 CBOR request (``/service/<Service>/operation/<Operation>``
    with ``smithy-protocol: rpc-v2-cbor``), or None for any other protocol."""
    if environ.get("HTTP_SMITHY_PROTOCOL", "").lower() != "rpc-v2-cbor":
        return None
    parts = path.strip("/").split("/")
    if len(parts) == 4 and parts[0] == "service" and parts[2] == "operation":
        return parts[3]
    return path


def cbor_params(body: bytes) -> Any:
    """The request's CBOR body as Python values (None when it is not CBOR)."""
    import cbor2

    if not body:
        return {}
    try:
        value = cbor2.loads(body)
    except Exception:  # noqa: BLE001 - any decoding failure is a bad request
        return None

    def plain(v: Any) -> Any:
        # JSON-safe, as every call's parameters are kept (/_cks/requests): timestamps as epoch seconds.
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, datetime.datetime):
            return v.timestamp()
        if isinstance(v, bytes):
            return base64.b64encode(v).decode()
        return v

    return plain(value) if isinstance(value, dict) else None


def _cbor_ready(v: Any) -> Any:
    """Python values as the SDK's decoder wants them: floats as doubles, datetimes as tag 1."""
    import cbor2

    if isinstance(v, dict):
        return {k: _cbor_ready(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_cbor_ready(x) for x in v]
    if isinstance(v, datetime.datetime):
        return cbor2.CBORTag(1, int(v.timestamp()))
    return v


def cbor_response(payload: Any, status: int = 200, extra: list[tuple[str, str]] | None = None) -> Response:
    import cbor2

    headers = [
        ("Content-Type", CBOR_CONTENT_TYPE),
        ("smithy-protocol", "rpc-v2-cbor"),
        ("x-amzn-RequestId", request_id()),
    ] + (extra or [])
    return Response(status, cbor2.dumps(_cbor_ready(payload)), headers)


def cbor_error(code: str, message: str, status: int | None = None) -> Response:
    return cbor_response(
        {"__type": code, "message": message},
        status or STATUS_BY_CODE.get(code, 400),
        [("x-amzn-query-error", f"{code};Sender")],
    )


def _epoch(v: Any) -> float | None:
    if isinstance(v, datetime.datetime):
        return v.timestamp()
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def seed_cloudwatch(spec: dict[str, Any], region: str) -> dict[str, list[dict[str, Any]]]:
    """The seed's CloudWatch sections:

    ``metrics``: ``[{"store": "cks-...", "metric": "XksProxyLatency", "dimensions": {"KmsOperation":
    "Decrypt", ...}, "points": [{"ago": 600, "value": 12}, {"ago": 300, "values": [10, 260]}],
    "namespace": "AWS/KMS", "region": ...}]``: one time series each (CustomKeyStoreId is the
    store's), its samples ``ago`` seconds before the call (``values``: several samples, for
    percentiles). ``"cluster": "cluster-..."`` instead of ``store``: a CloudHSM metric
    (``HsmUnhealthy``, dimensions ClusterId and, given in ``dimensions``, HsmId; namespace
    AWS/CloudHSM).

    ``alarms``: ``[{"name": ..., "metric": ..., "store": ..., "dimensions": {...},
    "threshold": 10, "comparison": "LessThanThreshold"}]``: metric alarms DescribeAlarms and
    DescribeAlarmsForMetric answer (``expression`` instead of ``metric``: a Metrics Insights alarm).
    """
    series = []
    for m in spec.get("metrics") or []:
        if not isinstance(m, dict) or not isinstance(m.get("metric"), str):
            raise ControlError(f"each metric series needs a \"metric\" name: {m!r}")
        dims = {str(k): str(v) for k, v in (m.get("dimensions") or {}).items()}
        if m.get("store"):
            dims["CustomKeyStoreId"] = str(m["store"])
        # A CloudHSM cluster's metric (HsmUnhealthy): namespace AWS/CloudHSM, dimension ClusterId.
        if m.get("cluster"):
            dims["ClusterId"] = str(m["cluster"])
        samples = []
        for p in m.get("points") or []:
            ago = p.get("ago")
            if not isinstance(ago, (int, float)) or ago < 0:
                raise ControlError(f"a metric point needs \"ago\" (seconds): {p!r}")
            values = p.get("values", [p.get("value")])
            for v in values:
                if not isinstance(v, (int, float)):
                    raise ControlError(f"metric values are numbers: {p!r}")
                samples.append((float(ago), float(v)))
        series.append(
            {
                "region": m.get("region", region),
                "namespace": m.get("namespace", "AWS/CloudHSM" if m.get("cluster") else "AWS/KMS"),
                "metric": m["metric"],
                "dimensions": dims,
                "samples": samples,
            }
        )
    alarms = []
    for a in spec.get("alarms") or []:
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise ControlError(f"each alarm needs a \"name\": {a!r}")
        dims = {str(k): str(v) for k, v in (a.get("dimensions") or {}).items()}
        if a.get("store"):
            dims["CustomKeyStoreId"] = str(a["store"])
        alarms.append(
            {
                "region": a.get("region", region),
                "name": a["name"],
                "namespace": a.get("namespace", "AWS/KMS"),
                "metric": a.get("metric"),
                "expression": a.get("expression"),
                "dimensions": dims,
                "threshold": float(a.get("threshold", 0)),
                "comparison": a.get("comparison", "GreaterThanThreshold"),
                "statistic": a.get("statistic", "Average"),
                "period": int(a.get("period", 300)),
            }
        )
    return {"metrics": series, "alarms": alarms}


SEARCH_RE = __import__("re").compile(
    r"^\s*(?:(SUM|MIN|MAX|AVG)\s*\()?\s*SEARCH\(\s*'(.*)'\s*,\s*'([^']+)'\s*(?:,\s*(\d+))?\s*\)\s*\)?\s*$", __import__("re").S
)


def parse_search(expression: str) -> dict[str, Any] | None:
    """What cks-doctor's search expressions ask (``src/facts/metrics.rs``): the aggregate, the
    schema, the designators (``Name="value"``, ``MetricName`` possibly OR-ed), bare terms, the
    statistic and the period. None for anything else."""
    import re

    m = SEARCH_RE.match(expression)
    if not m:
        return None
    aggregate, query, stat, period = m.group(1), m.group(2), m.group(3), m.group(4)
    schema = None
    sm = re.match(r"^\s*\{([^}]*)\}\s*", query)
    if sm:
        parts = [p.strip().strip('"') for p in sm.group(1).split(",")]
        schema = {"namespace": parts[0], "dimensions": set(parts[1:])}
        query = query[sm.end():]
    designators = re.findall(r'(\w+)\s*=\s*"([^"]*)"', query)
    rest = re.sub(r'(\w+)\s*=\s*"([^"]*)"', " ", query)
    terms = re.findall(r'"([^"]*)"', rest)
    names = [v for k, v in designators if k == "MetricName"]
    return {
        "aggregate": aggregate,
        "schema": schema,
        "names": names,
        "namespace": next((v for k, v in designators if k == "Namespace"), None),
        "dimensions": {k: v for k, v in designators if k not in ("MetricName", "Namespace")},
        "terms": terms,
        "stat": stat,
        "period": int(period) if period else None,
    }


def _matches(series: dict[str, Any], q: dict[str, Any]) -> bool:
    ns = (q["schema"] or {}).get("namespace") or q["namespace"]
    if ns and series["namespace"] != ns:
        return False
    if q["schema"] is not None and set(series["dimensions"]) != q["schema"]["dimensions"]:
        return False
    if q["names"] and series["metric"] not in q["names"]:
        return False
    for k, v in q["dimensions"].items():
        if series["dimensions"].get(k) != v:
            return False
    values = set(series["dimensions"].values()) | {series["metric"]}
    return all(t in values for t in q["terms"])


def _statistic(stat: str, samples: list[float]) -> float:
    if stat == "Sum":
        return float(sum(samples))
    if stat == "Minimum":
        return float(min(samples))
    if stat == "Maximum":
        return float(max(samples))
    if stat == "Average":
        return float(sum(samples) / len(samples))
    if stat == "SampleCount":
        return float(len(samples))
    if stat.startswith("p"):
        pct = float(stat[1:])
        ordered = sorted(samples)
        rank = max(1, int(-(-pct * len(ordered) // 100)))  # nearest rank
        return float(ordered[min(rank, len(ordered)) - 1])
    raise ValueError(stat)


def _label(template: str | None, series: dict[str, Any]) -> str:
    import re

    if template is None:
        return " ".join(v for k, v in sorted(series["dimensions"].items()) if k != "CustomKeyStoreId")
    return re.sub(
        r"\$\{PROP\('Dim\.([^']+)'\)\}", lambda m: series["dimensions"].get(m.group(1), ""), template
    ).replace("${PROP('MetricName')}", series["metric"])


def cloudwatch_answer(state: "State", operation: str, params: Any, region: str) -> Response:
    """GetMetricData, ListMetrics, DescribeAlarmsForMetric, DescribeAlarms from the seed."""
    if params is None:
        return cbor_error("SerializationException", "the request body is not valid CBOR")
    with state.lock:
        seeded = state.cloudwatch
        series = [s for s in seeded["metrics"] if state.here(s, region)]
        alarms = [a for a in seeded["alarms"] if state.here(a, region)]
    if operation == "GetMetricData":
        return get_metric_data(series, params)
    if operation == "ListMetrics":
        wanted = {d.get("Name"): d.get("Value") for d in params.get("Dimensions") or []}
        found = [
            s
            for s in series
            if (not params.get("Namespace") or s["namespace"] == params["Namespace"])
            and (not params.get("MetricName") or s["metric"] == params["MetricName"])
            and all(k in s["dimensions"] and (v is None or s["dimensions"][k] == v) for k, v in wanted.items())
        ]
        return cbor_response(
            {
                "Metrics": [
                    {
                        "Namespace": s["namespace"],
                        "MetricName": s["metric"],
                        "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(s["dimensions"].items())],
                    }
                    for s in found
                ]
            }
        )
    if operation == "DescribeAlarmsForMetric":
        if not params.get("MetricName") or not params.get("Namespace"):
            return cbor_error("InvalidParameterValue", "MetricName and Namespace are required")
        dims = {d.get("Name"): d.get("Value") for d in params.get("Dimensions") or []}
        found = [
            a
            for a in alarms
            if a["metric"] == params["MetricName"] and a["namespace"] == params["Namespace"] and a["dimensions"] == dims
        ]
        return cbor_response({"MetricAlarms": [_alarm(a) for a in found]})
    if operation == "DescribeAlarms":
        names = params.get("AlarmNames")
        found = [a for a in alarms if names is None or a["name"] in names]
        return cbor_response({"MetricAlarms": [_alarm(a) for a in found], "CompositeAlarms": []})
    return cbor_error(
        "NotImplemented", f"CloudWatch {operation} is not emulated by tests/live/server.py ({', '.join(CLOUDWATCH_OPERATIONS)} are)", 501
    )


def _alarm(a: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "AlarmName": a["name"],
        "AlarmArn": f"arn:aws:cloudwatch:{a['region']}:{ACCOUNT_ID}:alarm:{a['name']}",
        "Threshold": float(a["threshold"]),
        "ComparisonOperator": a["comparison"],
        "EvaluationPeriods": 1,
        "StateValue": "OK",
    }
    if a["metric"]:
        out.update(
            {
                "MetricName": a["metric"],
                "Namespace": a["namespace"],
                "Statistic": a["statistic"],
                "Period": a["period"],
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(a["dimensions"].items())],
            }
        )
    if a["expression"]:
        out["Metrics"] = [{"Id": "q1", "Expression": a["expression"], "Period": a["period"], "ReturnData": True}]
    return out


def get_metric_data(series: list[dict[str, Any]], params: dict[str, Any]) -> Response:
    import re

    queries = params.get("MetricDataQueries") or []
    if not queries or len(queries) > 500:
        return cbor_error("InvalidParameterValue", "MetricDataQueries takes 1 to 500 queries")
    ids = [q.get("Id") for q in queries]
    if len(set(ids)) != len(ids) or not all(isinstance(i, str) and re.match(r"^[a-z][a-zA-Z0-9_]*$", i) for i in ids):
        return cbor_error("InvalidParameterValue", f"query ids must be unique and match ^[a-z][a-zA-Z0-9_]*$: {ids}")
    start, end = _epoch(params.get("StartTime")), _epoch(params.get("EndTime"))
    if start is None or end is None or end <= start:
        return cbor_error("InvalidParameterValue", "StartTime and EndTime are required, StartTime before EndTime")
    now = time.time()
    descending = params.get("ScanBy", "TimestampDescending") != "TimestampAscending"
    results = []
    for q in queries:
        expression = q.get("Expression")
        parsed = parse_search(expression or "")
        if parsed is None:
            return cbor_error("InvalidParameterValue", f"query {q.get('Id')}: only SEARCH expressions are emulated: {expression!r}")
        period = parsed["period"] or int(q.get("Period") or 300)

        def buckets(s: dict[str, Any]) -> dict[int, list[float]]:
            out: dict[int, list[float]] = {}
            for ago, v in s["samples"]:
                t = now - ago
                if start <= t < end:
                    b = int(start + (t - start) // period * period)
                    out.setdefault(b, []).append(v)
            return out

        matched = [s for s in series if _matches(s, parsed)]
        try:
            per_series = [(s, {b: _statistic(parsed["stat"], v) for b, v in buckets(s).items()}) for s in matched]
        except ValueError:
            return cbor_error("InvalidParameterValue", f"query {q.get('Id')}: unknown statistic {parsed['stat']!r}")
        if parsed["aggregate"]:
            agg: dict[int, list[float]] = {}
            for _, points in per_series:
                for b, v in points.items():
                    agg.setdefault(b, []).append(v)
            fn = {"SUM": sum, "MIN": min, "MAX": max, "AVG": lambda xs: sum(xs) / len(xs)}[parsed["aggregate"]]
            answers = [(q.get("Label") or q.get("Id"), {b: float(fn(v)) for b, v in agg.items()})]
        else:
            answers = [(_label(q.get("Label"), s), points) for s, points in per_series if points]
            if not answers:
                answers = [("", {})]
        for label, points in answers:
            order = sorted(points, reverse=descending)
            results.append(
                {
                    "Id": q["Id"],
                    "Label": label,
                    "Timestamps": [datetime.datetime.fromtimestamp(b, datetime.timezone.utc) for b in order],
                    "Values": [float(points[b]) for b in order],
                    "StatusCode": "Complete",
                }
            )
    return cbor_response({"MetricDataResults": results, "Messages": []})


# ----------------------------------------------------------------------------------------------
# CloudTrail LookupEvents (AWS JSON 1.1, X-Amz-Target ``CloudTrail_20131101.LookupEvents`` or
# ``com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents``; moto 5.2.5's
# CloudTrail has no LookupEvents), served from the seed's ``trail`` section (``seed_trail``).
# The events live on the state (``State.trail``); a reset forgets them.

# The Rust SDK sends the short form, botocore (the AWS CLI) the long one.
TRAIL_TARGETS = ("CloudTrail_20131101.LookupEvents", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents")
TRAIL_ATTRIBUTE_KEYS = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId")


def seed_trail(state: "State", spec: dict[str, Any], region: str, account: str) -> None:
    """The seed's ``trail``: ``[{"name": "UpdateCustomKeyStore", "ago": 3600 (seconds before the
    call), "store": "cks-..." (requestParameters.customKeyStoreId), "key": key ARN (resources,
    requestParameters.keyId), "error": errorCode, "message": errorMessage, "user": ARN, "ip",
    "agent", "request_id", "id" (eventID), "source" (kms.amazonaws.com), "params": {...} (more
    requestParameters), "additional": {...} (additionalEventData), "count": N (N events, ids and
    request ids numbered), "region"}]``. Events are kept with their Region and answered newest
    first."""
    events = []
    for n, e in enumerate(spec.get("trail") or []):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            raise ControlError(f"each trail event needs a \"name\": {e!r}")
        ago = e.get("ago", 60)
        if not isinstance(ago, (int, float)) or ago < 0:
            raise ControlError(f"a trail event's \"ago\" is seconds: {e!r}")
        for i in range(int(e.get("count", 1))):
            suffix = f"-{i}" if int(e.get("count", 1)) > 1 else ""
            event_id = f"{e.get('id') or stable_hex('event', str(n), n=8)}{suffix}"
            params: dict[str, Any] = {}
            if e.get("store"):
                params["customKeyStoreId"] = e["store"]
            if e.get("key"):
                params["keyId"] = e["key"]
            params.update(e.get("params") or {})
            record: dict[str, Any] = {
                "eventVersion": "1.08",
                "userIdentity": {"type": "IAMUser", "arn": e.get("user", f"arn:aws:iam::{account}:user/Alice"), "accountId": account},
                "eventTime": None,
                "eventSource": e.get("source", "kms.amazonaws.com"),
                "eventName": e["name"],
                "awsRegion": e.get("region", region),
                "sourceIPAddress": e.get("ip", "192.0.2.10"),
                "userAgent": e.get("agent", "aws-cli/2.17.0"),
                "requestParameters": params or None,
                "responseElements": e.get("response"),
                "requestID": f"{e.get('request_id') or stable_hex('request', str(n), n=12)}{suffix}",
                "eventID": event_id,
                "readOnly": e["name"] not in ("CreateCustomKeyStore", "ConnectCustomKeyStore", "DisconnectCustomKeyStore", "UpdateCustomKeyStore", "DeleteCustomKeyStore"),
                "eventType": "AwsApiCall",
                "managementEvent": True,
                "recipientAccountId": account,
            }
            if e.get("error"):
                record["errorCode"] = e["error"]
                record["errorMessage"] = e.get("message", f"{e['error']} (seeded)")
            if e.get("additional"):
                record["additionalEventData"] = e["additional"]
            if e.get("key"):
                record["resources"] = [{"accountId": account, "type": "AWS::KMS::Key", "ARN": e["key"]}]
            events.append({"region": e.get("region", region), "ago": float(ago) + i, "record": record})
    with state.lock:
        state.trail = events


def lookup_events(state: "State", params: dict[str, Any], region: str) -> Response:
    """LookupEvents as CloudTrail answers it: one lookup attribute at most, StartTime/EndTime,
    MaxResults 1-50 (default 50), NextToken pages, newest first."""
    attributes = params.get("LookupAttributes") or []
    if not isinstance(attributes, list) or len(attributes) > 1:
        return json_error("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
    attribute = attributes[0] if attributes else None
    if attribute is not None and (
        not isinstance(attribute, dict) or attribute.get("AttributeKey") not in TRAIL_ATTRIBUTE_KEYS or not isinstance(attribute.get("AttributeValue"), str)
    ):
        return json_error("InvalidLookupAttributesException", f"Invalid lookup attribute: {attribute!r}")
    max_results = params.get("MaxResults", 50)
    if not isinstance(max_results, int) or isinstance(max_results, bool) or not 1 <= max_results <= 50:
        return json_error("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
    if params.get("EventCategory") not in (None, "insight"):
        return json_error("InvalidEventCategoryException", f"Invalid EventCategory {params.get('EventCategory')!r}")
    now = time.time()
    start, end = _epoch(params.get("StartTime")), _epoch(params.get("EndTime"))
    start = now - 90 * 86400 if start is None else start
    end = now if end is None else end
    if start > end:
        return json_error("InvalidTimeRangeException", "StartTime must be before EndTime.")
    with state.lock:
        seeded = list(state.trail)

    def value_of(record: dict[str, Any], key: str) -> list[str]:
        resources = record.get("resources") or []
        return {
            "EventId": [record["eventID"]],
            "EventName": [record["eventName"]],
            "ReadOnly": [str(record["readOnly"]).lower()],
            "Username": [record["userIdentity"]["arn"].rsplit("/", 1)[-1]],
            "ResourceType": [r["type"] for r in resources],
            "ResourceName": [r["ARN"] for r in resources],
            "EventSource": [record["eventSource"]],
            "AccessKeyId": [],
        }[key]

    found = []
    for ev in seeded:
        t = now - ev["ago"]
        if not state.here(ev, region) or not start <= t <= end:
            continue
        if attribute is not None and attribute["AttributeValue"] not in value_of(ev["record"], attribute["AttributeKey"]):
            continue
        found.append((t, ev["record"]))
    found.sort(key=lambda x: -x[0])
    query = json.dumps([attribute, round(start), round(end)], sort_keys=True)
    kind = "trail:" + stable_hex(query, n=12)
    try:
        offset = decode_token(params.get("NextToken"), kind)
    except ValueError:
        return json_error("InvalidNextTokenException", "Invalid NextToken.")
    page = found[offset : offset + max_results]
    events = []
    for t, record in page:
        record = dict(record, eventTime=datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        events.append(
            {
                "EventId": record["eventID"],
                "EventName": record["eventName"],
                "ReadOnly": str(record["readOnly"]).lower(),
                "EventTime": t,
                "EventSource": record["eventSource"],
                "Username": record["userIdentity"]["arn"].rsplit("/", 1)[-1],
                "Resources": [{"ResourceType": r["type"], "ResourceName": r["ARN"]} for r in record.get("resources") or []],
                "CloudTrailEvent": json.dumps(record),
            }
        )
    out: dict[str, Any] = {"Events": events}
    if offset + max_results < len(found):
        out["NextToken"] = encode_token(offset + max_results, kind)
    return json_response(out)


class CksApp:
    def __init__(self, moto_app: Callable, state: State, pki: Pki, verbose: bool) -> None:
        patch_moto()
        self.moto = moto_app
        self.state = state
        self.pki = pki
        self.verbose = verbose
        self.port = 0
        self.seed_lock = threading.Lock()

    # -- WSGI entry point

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        try:
            resp = self.dispatch(environ)
        except Exception:  # never let a harness bug look like a hang or a moto error
            tb = traceback.format_exc()
            log.error("internal error:\n%s", tb)
            resp = Response(500, f"tests/live/server.py internal error:\n{tb}".encode(), [("Content-Type", "text/plain")])
        if isinstance(resp, Truncated):
            return resp.run(environ, start_response)
        if isinstance(resp, Passthrough):
            return resp.run(start_response)
        start_response(f"{resp.status} {status_text(resp.status)}", resp.headers + [("Content-Length", str(len(resp.body)))])
        return [resp.body]

    def dispatch(self, environ: dict[str, Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_cks/"):
            return self.control(environ, path[len("/_cks/"):].strip("/"))

        body = read_body(environ)
        service, region = service_of(environ)
        region = region or DEFAULT_REGION
        target = environ.get("HTTP_X_AMZ_TARGET")
        json_protocol = bool(target)
        protocol = protocol_of(service, target)
        rpc_operation = rpcv2_cbor_operation(environ, path)
        if rpc_operation is not None:
            # CloudWatch (RPC v2 CBOR), named as in IAM: cloudwatch:GetMetricData.
            service = "cloudwatch" if service == "monitoring" else service
            protocol, action_name, params = "cbor", rpc_operation, cbor_params(body)
        elif target:
            action_name = target.rsplit(".", 1)[-1]
            try:
                params: Any = json.loads(body or b"{}")
            except ValueError:
                params = None
        else:
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            form.update(parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True))
            params = {k: v[0] if len(v) == 1 else v for k, v in form.items()}
            action_name = params.get("Action") or f"{environ.get('REQUEST_METHOD')} {path}"
        action = f"{service or 'unsigned'}:{action_name}"
        # The account the call acts in: the one AssumeRole gave its access key to, else the
        # scenario's (the caller's own).
        account = self.state.issued.get(access_key_of(environ), self.state.account)
        _CALLER.account = account
        self.state.record(action, params, region, account)
        if self.verbose:
            log.info("%s %s %s", region, action, json.dumps(params)[:300])
        # Counted while it is being answered (/_cks/in-flight).
        generation = self.state.enter()
        try:
            disabled = self.disabled_region(account, region)
            if disabled is not None:
                return error_response(protocol, *disabled)
            fault = self.state.take_fault(action, region, account)
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is not None and (fault.hang or fault.reset or fault.code):
                if fault.hang:
                    release = self.state.release
                    log.info("%s: hanging (fault)", action)
                    release.wait()
                    code = "ServiceUnavailableException" if json_protocol else "ServiceUnavailable"
                    return error_response(protocol, code, "released by reset")
                if fault.code:
                    message = fault.message or default_message(action, fault.code, account)
                    resp: Any = error_response(protocol, fault.code, message, fault.status)
                else:
                    resp = self.answer(environ, action, action_name, target, params, region, protocol)
                if fault.reset:
                    log.info("%s: reset mid-response (fault)", action)
                    return Truncated(resp, fault.after)
                return resp
            return self.answer(environ, action, action_name, target, params, region, protocol)
        finally:
            self.state.leave(generation)

    def answer(
        self,
        environ: dict[str, Any],
        action: str,
        action_name: str,
        target: str | None,
        params: Any,
        region: str,
        protocol: str,
    ) -> Any:
        """The normal answer to a call: served here from seeded state, or by moto."""
        org = self.answer_organization(environ, action, params, region, protocol)
        if org is not None:
            return org
        if protocol == "cbor":
            return cloudwatch_answer(self.state, action_name, params, region)
        if target and params is None:
            return json_error("SerializationException", "the request body is not valid JSON")
        if target == "BaldrApiService.DescribeClusters":
            return self.describe_clusters(params, region)
        if target and target.startswith("BaldrApiService."):
            return json_error(
                "CloudHsmInvalidRequestException",
                f"{action_name} is not emulated by tests/live/server.py (only DescribeClusters is)",
            )
        if target == "TrentService.DescribeCustomKeyStores":
            return self.describe_custom_key_stores(params, region)
        if target in ("TrentService.ConnectCustomKeyStore", "TrentService.DisconnectCustomKeyStore"):
            return self.connect_or_disconnect(action_name, params, region)
        if target == "TrentService.ListKeys":
            return self.list_keys(params, region)
        if target == "TrentService.DescribeKey":
            return self.describe_key(params, region)
        if target in TRAIL_TARGETS:
            return lookup_events(self.state, params, region)
        # moto serves the call as the caller's account (its x-moto-account-id header).
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.state.caller()
        return Passthrough(self.moto, environ, action, protocol)

    # -- An organisation: Organizations ListAccounts, STS AssumeRole into its accounts, their
    # enabled Regions, and Security Hub BatchImportFindings (see ``seed_organization``)

    def disabled_region(self, account: str, region: str) -> tuple[str, str] | None:
        """A call in a Region the account has not enabled: what AWS answers credentials there
        (an opt-in Region not enabled does not accept the account's tokens)."""
        org = self.state.organization
        acct = (org or {}).get("accounts", {}).get(account)
        if acct is None or region not in acct.get("disabled_regions", ()):
            return None
        return ("UnrecognizedClientException", "The security token included in the request is invalid.")

    def answer_organization(self, environ: dict[str, Any], action: str, params: Any, region: str, protocol: str) -> Response | None:
        org = self.state.organization
        path = environ.get("PATH_INFO", "")
        if action == "securityhub:POST /findings/import":
            return self.batch_import_findings(params_json(environ), region)
        if org is None:
            return None
        caller = self.state.caller()
        if action == "organizations:ListAccounts":
            return self.list_accounts(org, caller, params)
        if action == "sts:AssumeRole":
            return self.assume_role(org, caller, params)
        if action == "ec2:DescribeRegions":
            acct = org["accounts"].get(caller)
            if acct is not None and acct.get("regions") is not None:
                return describe_regions_answer(acct, params)
        return None

    def list_accounts(self, org: dict[str, Any], caller: str, params: Any) -> Response:
        if caller != org["management"]:
            return json_error(
                "AccessDeniedException",
                f"You don't have permissions to access this resource. (account {caller} is not the organization's management account)",
            )
        params = params or {}
        size = params.get("MaxResults") or org.get("page_size") or 20
        if not isinstance(size, int) or not 1 <= size <= 20:
            return json_error("InvalidInputException", "You provided a value that does not match the required pattern. MaxResults must be between 1 and 20.")
        accounts = list(org["accounts"].values())
        start = int(params.get("NextToken") or 0)
        page = accounts[start : start + size]
        out: dict[str, Any] = {
            "Accounts": [
                {
                    "Id": a["id"],
                    "Arn": f"arn:aws:organizations::{org['management']}:account/{org['id']}/{a['id']}",
                    "Email": f"aws+{a['id']}@example.com",
                    "Name": a.get("name") or f"account-{a['id']}",
                    "Status": "ACTIVE" if a["state"] == "ACTIVE" else "SUSPENDED",
                    "State": a["state"],
                    "JoinedMethod": "CREATED",
                    "JoinedTimestamp": 1700000000.0,
                }
                for a in page
            ]
        }
        if start + size < len(accounts):
            out["NextToken"] = str(start + size)
        return json_response(out)

    def assume_role(self, org: dict[str, Any], caller: str, params: dict[str, Any]) -> Response:
        arn = str(params.get("RoleArn") or "")
        session = str(params.get("RoleSessionName") or "")
        parts = arn.split(":")
        account = parts[4] if len(parts) > 5 else ""
        role = parts[5][len("role/"):] if len(parts) > 5 and parts[5].startswith("role/") else ""
        acct = org["accounts"].get(account)
        denied = f"User: arn:aws:iam::{caller}:user/cks-doctor-live-test is not authorized to perform: sts:AssumeRole on resource: {arn}"
        if acct is None or role != acct.get("role", org["role"]) or acct.get("deny"):
            return query_error("AccessDenied", denied, 403)
        if acct.get("external_id") is not None and params.get("ExternalId") != acct["external_id"]:
            return query_error("AccessDenied", denied, 403)
        key = "ASIA" + stable_hex(account, session, str(len(self.state.issued)), n=16).upper()
        with self.state.lock:
            self.state.issued[key] = account
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        body = (
            '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
            f"<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{stable_hex(key, 'secret', n=40)}</SecretAccessKey>"
            f"<SessionToken>{stable_hex(key, 'token', n=64)}</SessionToken>"
            f"<Expiration>{expires.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration></Credentials>"
            f"<AssumedRoleUser><AssumedRoleId>AROA{stable_hex(account, role, n=17).upper()}:{xml_escape(session)}</AssumedRoleId>"
            f"<Arn>arn:aws:sts::{account}:assumed-role/{xml_escape(role)}/{xml_escape(session)}</Arn></AssumedRoleUser>"
            f"</AssumeRoleResult><ResponseMetadata><RequestId>{request_id()}</RequestId></ResponseMetadata></AssumeRoleResponse>"
        )
        return Response(200, body.encode(), [("Content-Type", "text/xml")])

    def batch_import_findings(self, params: Any, region: str) -> Response:
        """Security Hub BatchImportFindings (REST JSON): each finding is checked as Security
        Hub checks it for the default product (its AwsAccountId is the caller's account, its
        ProductArn that account's default product in the Region of the call, the required
        fields are there) and kept; at most 100 a call."""
        caller = self.state.caller()
        findings = (params or {}).get("Findings")
        if not isinstance(findings, list) or not 1 <= len(findings) <= 100:
            return rest_json_error("InvalidInputException", "Findings must hold 1 to 100 findings", 400)
        product = f"arn:aws:securityhub:{region}:{caller}:product/{caller}/default"
        required = ("SchemaVersion", "Id", "ProductArn", "GeneratorId", "AwsAccountId", "CreatedAt", "UpdatedAt", "Title", "Description", "Resources")
        failed = []
        with self.state.lock:
            for f in findings:
                missing = [k for k in required if not f.get(k)]
                if missing:
                    failed.append({"Id": f.get("Id", ""), "ErrorCode": "InvalidInput", "ErrorMessage": f"missing {', '.join(missing)}"})
                elif f["AwsAccountId"] != caller or f["ProductArn"] != product:
                    failed.append({"Id": f["Id"], "ErrorCode": "AccessDeniedException", "ErrorMessage": f"the finding is not for the caller's account {caller} and product {product}"})
                else:
                    self.state.findings = [x for x in self.state.findings if not (x["account"] == caller and x["region"] == region and x["finding"]["Id"] == f["Id"])]
                    self.state.findings.append({"account": caller, "region": region, "finding": f})
        return json_response({"FailedCount": len(failed), "SuccessCount": len(findings) - len(failed), "FailedFindings": failed})

    # -- CloudHSM v2

    def describe_clusters(self, params: dict[str, Any], region: str) -> Response:
        filters = params.get("Filters") or {}
        if not isinstance(filters, dict):
            return json_error("CloudHsmInvalidRequestException", "Filters must be a map")
        for key, values in filters.items():
            if key not in ("clusterIds", "vpcIds", "states"):
                return json_error("CloudHsmInvalidRequestException", f"Invalid filter key: {key}")
            if not isinstance(values, list):
                return json_error("CloudHsmInvalidRequestException", f"Filter {key} must be a list")
        max_results = params.get("MaxResults")
        if max_results is not None and not (isinstance(max_results, int) and 1 <= max_results <= 25):
            return json_error(
                "CloudHsmInvalidRequestException",
                "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: "
                "Member must have value between 1 and 25",
            )
        with self.state.lock:
            clusters = [c["data"] for c in self.state.clusters if self.state.here(c, region)]
            page_size = int(self.state.options.get("cloudhsm_page_size", 25))
            unknown_ids = self.state.options.get("unknown_cluster_ids", "omit")
        ids = filters.get("clusterIds")
        if ids is not None:
            known = {c["ClusterId"] for c in clusters}
            missing = [i for i in ids if i not in known]
            if missing and unknown_ids == "not_found":
                return json_error(
                    "CloudHsmResourceNotFoundException",
                    f"The cluster(s) {', '.join(missing)} could not be found.",
                )
            clusters = [c for c in clusters if c["ClusterId"] in ids]
        if filters.get("vpcIds") is not None:
            clusters = [c for c in clusters if c.get("VpcId") in filters["vpcIds"]]
        if filters.get("states") is not None:
            clusters = [c for c in clusters if c.get("State") in filters["states"]]
        try:
            start = decode_token(params.get("NextToken"), "cloudhsm")
        except ValueError:
            return json_error("CloudHsmInvalidRequestException", "Invalid NextToken")
        size = min(page_size, max_results or page_size)
        page = clusters[start : start + size]
        out: dict[str, Any] = {"Clusters": page}
        if start + size < len(clusters):
            out["NextToken"] = encode_token(start + size, "cloudhsm")
        return json_response(out)

    # -- KMS

    def describe_custom_key_stores(self, params: dict[str, Any], region: str) -> Response:
        limit = params.get("Limit")
        if limit is not None and not (isinstance(limit, int) and 1 <= limit <= 1000):
            return json_error(
                "ValidationException",
                "1 validation error detected: Value at 'limit' failed to satisfy constraint: "
                "Member must have value between 1 and 1000",
            )
        with self.state.lock:
            stores = []
            for s in self.state.key_stores:
                if self.state.here(s, region):
                    s["lifecycle"].settle(s["data"])
                    stores.append(dict(s["data"]))
            page_size = int(self.state.options.get("kms_page_size", 1000))
        store_id, name = params.get("CustomKeyStoreId"), params.get("CustomKeyStoreName")
        if store_id is not None:
            stores = [s for s in stores if s["CustomKeyStoreId"] == store_id]
            if not stores:
                return json_error("CustomKeyStoreNotFoundException", f"Custom key store {store_id} not found")
        if name is not None:
            stores = [s for s in stores if s["CustomKeyStoreName"] == name]
            if not stores:
                return json_error("CustomKeyStoreNotFoundException", f"Custom key store named {name} not found")
        try:
            start = decode_token(params.get("Marker"), "kms")
        except ValueError:
            return json_error("InvalidMarkerException", "Invalid marker")
        size = min(page_size, limit or page_size)
        page = stores[start : start + size]
        truncated = start + size < len(stores)
        out: dict[str, Any] = {"CustomKeyStores": page, "Truncated": truncated}
        if truncated:
            out["NextMarker"] = encode_token(start + size, "kms")
        return json_response(out)

    def connect_or_disconnect(self, action_name: str, params: dict[str, Any], region: str) -> Response:
        """ConnectCustomKeyStore and DisconnectCustomKeyStore (see ``StoreLifecycle``)."""
        store_id = params.get("CustomKeyStoreId")
        if not isinstance(store_id, str) or not 1 <= len(store_id) <= 64:
            return json_error(
                "ValidationException",
                "1 validation error detected: Value at 'customKeyStoreId' failed to satisfy constraint: "
                "Member must have length between 1 and 64",
            )
        with self.state.lock:
            found = [s for s in self.state.key_stores if self.state.here(s, region) and s["data"]["CustomKeyStoreId"] == store_id]
            if not found:
                return json_error("CustomKeyStoreNotFoundException", f"Custom key store {store_id} not found")
            entry = found[0]
            lifecycle: StoreLifecycle = entry["lifecycle"]
            connect = action_name == "ConnectCustomKeyStore"
            invalid = lifecycle.connect(entry["data"]) if connect else lifecycle.disconnect(entry["data"])
        if invalid is not None:
            # The exception's name is KMS's; the message paraphrases the API model's documentation.
            if connect:
                message = (
                    f"Custom key store {store_id} has ConnectionState {invalid}: ConnectCustomKeyStore is not "
                    "valid when the ConnectionState is DISCONNECTING or FAILED. To reconnect a custom key store "
                    "in a FAILED state, disconnect it (DisconnectCustomKeyStore), then connect it."
                )
            else:
                message = (
                    f"Custom key store {store_id} has ConnectionState {invalid}: DisconnectCustomKeyStore is not "
                    "valid when the ConnectionState is DISCONNECTING or DISCONNECTED."
                )
            return json_error("CustomKeyStoreInvalidStateException", message)
        return json_response({})

    def list_keys(self, params: dict[str, Any], region: str) -> Response:
        limit = params.get("Limit")
        if limit is not None and not (isinstance(limit, int) and 1 <= limit <= 1000):
            return json_error(
                "ValidationException",
                "1 validation error detected: Value at 'limit' failed to satisfy constraint: "
                "Member must have value between 1 and 1000",
            )
        with self.state.lock:
            keys = [k["data"] for k in self.state.keys if self.state.here(k, region)]
            page_size = int(self.state.options.get("kms_keys_page_size", 1000))
        try:
            start = decode_token(params.get("Marker"), "kms-keys")
        except ValueError:
            return json_error("InvalidMarkerException", "Invalid marker")
        size = min(page_size, limit or page_size)
        page = [{"KeyId": k["KeyId"], "KeyArn": k["Arn"]} for k in keys[start : start + size]]
        truncated = start + size < len(keys)
        out: dict[str, Any] = {"Keys": page, "Truncated": truncated}
        if truncated:
            out["NextMarker"] = encode_token(start + size, "kms-keys")
        return json_response(out)

    def describe_key(self, params: dict[str, Any], region: str) -> Response:
        key_id = params.get("KeyId")
        if not isinstance(key_id, str) or not key_id:
            return json_error("ValidationException", "KeyId is required")
        with self.state.lock:
            found = [k for k in self.state.keys if self.state.here(k, region) and key_id in (k["data"]["KeyId"], k["data"]["Arn"])]
        if not found:
            return json_error("NotFoundException", f"Key '{key_id}' does not exist")
        if found[0]["deny"]:
            return json_error(
                "AccessDeniedException",
                f"User: arn:aws:iam::{self.state.account}:user/test is not authorized to perform: kms:DescribeKey on resource: {found[0]['data']['Arn']} because no resource-based policy allows the kms:DescribeKey action",
            )
        return json_response({"KeyMetadata": found[0]["data"]})

    # -- control API

    def control(self, environ: dict[str, Any], what: str) -> Response:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            body = read_body(environ)
            payload = json.loads(body) if body.strip() else None
            if what == "health":
                return plain_json({"ok": True, "port": self.port})
            if what == "reset" and method == "POST":
                with self.seed_lock:
                    self.reset()
                return plain_json({"ok": True})
            if what == "seed" and method == "POST":
                if not isinstance(payload, dict):
                    raise ControlError("seed takes a JSON object")
                with self.seed_lock:
                    self.reset()
                    return plain_json(self.seed(payload))
            if what == "faults" and method == "POST":
                specs = payload if isinstance(payload, list) else [payload]
                faults = [Fault(s) for s in specs]
                with self.state.lock:
                    for f in faults:
                        self.state.faults.setdefault(f.action, []).append(f)
                return plain_json({"ok": True, "faults": [f.describe() for f in faults]})
            if what == "calls":
                query = parse_qs(environ.get("QUERY_STRING", ""))
                with self.state.lock:
                    if "account" in query:
                        return plain_json(dict(self.state.calls_by_account.get(query["account"][0], Counter())))
                    if "region" in query:
                        return plain_json(dict(self.state.calls_by_region.get(query["region"][0], Counter())))
                    return plain_json(dict(self.state.calls))
            if what == "requests":
                with self.state.lock:
                    return plain_json(list(self.state.requests))
            if what == "findings":
                with self.state.lock:
                    return plain_json(list(self.state.findings))
            if what == "in-flight":
                with self.state.lock:
                    return plain_json({"max": self.state.max_in_flight})
            if what == "state":
                with self.state.lock:
                    for s in self.state.key_stores:
                        s["lifecycle"].settle(s["data"])
                    return plain_json(
                        {
                            "clusters": self.state.clusters,
                            "key_stores": [{"region": s["region"], "data": s["data"]} for s in self.state.key_stores],
                            "options": self.state.options,
                            "account": self.state.account,
                            "faults": {k: [f.describe() for f in v] for k, v in self.state.faults.items()},
                        }
                    )
            raise ControlError(f"no control endpoint {method} /_cks/{what}")
        except ControlError as e:
            return plain_json({"error": str(e)}, 400)
        except ValueError as e:
            return plain_json({"error": f"bad JSON: {e}"}, 400)

    def reset(self) -> None:
        self.state.clear()
        from werkzeug.test import Client

        resp = Client(self.moto).post("/moto-api/reset")
        if resp.status_code != 200:
            raise ControlError(f"moto reset failed: {resp.status_code} {resp.get_data(as_text=True)[:300]}")

    # -- seeding a scenario

    def seed(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Builds a scenario. Every section is optional:

        ``region`` (us-east-1), ``account`` (the caller's account, 123456789012: moto serves
        every EC2, ELBv2 and STS call as this account, so GetCallerIdentity answers it),
        ``options`` (``kms_page_size``, ``cloudhsm_page_size``, ``unknown_cluster_ids``:
        ``omit`` | ``not_found``), ``ec2`` (see ``seed_ec2``), ``load_balancers`` (see
        ``seed_load_balancers``), ``endpoint_services`` (see ``seed_endpoint_services``),
        ``clusters`` (see ``make_cluster``), ``key_stores`` (see ``make_key_store``), ``keys`` (see
        ``make_key``; ``options.kms_keys_page_size`` pages ListKeys), ``metrics`` and ``alarms``
        (CloudWatch, see ``seed_cloudwatch``), ``faults``, ``regions``.

        The state is per Region, as in AWS: DescribeClusters and DescribeCustomKeyStores answer
        what was seeded in the Region of the call's SigV4 credential scope (moto's EC2, ELBv2
        and STS are per Region by themselves). The top-level sections are built in ``region``;
        ``regions`` builds more Regions in the same scenario:
        ``[{"region": "eu-west-1", "ec2", "load_balancers", "endpoint_services", "clusters",
        "key_stores"}]`` (the same sections, made in that Region; refs are shared by all
        Regions, so give each its own names). A cluster or key store may also name its own
        ``region`` (its EC2 resources are still made in its section's Region).

        Where a cluster names a VPC, subnet or security group, a ref defined in ``ec2`` is
        replaced by the id moto gave it; anything else is used as a literal id. In key stores,
        ``${ref}`` is replaced (an endpoint service's ref is its service name).
        Answers ``{"refs": {ref: id}, "clusters": [ids], "key_stores": [ids], "hsms": {...},
        "load_balancers": {ref: arn}, "endpoint_services": {ref: {"id", "name", "owner"}},
        "regions": {region: {"clusters": [ids], "key_stores": [ids]}}}``.
        """
        region = spec.get("region", DEFAULT_REGION)
        account = str(spec.get("account") or ACCOUNT_ID)
        refs: dict[str, str] = {}
        sections = [(region, spec)]
        for extra in spec.get("regions") or []:
            if not isinstance(extra, dict) or not isinstance(extra.get("region"), str):
                raise ControlError(f"each of \"regions\" is an object with a \"region\": {extra!r}")
            unknown = set(extra) - {"region", "ec2", "load_balancers", "endpoint_services", "clusters", "key_stores", "keys"}
            if unknown:
                raise ControlError(f"regions[{extra['region']}]: sections not made per Region: {sorted(unknown)}")
            sections.append((extra["region"], extra))
        clusters: list[dict[str, Any]] = []
        stores: list[dict[str, Any]] = []
        keys: list[dict[str, Any]] = []
        hsm_ids: dict[str, list[str]] = {}
        lbs: dict[str, dict[str, Any]] = {}
        services: dict[str, dict[str, str]] = {}
        by_region: dict[str, dict[str, list[str]]] = {}
        for r, section in sections:
            made = self.seed_region(section, r, account, refs)
            clusters += made["clusters"]
            stores += made["key_stores"]
            keys += made["keys"]
            hsm_ids.update(made["hsms"])
            lbs.update(made["load_balancers"])
            services.update(made["endpoint_services"])
        for c in clusters:
            by_region.setdefault(c["region"], {"clusters": [], "key_stores": []})["clusters"].append(c["data"]["ClusterId"])
        for s in stores:
            by_region.setdefault(s["region"], {"clusters": [], "key_stores": []})["key_stores"].append(s["data"]["CustomKeyStoreId"])
        organization = self.seed_organization(spec.get("organization"), account, refs)
        for acct in (organization or {}).get("accounts", {}).values():
            clusters += acct.pop("_clusters")
            stores += acct.pop("_key_stores")
            keys += acct.pop("_keys")
            hsm_ids.update(acct.pop("_hsms"))
        faults = [Fault(f) for f in spec.get("faults") or []]
        cloudwatch = seed_cloudwatch(spec, region)
        seed_trail(self.state, spec, region, account)
        with self.state.lock:
            self.state.cloudwatch = cloudwatch
            self.state.clusters = clusters
            self.state.key_stores = stores
            self.state.keys = keys
            self.state.options = dict(spec.get("options") or {})
            self.state.account = account
            self.state.organization = organization
            for f in faults:
                self.state.faults.setdefault(f.action, []).append(f)
            # Seeding talks to moto directly: nothing is counted, but start from zero anyway.
            self.state.calls = Counter()
            self.state.calls_by_region = {}
            self.state.requests = []
        return {
            "refs": refs,
            "clusters": [c["data"]["ClusterId"] for c in clusters],
            "hsms": hsm_ids,
            "key_stores": [s["data"]["CustomKeyStoreId"] for s in stores],
            "load_balancers": {ref: lb["arn"] for ref, lb in lbs.items()},
            "endpoint_services": services,
            "regions": by_region,
            "accounts": {
                a["id"]: {"key_stores": a["key_store_ids"], "clusters": a["cluster_ids"]}
                for a in ((organization or {}).get("accounts") or {}).values()
            },
        }

    def seed_organization(self, spec: Any, management: str, refs: dict[str, str]) -> dict[str, Any] | None:
        """An organisation whose management account is the scenario's ``account``:
        ``{"id": "o-...", "role": "CksDoctorAudit" (the role in every account), "page_size": N
        (ListAccounts), "accounts": [{"id": "222233334444", "name", "state": "ACTIVE" |
        "SUSPENDED" | ..., "role": name (its own), "deny": true (AssumeRole is refused),
        "external_id": "..." (required by its trust policy), "regions": [...] (DescribeRegions:
        the enabled Regions), "disabled_regions": [...] (calls signed for them are refused as
        AWS refuses an opt-in Region not enabled), "region": r, and the sections of a scenario
        made in that account: "ec2", "load_balancers", "endpoint_services", "clusters",
        "key_stores", "keys", and "more_regions": [{"region", ...sections}]}]}``. The
        management account is listed too (ACTIVE); its role can be assumed unless
        ``"management_denied": true``; its stores are the scenario's top-level sections.
        """
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise ControlError("organization is an object")
        org: dict[str, Any] = {
            "id": str(spec.get("id") or "o-" + stable_hex(management, n=10)),
            "management": management,
            "role": str(spec.get("role") or "CksDoctorAudit"),
            "page_size": spec.get("page_size"),
            "accounts": {},
        }
        org["accounts"][management] = {"id": management, "name": "management", "state": "ACTIVE", "deny": bool(spec.get("management_denied", False)), "key_store_ids": [], "cluster_ids": [], "_clusters": [], "_key_stores": [], "_keys": [], "_hsms": {}}
        for a in spec.get("accounts") or []:
            if not isinstance(a, dict) or not isinstance(a.get("id"), str) or len(a["id"]) != 12:
                raise ControlError(f"each account of organization.accounts has a 12-digit \"id\": {a!r}")
            acct = {k: v for k, v in a.items() if k in ("id", "name", "role", "deny", "external_id", "regions", "disabled_regions")}
            acct["state"] = str(a.get("state") or "ACTIVE")
            made_clusters: list[dict[str, Any]] = []
            made_stores: list[dict[str, Any]] = []
            made_keys: list[dict[str, Any]] = []
            hsms: dict[str, list[str]] = {}
            sections = [(a.get("region", DEFAULT_REGION), a)] + [(x["region"], x) for x in a.get("more_regions") or []]
            for r, section in sections:
                if not any(section.get(k) for k in ("ec2", "clusters", "key_stores", "keys", "load_balancers", "endpoint_services")):
                    continue
                made = self.seed_region(section, r, a["id"], refs)
                for kind, out in (("clusters", made_clusters), ("key_stores", made_stores), ("keys", made_keys)):
                    for entry in made[kind]:
                        entry["account"] = a["id"]
                        out.append(entry)
                hsms.update(made["hsms"])
            acct.update(
                _clusters=made_clusters,
                _key_stores=made_stores,
                _keys=made_keys,
                _hsms=hsms,
                key_store_ids=[x["data"]["CustomKeyStoreId"] for x in made_stores],
                cluster_ids=[x["data"]["ClusterId"] for x in made_clusters],
            )
            org["accounts"][a["id"]] = acct
        return org

    def seed_region(self, spec: dict[str, Any], region: str, account: str, refs: dict[str, str]) -> dict[str, Any]:
        """One Region's sections of a scenario (see ``seed``): EC2, load balancers, endpoint
        services, clusters and key stores, made in ``region``."""
        ec2 = Ec2Seeder(self.moto, region, account)
        ec2_spec = spec.get("ec2") or {}
        later = self.seed_ec2(ec2, ec2_spec, refs)
        lbs = self.seed_load_balancers(Elbv2Seeder(self.moto, region, account), spec.get("load_balancers") or [], refs)
        services = self.seed_endpoint_services(ec2, spec.get("endpoint_services") or [], refs, lbs, account, region)
        elbv2 = Elbv2Seeder(self.moto, region, account)
        for lb in lbs.values():
            if lb["deleted"]:
                elbv2.call("DeleteLoadBalancer", {"LoadBalancerArn": lb["arn"]}, account=lb["account"])
        clusters = []
        hsm_ids: dict[str, list[str]] = {}
        for c in spec.get("clusters") or []:
            data = self.make_cluster(c, ec2, refs, later["deleted_subnets"], later["deleted_groups"])
            clusters.append({"region": c.get("region", region), "data": data})
            hsm_ids[data["ClusterId"]] = [h["HsmId"] for h in data.get("Hsms", [])]
        later["finish"]()
        stores = []
        for s in spec.get("key_stores") or []:
            data = self.make_key_store({k: substitute(v, refs) for k, v in s.items()}, account)
            stores.append({"region": s.get("region", region), "data": data, "lifecycle": StoreLifecycle(s).seeded(data)})
        keys = [
            {"region": region, "data": self.make_key({k: substitute(v, refs) for k, v in spec_k.items()}, account, region), "deny": bool(spec_k.get("deny"))}
            for spec_k in spec.get("keys") or []
        ]
        return {
            "clusters": clusters,
            "hsms": hsm_ids,
            "key_stores": stores,
            "keys": keys,
            "load_balancers": lbs,
            "endpoint_services": services,
        }

    def seed_load_balancers(self, elbv2: Elbv2Seeder, specs: list[dict[str, Any]], refs: dict[str, str]) -> dict[str, dict[str, Any]]:
        """ELBv2 load balancers, made through moto's ELBv2 Query API:
        ``[{"ref", "type": "network" (default) | "application" | "gateway", "subnets": [refs],
        "scheme": "internal" (default), "name", "state": "active" (default; moto's describe
        turns "provisioning" into it) | "provisioning" | "failed" | ..., "account", "deleted": bool}]``
        -- ``account`` makes it in another account (with that account's subnets); ``deleted``
        deletes it once the endpoint services are made (AWS refuses to delete a load balancer
        that serves one; moto does not, which leaves a service naming a missing ARN).
        Answers ``{ref: {"arn", "type", "account"}}``; ``refs[ref]`` is the ARN.
        """
        out: dict[str, dict[str, Any]] = {}
        for i, lb in enumerate(specs):
            ref = lb.get("ref")
            if not ref:
                raise ControlError(f"a load balancer needs a ref: {lb!r}")
            kind = lb.get("type", "network")
            params: dict[str, Any] = {
                "Name": lb.get("name", f"cks-{ref}"[:32]),
                "Type": kind,
                "Scheme": lb.get("scheme", "internal"),
            }
            for j, subnet in enumerate(lb.get("subnets") or [], 1):
                params[f"Subnets.member.{j}"] = refs.get(subnet, subnet)
            root = elbv2.call("CreateLoadBalancer", params, account=lb.get("account"))
            arn = text_of(root, "CreateLoadBalancerResult/LoadBalancers/member/LoadBalancerArn")
            if lb.get("state") not in (None, "active"):
                from moto.elbv2.models import elbv2_backends

                account = lb.get("account") or elbv2.account or ACCOUNT_ID
                balancer = elbv2_backends[account][elbv2.region].load_balancers[arn]
                balancer.state = lb["state"]
            refs[ref] = arn
            if kind == "network":
                self.seed_listeners(elbv2, arn, ref, lb)
            out[ref] = {"arn": arn, "type": kind, "account": lb.get("account") or elbv2.account, "deleted": bool(lb.get("deleted"))}
        return out

    def seed_listeners(self, elbv2: Elbv2Seeder, arn: str, ref: str, lb: dict[str, Any]) -> None:
        """A network load balancer's listeners, each forwarding to a target group of its own:
        ``"listeners": [{"port": 443, "protocol": "TCP", "targets": [{"id": "10.0.1.10",
        "state": "healthy" | "unhealthy" | ..., "reason", "description"}]}]``; without the key, one
        TCP 443 listener with one healthy target (a working proxy's)."""
        from moto.elbv2.models import elbv2_backends

        account = lb.get("account") or elbv2.account or ACCOUNT_ID
        backend = elbv2_backends[account][elbv2.region]
        vpc_id = backend.load_balancers[arn].vpc_id
        listeners = lb.get("listeners")
        if listeners is None:
            listeners = [{"port": 443, "protocol": "TCP", "targets": [{"id": "10.0.1.10", "state": "healthy"}]}]
        for i, spec in enumerate(listeners):
            port = spec.get("port", 443)
            protocol = spec.get("protocol", "TCP")
            root = elbv2.call(
                "CreateTargetGroup",
                {
                    "Name": f"cks-{ref}-{i}"[:32],
                    "Protocol": protocol,
                    "Port": port,
                    "VpcId": vpc_id,
                    "TargetType": "ip",
                },
                account=lb.get("account"),
            )
            group = text_of(root, "CreateTargetGroupResult/TargetGroups/member/TargetGroupArn")
            targets = spec.get("targets") or []
            if targets:
                params = {}
                for j, t in enumerate(targets, 1):
                    params[f"Targets.member.{j}.Id"] = t["id"]
                    params[f"Targets.member.{j}.Port"] = t.get("port", port)
                elbv2.call("RegisterTargets", {"TargetGroupArn": group, **params}, account=lb.get("account"))
                health = {
                    t["id"]: (t["state"], t.get("reason", "Target.FailedHealthChecks"), t.get("description", "Health checks failed"))
                    for t in targets
                    if t.get("state", "healthy") != "healthy"
                }
                backend.target_groups[group].cks_health = health
            elbv2.call(
                "CreateListener",
                {
                    "LoadBalancerArn": arn,
                    "Protocol": protocol,
                    "Port": port,
                    "DefaultActions.member.1.Type": "forward",
                    "DefaultActions.member.1.TargetGroupArn": group,
                },
                account=lb.get("account"),
            )

    def seed_endpoint_services(
        self,
        ec2: Ec2Seeder,
        specs: list[dict[str, Any]],
        refs: dict[str, str],
        lbs: dict[str, dict[str, Any]],
        account: str,
        region: str,
    ) -> dict[str, dict[str, str]]:
        """VPC endpoint services, made with moto's CreateVpcEndpointServiceConfiguration and
        ModifyVpcEndpointServicePermissions, then set in moto's objects where no API can:

        ``[{"ref", "load_balancers": [refs] (network ones become NetworkLoadBalancerArns, gateway
        ones GatewayLoadBalancerArns), "acceptance_required": false, "private_dns_name": str,
        "private_dns_state": "verified" (default) | "pendingVerification" | "failed",
        "principals": [str] (AllowedPrincipals), "owner": account (default: the caller's; another
        account's service is invisible to DescribeVpcEndpointServiceConfigurations and listed by
        DescribeVpcEndpointServices to the accounts its principals allow -- its load balancers
        must be made in that account), "service_type": "Interface" | "Gateway" (overrides what
        moto derives from the load balancers), "state": ServiceState (default Available),
        "network_load_balancers": [refs] (sets NetworkLoadBalancerArns to these as they are, with
        no GatewayLoadBalancerArns and the type Interface: e.g. an application load balancer,
        which AWS's API refuses and moto files as a Gateway service)}]``

        Answers ``{ref: {"id", "name", "owner"}}``; ``refs[ref]`` is the service name and
        ``refs[ref + ".id"]`` its id.
        """
        from moto.ec2.models import ec2_backends

        out: dict[str, dict[str, str]] = {}
        for svc in specs:
            ref = svc.get("ref")
            if not ref:
                raise ControlError(f"an endpoint service needs a ref: {svc!r}")
            owner = str(svc.get("owner") or account)
            params: dict[str, Any] = {"AcceptanceRequired": bool(svc.get("acceptance_required", False))}
            if svc.get("private_dns_name"):
                params["PrivateDnsName"] = svc["private_dns_name"]
            nlb = gwlb = 0
            # moto needs a load balancer to make the service; "network_load_balancers" alone uses those.
            for lb_ref in svc.get("load_balancers") or svc.get("network_load_balancers") or []:
                lb = lbs.get(lb_ref)
                if lb is None:
                    raise ControlError(f"endpoint service {ref}: no load balancer {lb_ref!r} in load_balancers")
                if (lb["account"] or account) != owner:
                    raise ControlError(f"endpoint service {ref} (account {owner}): load balancer {lb_ref} is in {lb['account'] or account}")
                if lb["type"] == "gateway":
                    gwlb += 1
                    params[f"GatewayLoadBalancerArn.{gwlb}"] = lb["arn"]
                else:
                    nlb += 1
                    params[f"NetworkLoadBalancerArn.{nlb}"] = lb["arn"]
            root = ec2.call("CreateVpcEndpointServiceConfiguration", params, account=owner)
            sid = text_of(root, "serviceConfiguration/serviceId")
            name = text_of(root, "serviceConfiguration/serviceName")
            principals = svc.get("principals") or []
            if principals:
                perms = {f"AddAllowedPrincipals.{i}": p for i, p in enumerate(principals, 1)}
                ec2.call("ModifyVpcEndpointServicePermissions", {"ServiceId": sid, **perms}, account=owner)
            config = ec2_backends[owner][region].configurations[sid]
            config.availability_zones = sorted(set(config.availability_zones))
            state = svc.get("private_dns_state", "verified")
            if state not in PRIVATE_DNS_STATES:
                raise ControlError(f"private_dns_state {state!r} is not one of {PRIVATE_DNS_STATES}")
            config.cks_private_dns_state = state
            if svc.get("network_load_balancers") is not None:
                config.network_load_balancer_arns = [refs.get(r, r) for r in svc["network_load_balancers"]]
                config.gateway_load_balancer_arns = []
                config._service_type_name = "Interface"
            if svc.get("service_type"):
                config._service_type_name = svc["service_type"]
            if svc.get("state"):
                config.service_state = svc["state"]
            refs[ref] = name
            refs[ref + ".id"] = sid
            out[ref] = {"id": sid, "name": name, "owner": owner}
        return out

    def seed_ec2(self, ec2: Ec2Seeder, spec: dict[str, Any], refs: dict[str, str]) -> dict[str, Any]:
        """EC2 resources, made through moto's own Query API:

        * ``vpcs``: ``[{"ref", "cidr", "account"}]`` -- ``account``: made in another account
        * ``subnets``: ``[{"ref", "vpc", "cidr", "az", "free": N, "deleted": bool, "account"}]`` -- ``free``
          fills the subnet with network interfaces (after the HSMs have theirs) until exactly N
          addresses are free (a /28 has 11); ``deleted`` removes it once everything is built
        * ``security_groups``: ``[{"ref", "vpc", "name", "description", "ingress": [rule],
          "egress": [rule], "keep_default_egress": bool, "deleted": bool}]`` with rule
          ``{"protocol": "tcp"|"-1"|..., "from", "to", "peer": "self"|sg ref|CIDR}``
        * ``internet_gateways``: ``[{"ref", "vpc"}]`` (created and attached)
        * ``route_tables``: ``[{"ref", "vpc", "main": bool, "routes": [{"cidr", "gateway"}],
          "subnets": [refs]}]`` -- ``main`` adds the routes to the VPC's main table
        * ``network_acls``: ``[{"ref", "vpc", "default": bool, "entries": [{"rule", "egress",
          "protocol", "from", "to", "cidr", "action"}], "subnets": [refs]}]`` -- ``default``
          adds the entries to the VPC's default ACL
        * ``calls``: ``[{"Action": ..., "Param": "${ref}"}]`` raw EC2 calls, refs substituted
        """

        def r(v: str) -> str:
            return refs.get(v, v)

        def need_ref(item: dict[str, Any], kind: str) -> str:
            ref = item.get("ref")
            if not ref:
                raise ControlError(f"{kind} needs a ref: {item!r}")
            return ref

        for v in spec.get("vpcs") or []:
            root = ec2.call("CreateVpc", {"CidrBlock": v.get("cidr", "10.0.0.0/16")}, account=v.get("account"))
            refs[need_ref(v, "vpc")] = text_of(root, "vpc/vpcId")
        subnets: dict[str, dict[str, Any]] = {}
        for s in spec.get("subnets") or []:
            root = ec2.call(
                "CreateSubnet",
                {"VpcId": r(s["vpc"]), "CidrBlock": s["cidr"], "AvailabilityZone": s.get("az")},
                account=s.get("account"),
            )
            sid = text_of(root, "subnet/subnetId")
            refs[need_ref(s, "subnet")] = sid
            subnets[sid] = s
        deleted_subnets = {sid for sid, s in subnets.items() if s.get("deleted")}
        groups: dict[str, dict[str, Any]] = {}
        for g in spec.get("security_groups") or []:
            ref = need_ref(g, "security group")
            root = ec2.call(
                "CreateSecurityGroup",
                {
                    "GroupName": g.get("name", f"cks-live-{ref}"),
                    "GroupDescription": g.get("description", "Cluster HSM security group"),
                    "VpcId": r(g["vpc"]),
                },
            )
            refs[ref] = text_of(root, "groupId")
            groups[refs[ref]] = g
        for gid, g in groups.items():
            if not g.get("keep_default_egress", False):
                ec2.call(
                    "RevokeSecurityGroupEgress",
                    {"GroupId": gid, "IpPermissions.1.IpProtocol": "-1", "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0"},
                )
            for direction, action in (("ingress", "AuthorizeSecurityGroupIngress"), ("egress", "AuthorizeSecurityGroupEgress")):
                rules = g.get(direction) or []
                if not rules:
                    continue
                params: dict[str, Any] = {"GroupId": gid}
                for i, rule in enumerate(rules, 1):
                    p = f"IpPermissions.{i}."
                    params[p + "IpProtocol"] = rule.get("protocol", "tcp")
                    if rule.get("from") is not None:
                        params[p + "FromPort"] = rule["from"]
                    if rule.get("to") is not None:
                        params[p + "ToPort"] = rule["to"]
                    peer = rule.get("peer", "self")
                    if peer == "self":
                        params[p + "Groups.1.GroupId"] = gid
                    elif "/" in peer:
                        params[p + "IpRanges.1.CidrIp"] = peer
                    else:
                        params[p + "Groups.1.GroupId"] = r(peer)
                ec2.call(action, params)
        deleted_groups = {gid for gid, g in groups.items() if g.get("deleted")}
        for gw in spec.get("internet_gateways") or []:
            root = ec2.call("CreateInternetGateway")
            igw = text_of(root, "internetGateway/internetGatewayId")
            refs[need_ref(gw, "internet gateway")] = igw
            ec2.call("AttachInternetGateway", {"InternetGatewayId": igw, "VpcId": r(gw["vpc"])})
        for t in spec.get("route_tables") or []:
            vpc = r(t["vpc"])
            if t.get("main"):
                root = ec2.call(
                    "DescribeRouteTables",
                    {"Filter.1.Name": "vpc-id", "Filter.1.Value.1": vpc, "Filter.2.Name": "association.main", "Filter.2.Value.1": "true"},
                )
                rtb = text_of(root, "routeTableSet/item/routeTableId")
            else:
                rtb = text_of(ec2.call("CreateRouteTable", {"VpcId": vpc}), "routeTable/routeTableId")
            if t.get("ref"):
                refs[t["ref"]] = rtb
            for route in t.get("routes") or []:
                ec2.call(
                    "CreateRoute",
                    {"RouteTableId": rtb, "DestinationCidrBlock": route.get("cidr", "0.0.0.0/0"), "GatewayId": r(route["gateway"])},
                )
            for s in t.get("subnets") or []:
                ec2.call("AssociateRouteTable", {"RouteTableId": rtb, "SubnetId": r(s)})
        for a in spec.get("network_acls") or []:
            vpc = r(a["vpc"])
            if a.get("default"):
                root = ec2.call(
                    "DescribeNetworkAcls",
                    {"Filter.1.Name": "vpc-id", "Filter.1.Value.1": vpc, "Filter.2.Name": "default", "Filter.2.Value.1": "true"},
                )
                acl = text_of(root, "networkAclSet/item/networkAclId")
            else:
                acl = text_of(ec2.call("CreateNetworkAcl", {"VpcId": vpc}), "networkAcl/networkAclId")
            if a.get("ref"):
                refs[a["ref"]] = acl
            for e in a.get("entries") or []:
                params = {
                    "NetworkAclId": acl,
                    "RuleNumber": e["rule"],
                    "Protocol": {"tcp": "6", "udp": "17", "all": "-1"}.get(str(e.get("protocol", "tcp")), str(e.get("protocol", "6"))),
                    "RuleAction": e.get("action", "allow"),
                    "Egress": bool(e.get("egress", False)),
                    "CidrBlock": e.get("cidr", "0.0.0.0/0"),
                }
                if e.get("from") is not None:
                    params["PortRange.From"] = e["from"]
                    params["PortRange.To"] = e.get("to", e["from"])
                ec2.call("CreateNetworkAclEntry", params)
            for s in a.get("subnets") or []:
                sid = r(s)
                root = ec2.call("DescribeNetworkAcls", {"Filter.1.Name": "association.subnet-id", "Filter.1.Value.1": sid})
                assoc = None
                for item in root.iter("item"):
                    if item.findtext("subnetId") == sid and item.findtext("networkAclAssociationId"):
                        assoc = item.findtext("networkAclAssociationId")
                if assoc is None:
                    raise ControlError(f"no network ACL association found for {sid}")
                ec2.call("ReplaceNetworkAclAssociation", {"AssociationId": assoc, "NetworkAclId": acl})
        for call in spec.get("calls") or []:
            params = {k: substitute(v, refs) for k, v in call.items() if k != "Action"}
            ec2.call(call["Action"], params)

        def finish() -> None:
            # After the HSMs have their interfaces: fill subnets to the free count asked for,
            # then delete what the scenario wants deleted.
            for sid, s in subnets.items():
                want = s.get("free")
                if want is None or sid in deleted_subnets:
                    continue
                root = ec2.call("DescribeSubnets", {"SubnetId.1": sid}, account=s.get("account"))
                have = int(text_of(root, "subnetSet/item/availableIpAddressCount"))
                if want > have:
                    raise ControlError(f"subnet {s.get('ref')} has only {have} free addresses, {want} asked")
                for _ in range(have - want):
                    ec2.call("CreateNetworkInterface", {"SubnetId": sid, "Description": "cks-live filler"}, account=s.get("account"))
                root = ec2.call("DescribeSubnets", {"SubnetId.1": sid}, account=s.get("account"))
                got = int(text_of(root, "subnetSet/item/availableIpAddressCount"))
                if got != want:
                    raise ControlError(f"subnet {s.get('ref')}: {got} free addresses after filling, {want} asked")
            for sid in deleted_subnets:
                ec2.call("DeleteSubnet", {"SubnetId": sid}, account=subnets[sid].get("account"))
            for gid in deleted_groups:
                ec2.call("DeleteSecurityGroup", {"GroupId": gid})

        return {"deleted_subnets": deleted_subnets, "deleted_groups": deleted_groups, "finish": finish}

    def make_cluster(
        self,
        spec: dict[str, Any],
        ec2: Ec2Seeder,
        refs: dict[str, str],
        deleted_subnets: set[str],
        deleted_groups: set[str],
    ) -> dict[str, Any]:
        """A cluster as DescribeClusters returns it.

        ``{"id", "state", "state_message", "hsm_type", "mode", "vpc", "subnets": {az: subnet},
        "security_group", "hsms": [{"az", "state", "state_message", "subnet", "id", "eni": bool}],
        "certificate" (PEM) | "certificate_file" (fixture name) | null, "extra": {...}, "omit": [...]}``

        Every HSM gets a real network interface in its subnet (unless the subnet is to be
        deleted or ``"eni": false``), so the subnet's free address count is what AWS would show.
        """

        def r(v: Any) -> Any:
            return refs.get(v, v) if isinstance(v, str) else v

        cluster_id = spec.get("id") or random_id("cluster-", 11)
        state = spec.get("state", "ACTIVE")
        hsm_type = spec.get("hsm_type", "hsm2m.medium")
        mapping = {az: r(s) for az, s in (spec.get("subnets") or {}).items()}
        group = r(spec.get("security_group"))
        vpc = r(spec.get("vpc"))
        hsms = []
        for h in spec.get("hsms") or []:
            az = h.get("az")
            subnet = r(h.get("subnet")) or mapping.get(az)
            hsm: dict[str, Any] = {
                "AvailabilityZone": az,
                "ClusterId": cluster_id,
                "SubnetId": subnet,
                "HsmId": h.get("id") or random_id("hsm-", 11),
                "HsmType": hsm_type,
                "State": h.get("state", "ACTIVE"),
            }
            if h.get("state_message"):
                hsm["StateMessage"] = h["state_message"]
            if subnet and h.get("eni", True) and subnet not in deleted_subnets and subnet.startswith("subnet-"):
                params = {"SubnetId": subnet, "Description": f"CloudHSM ENI for HSM {hsm['HsmId']}"}
                if group and group not in deleted_groups and group.startswith("sg-"):
                    params["SecurityGroupId.1"] = group
                root = ec2.call("CreateNetworkInterface", params)
                hsm["EniId"] = text_of(root, "networkInterface/networkInterfaceId")
                hsm["EniIp"] = text_of(root, "networkInterface/privateIpAddress")
            elif h.get("eni", True):
                hsm["EniId"] = random_id("eni-", 17, "0123456789abcdef")
                hsm["EniIp"] = f"10.0.{random.randint(0, 255)}.{random.randint(4, 250)}"
            hsms.append(hsm)

        if "certificate" in spec:
            cluster_cert = spec["certificate"]
        elif "certificate_file" in spec:
            cluster_cert = fixture(spec["certificate_file"])
        elif state not in ("CREATE_IN_PROGRESS", "UNINITIALIZED"):
            cluster_cert = fixture(DEFAULT_CLUSTER_CERT)
        else:
            cluster_cert = None
        certificates: dict[str, Any] = {}
        if state != "CREATE_IN_PROGRESS" or cluster_cert is not None:
            certificates = {
                "ClusterCsr": self.pki.csr(cluster_id),
                "HsmCertificate": self.pki.hsm,
                "AwsHardwareCertificate": self.pki.aws_hardware,
                "ManufacturerHardwareCertificate": self.pki.manufacturer,
            }
            if cluster_cert is not None:
                certificates["ClusterCertificate"] = cluster_cert

        created = spec.get("created", time.time() - 86400 * 30)
        data: dict[str, Any] = {
            "BackupPolicy": "DEFAULT",
            "BackupRetentionPolicy": {"Type": "DAYS", "Value": "90"},
            "ClusterId": cluster_id,
            "CreateTimestamp": round(float(created), 3),
            "Hsms": hsms,
            "HsmType": hsm_type,
            "State": state,
            "SubnetMapping": mapping,
            "NetworkType": "IPV4",
            "TagList": [],
        }
        if spec.get("mode", "FIPS") is not None:
            data["Mode"] = spec.get("mode", "FIPS")
        if group:
            data["SecurityGroup"] = group
        if vpc:
            data["VpcId"] = vpc
        if spec.get("state_message"):
            data["StateMessage"] = spec["state_message"]
        if certificates:
            data["Certificates"] = certificates
        if spec.get("source_backup_id"):
            data["SourceBackupId"] = spec["source_backup_id"]
        data.update(spec.get("extra") or {})
        for key in spec.get("omit") or []:
            data.pop(key, None)
        return data

    def make_key(self, spec: dict[str, Any], account: str, region: str) -> dict[str, Any]:
        """A KMS key as DescribeKey returns it (ListKeys lists its id and ARN).

        ``{"id", "store" (CustomKeyStoreId), "xks_key_id", "state" (Enabled), "manager"
        (CUSTOMER), "origin" (EXTERNAL_KEY_STORE with xks_key_id, AWS_CLOUDHSM with a store,
        else AWS_KMS), "deny": bool (DescribeKey answers AccessDeniedException, as a key policy
        that does not allow the caller makes it)}``
        """
        key_id = spec.get("id") or str(uuid.uuid4())
        store = spec.get("store")
        origin = spec.get("origin") or ("EXTERNAL_KEY_STORE" if spec.get("xks_key_id") else ("AWS_CLOUDHSM" if store else "AWS_KMS"))
        data: dict[str, Any] = {
            "AWSAccountId": account,
            "KeyId": key_id,
            "Arn": f"arn:aws:kms:{region}:{account}:key/{key_id}",
            "CreationDate": round(time.time() - 86400, 3),
            "Enabled": spec.get("state", "Enabled") == "Enabled",
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeyState": spec.get("state", "Enabled"),
            "Origin": origin,
            "KeyManager": spec.get("manager", "CUSTOMER"),
            "KeySpec": "SYMMETRIC_DEFAULT",
        }
        if store:
            data["CustomKeyStoreId"] = store
        if spec.get("xks_key_id"):
            data["XksKeyConfiguration"] = {"Id": spec["xks_key_id"]}
        return data

    def make_key_store(self, spec: dict[str, Any], account: str = ACCOUNT_ID) -> dict[str, Any]:
        """A key store as DescribeCustomKeyStores returns it.

        ``{"id", "name", "type": "AWS_CLOUDHSM" (default) | "EXTERNAL_KEY_STORE" | null (omitted,
        as in old responses), "cluster", "trust_anchor" (PEM) | "trust_anchor_file", "state"
        (ConnectionState, default CONNECTED), "error_code" (ConnectionErrorCode), "connectivity"
        (PUBLIC_ENDPOINT | VPC_ENDPOINT_SERVICE), "uri_endpoint", "uri_path",
        "vpc_endpoint_service_name", "extra": {...}}``; ``"connect"`` and ``"disconnect"`` say how
        it answers ConnectCustomKeyStore and DisconnectCustomKeyStore (see ``StoreLifecycle``).
        """
        store_id = spec.get("id") or random_id("cks-", 17, "0123456789abcdef")
        kind = spec.get("type", "AWS_CLOUDHSM")
        data: dict[str, Any] = {
            "CustomKeyStoreId": store_id,
            "CustomKeyStoreName": spec.get("name", store_id),
            "ConnectionState": spec.get("state", "CONNECTED"),
            "CreationDate": round(float(spec.get("created", time.time() - 86400 * 7)), 3),
        }
        if kind is not None:
            data["CustomKeyStoreType"] = kind
        if spec.get("error_code"):
            data["ConnectionErrorCode"] = spec["error_code"]
        if kind in (None, "AWS_CLOUDHSM"):
            data["CloudHsmClusterId"] = spec.get("cluster") or random_id("cluster-", 11)
            if "trust_anchor" in spec:
                data["TrustAnchorCertificate"] = spec["trust_anchor"]
            else:
                data["TrustAnchorCertificate"] = fixture(spec.get("trust_anchor_file", DEFAULT_TRUST_ANCHOR))
        else:
            connectivity = spec.get("connectivity", "PUBLIC_ENDPOINT")
            proxy: dict[str, Any] = {
                "Connectivity": connectivity,
                "AccessKeyId": spec.get("access_key_id", "AKIA" + random_id("", 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")),
                "UriEndpoint": spec.get("uri_endpoint", "https://xks.example.com"),
                "UriPath": spec.get("uri_path", "/example/kms/xks/v1"),
            }
            if connectivity == "VPC_ENDPOINT_SERVICE":
                proxy["VpcEndpointServiceName"] = spec.get(
                    "vpc_endpoint_service_name", "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0"
                )
                proxy["VpcEndpointServiceOwner"] = spec.get("vpc_endpoint_service_owner", account)
            data["XksProxyConfiguration"] = proxy
        data.update(spec.get("extra") or {})
        return data


def substitute(v: Any, refs: dict[str, str]) -> Any:
    if isinstance(v, str):
        for k, real in refs.items():
            v = v.replace("${" + k + "}", real)
    return v


def encode_token(offset: int, kind: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": kind, "o": offset}).encode()).decode()


def decode_token(token: str | None, kind: str) -> int:
    if token is None:
        return 0
    try:
        d = json.loads(base64.urlsafe_b64decode(token.encode()))
        if d.get("k") != kind or not isinstance(d.get("o"), int) or d["o"] < 0:
            raise ValueError
        return d["o"]
    except Exception as e:
        raise ValueError(str(e)) from e


def plain_json(payload: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(payload, indent=1).encode(), [("Content-Type", "application/json")])


def status_text(code: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


class Passthrough:
    """Hands the request to moto; a moto 500 (an unimplemented call, answered as an HTML page
    the SDK would retry for seconds) becomes a 501 in the service's error shape."""

    def __init__(self, moto: Callable, environ: dict[str, Any], action: str, protocol: str) -> None:
        self.moto, self.environ, self.action, self.protocol = moto, environ, action, protocol

    def result(self) -> tuple[str, list[tuple[str, str]], bytes]:
        """moto's answer: (status line, headers without Content-Length, body)."""
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        chunks = self.moto(self.environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status = captured.get("status", "500 Internal Server Error")
        headers = [(k, v) for k, v in captured.get("headers", []) if k.lower() != "content-length"]
        if status.startswith("500"):
            log.warning("moto failed on %s: %s", self.action, body[:300])
            message = (
                f"moto does not implement {self.action} (or failed on it); "
                "extend tests/live/server.py to serve it"
            )
            resp = error_response(self.protocol, "NotImplemented", message, 501)
            status, headers, body = f"501 {status_text(501)}", resp.headers, resp.body
        return status, headers, body

    def run(self, start_response: Callable) -> Iterable[bytes]:
        status, headers, body = self.result()
        start_response(status, headers + [("Content-Length", str(len(body)))])
        return [body]


RESET_MARK = "connection reset by a fault of tests/live/server.py"


class Truncated:
    """An answer cut off mid-body: the status line and headers (announcing the whole body's
    Content-Length) and the first ``after`` bytes of the body (default: half), then the TCP
    connection is reset: SO_LINGER 0 and the descriptor closed at once, so the client gets a
    RST (not a FIN) while it waits for the rest of the body."""

    def __init__(self, inner: Any, after: int | None) -> None:
        self.inner, self.after = inner, after

    def run(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if isinstance(self.inner, Passthrough):
            status, headers, body = self.inner.result()
        else:
            status = f"{self.inner.status} {status_text(self.inner.status)}"
            headers, body = self.inner.headers, self.inner.body
        cut = len(body) // 2 if self.after is None else self.after
        cut = max(0, min(cut, len(body) - 1))
        start_response(status, headers + [("Content-Length", str(len(body)))])
        sock = environ.get("werkzeug.socket")

        def parts() -> Iterable[bytes]:
            yield body[:cut]
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    # Close the descriptor now (RST), not after werkzeug's shutdown (FIN).
                    # Detached, the socket object has no descriptor left: werkzeug's later
                    # calls on it fail instead of touching a descriptor reused meanwhile.
                    os.close(sock.detach())
                except OSError:
                    pass
            raise ConnectionResetError(RESET_MARK)

        return parts()


# ----------------------------------------------------------------------------------------------
# process


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free port)")
    parser.add_argument("--verbose", action="store_true", help="log every call on stderr")
    parser.add_argument("--no-stdin", action="store_true", help="do not exit when stdin closes")
    parser.add_argument("--no-warmup", action="store_true", help="skip loading moto's EC2 backend before printing the port")
    args = parser.parse_args()

    logging.basicConfig(stream=sys.stderr, level=logging.INFO if args.verbose else logging.WARNING, format="server.py: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # A "reset" fault closes the socket under werkzeug, which then logs the request as failed.
    logging.getLogger("werkzeug").addFilter(lambda record: RESET_MARK not in record.getMessage())

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class Handler(MotoRequestHandler):
        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            if args.verbose:
                super().log_request(code, size)

    moto_app = DomainDispatcherApplication(create_backend_app)
    state = State()
    app = CksApp(moto_app, state, Pki(), args.verbose)

    # Warm up: moto loads EC2 lazily (~2 s on the first call).
    if not args.no_warmup:
        Ec2Seeder(moto_app, DEFAULT_REGION).call("DescribeVpcs")

    # Loopback only: the harness answers anything with dummy credentials.
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=Handler)
    app.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()

    def stop(*_: Any) -> None:
        # Requests held by a "hang" fault must not keep the process alive.
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    print(server.server_port, flush=True)
    if args.no_stdin:
        threading.Event().wait()
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except (OSError, ValueError):
        pass
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
