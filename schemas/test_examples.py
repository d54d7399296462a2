"""Validate the Mnemo wire-protocol schemas and their examples.

Run with:  python3 -m pytest -q schemas/

Uses only jsonschema, referencing and the standard library.
"""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HERE = Path(__file__).resolve().parent
BASE = "https://mnemo.local/schemas/"

METHODS = [
    "session.hello",
    "admin.health", "admin.stats", "admin.export", "admin.import", "admin.snapshot", "admin.check",
    "audit.query",
    "wm.set", "wm.get", "wm.del", "wm.list", "wm.expire", "wm.clear", "wm.txn",
    "claim.acquire", "claim.renew", "claim.release", "claim.list",
    "result.put", "task.transition", "task.get",
    "inbox.post", "inbox.read", "inbox.ack",
    "watch.subscribe", "watch.cancel",
    "ep.append", "ep.query", "ep.search", "ep.summarize", "ep.prune", "ep.pin",
    "sem.upsert", "sem.search", "sem.get", "sem.history", "sem.delete",
    "barrier.arrive", "barrier.get", "barrier.list", "vote.open", "vote.cast", "vote.get",
    "leader.campaign", "leader.get", "leader.resign",
]
NOTIFICATIONS = ["event"]
EXTRA_EXAMPLES = ["errors", "framing"]
# Methods whose examples must include at least two invalid-params cases.
STRICT = [m for m in METHODS if m.startswith(("wm.", "claim.")) or m == "session.hello"]
APP_ERRORS = [
    "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "CLAIMED", "FENCED",
    "IDEMPOTENCY_MISMATCH", "INVALID_TRANSITION", "DIMENSION_MISMATCH",
    "LIMIT_EXCEEDED", "UNAVAILABLE", "SHUTTING_DOWN", "CORRUPT", "BROKEN",
]

from schema_support import FORMAT_CHECKER  # noqa: E402


# --------------------------------------------------------------------- loading
def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


SCHEMA_FILES = sorted([HERE / "common.json", *(HERE / "methods").glob("*.json")])
SCHEMAS = {p.relative_to(HERE).as_posix(): _load(p) for p in SCHEMA_FILES}
REGISTRY = Registry().with_resources(
    (s["$id"], Resource.from_contents(s, default_specification=DRAFT202012))
    for s in SCHEMAS.values()
)
COMMON = SCHEMAS["common.json"]
METHOD_SCHEMAS = {
    Path(rel).stem: s for rel, s in SCHEMAS.items() if rel.startswith("methods/")
}
EXAMPLES = {p.stem: _load(p) for p in sorted((HERE / "examples").glob("*.json"))}


def validator(schema_id, pointer=""):
    """A validator for the subschema at schema_id#pointer, resolving through REGISTRY."""
    return Draft202012Validator(
        {"$ref": f"{schema_id}#{pointer}"},
        registry=REGISTRY,
        format_checker=FORMAT_CHECKER,
    )


def method_validator(method, part):
    return validator(f"{BASE}methods/{method}.json", f"/$defs/{part}")


def common_validator(name):
    return validator(f"{BASE}common.json", f"/$defs/{name}")


def assert_valid(v, instance):
    errors = sorted(v.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def assert_invalid(v, instance):
    assert not v.is_valid(instance), f"expected rejection of {json.dumps(instance)[:300]}"


# ---------------------------------------------------------- schema-level tests
@pytest.mark.parametrize("rel", sorted(SCHEMAS))
def test_schema_is_valid_2020_12(rel):
    schema = SCHEMAS[rel]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == BASE + rel
    assert isinstance(schema.get("description"), str) and schema["description"]


@pytest.mark.parametrize("rel", sorted(SCHEMAS))
def test_all_refs_resolve(rel):
    """Every $ref in every file resolves (catches typos in unused branches too)."""
    resolver = REGISTRY.resolver(base_uri=SCHEMAS[rel]["$id"])

    def walk(node, resolver):
        if isinstance(node, dict):
            if "$ref" in node:
                resolver.lookup(node["$ref"])
            for value in node.values():
                walk(value, resolver)
        elif isinstance(node, list):
            for value in node:
                walk(value, resolver)

    walk(SCHEMAS[rel], resolver)


def test_method_and_example_files_match_contract():
    assert sorted(METHOD_SCHEMAS) == sorted(METHODS + NOTIFICATIONS)
    assert sorted(EXAMPLES) == sorted(METHODS + NOTIFICATIONS + EXTRA_EXAMPLES)
    extra = {
        p.relative_to(HERE).as_posix()
        for p in HERE.rglob("*.json")
    } - set(SCHEMAS) - {f"examples/{n}.json" for n in EXAMPLES}
    assert not extra, f"unexpected files: {sorted(extra)}"


@pytest.mark.parametrize("method", METHODS + NOTIFICATIONS)
def test_method_schema_shape(method):
    schema = METHOD_SCHEMAS[method]
    assert schema["title"] == method
    assert schema["$id"] == f"{BASE}methods/{method}.json"
    assert "params" in schema["$defs"] and "result" in schema["$defs"]
    if method in METHODS:
        params = schema["$defs"]["params"]
        assert params["type"] == "object"
        assert params["additionalProperties"] is False, "params must reject unknown fields"


@pytest.mark.parametrize("method", METHODS + NOTIFICATIONS)
def test_example_counts(method):
    ex = EXAMPLES[method]
    assert set(ex) == {"examples", "invalid_params"}
    assert len(ex["examples"]) >= 1
    assert len(ex["invalid_params"]) >= (2 if method in STRICT else 1)
    names = [e["name"] for e in ex["examples"]] + [e["name"] for e in ex["invalid_params"]]
    assert len(names) == len(set(names)), "example names must be unique per file"


# ------------------------------------------------------------- example tests
def _cases(kind):
    out = []
    for method in METHODS + NOTIFICATIONS:
        for e in EXAMPLES.get(method, {}).get(kind, []):
            out.append(pytest.param(method, e, id=f"{method}:{e['name']}"))
    return out


@pytest.mark.parametrize("method,example", _cases("examples"))
def test_valid_example(method, example):
    assert_valid(method_validator(method, "params"), example["params"])
    if method in NOTIFICATIONS:
        assert "result" not in example
        assert_valid(
            validator(f"{BASE}methods/{method}.json"),
            {"jsonrpc": "2.0", "method": method, "params": example["params"]},
        )
    else:
        assert_valid(method_validator(method, "result"), example["result"])
        # The method file's root validates a whole request line.
        assert_valid(
            validator(f"{BASE}methods/{method}.json"),
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": example["params"]},
        )


@pytest.mark.parametrize("method,example", _cases("invalid_params"))
def test_invalid_params_rejected(method, example):
    assert_invalid(method_validator(method, "params"), example["params"])


# --------------------------------------------------------------- errors.json
@pytest.mark.parametrize(
    "example", [pytest.param(e, id=e["name"]) for e in EXAMPLES["errors"]["errors"]]
)
def test_error_example(example):
    assert_valid(common_validator("error_response"), example["response"])
    assert_valid(common_validator("error"), example["response"]["error"])
    if "method" in example:
        assert isinstance(example["method"], str)


@pytest.mark.parametrize(
    "example", [pytest.param(e, id=e["name"]) for e in EXAMPLES["errors"]["invalid"]]
)
def test_invalid_error_rejected(example):
    assert_invalid(common_validator("error_response"), example["response"])


def test_errors_cover_every_code():
    responses = [e["response"]["error"] for e in EXAMPLES["errors"]["errors"]]
    codes = {e["code"] for e in responses}
    assert codes == {-32700, -32600, -32601, -32602, -32603, -32000}
    names = {e["data"]["code"] for e in responses if e["code"] == -32000}
    assert names == set(APP_ERRORS)
    assert set(COMMON["$defs"]["error_name"]["enum"]) == set(APP_ERRORS)


# -------------------------------------------------------------- framing.json
def _check_pair(request, response):
    """Validate one request (and its response, if any) against the method schemas."""
    method = request["method"]
    if method in METHODS:
        assert_valid(method_validator(method, "params"), request.get("params", {}))
        assert_valid(validator(f"{BASE}methods/{method}.json"), request)
    if response is None:
        return
    assert response["id"] == request["id"]
    if method not in METHODS:
        assert response["error"]["code"] == -32601
    elif "result" in response:
        assert_valid(method_validator(method, "result"), response["result"])


@pytest.mark.parametrize(
    "line", [pytest.param(e, id=e["name"]) for e in EXAMPLES["framing"]["lines"]]
)
def test_framing_line(line):
    kind = line["kind"]
    for part in ("request", "response", "message"):
        if line.get(part) is not None:
            text = json.dumps(line[part], separators=(",", ":"), ensure_ascii=False)
            assert "\n" not in text  # one message per line
    if kind == "single":
        assert_valid(common_validator("request"), line["request"])
        assert "id" in line["request"]
        assert_valid(common_validator("response"), line["response"])
        _check_pair(line["request"], line["response"])
    elif kind == "batch":
        assert_valid(common_validator("batch_request"), line["request"])
        assert_valid(common_validator("batch_response"), line["response"])
        calls = [r for r in line["request"] if "id" in r]
        by_id = {r["id"]: r for r in line["response"]}
        # One response per call (notifications get none), in request order.
        assert [r["id"] for r in line["response"]] == [c["id"] for c in calls]
        for r in line["request"]:
            _check_pair(r, by_id.get(r.get("id")) if "id" in r else None)
    elif kind == "notification":
        assert_valid(common_validator("request"), line["request"])
        assert "id" not in line["request"]
        assert line["response"] is None
        _check_pair(line["request"], None)
    elif kind == "server_notification":
        message = line["message"]
        assert_valid(common_validator("notification"), message)
        assert message["method"] in NOTIFICATIONS
        assert_valid(validator(f"{BASE}methods/{message['method']}.json"), message)
    elif kind == "raw":
        assert "\n" not in line["line"]
        try:
            parsed = json.loads(line["line"])
        except json.JSONDecodeError:
            assert line["response"]["error"]["code"] == -32700
        else:  # JSON, but not a usable request or batch
            assert not common_validator("request").is_valid(parsed)
            assert not common_validator("batch_request").is_valid(parsed)
        assert_valid(common_validator("error_response"), line["response"])
    else:
        pytest.fail(f"unknown framing kind {kind!r}")


def test_framing_covers_kinds():
    kinds = {line["kind"] for line in EXAMPLES["framing"]["lines"]}
    assert {"single", "batch", "notification", "server_notification", "raw"} <= kinds


# ---------------------------------------------------------------- edge cases
# Boundaries and result shapes the examples files do not show (they hold only
# params-level invalid cases): (method, part, instance, expected validity).
_PROV = {"agent": "a", "uid": 1, "pid": 1, "at": "2026-11-22T00:14:52.123Z", "rev": 3}
_SEM = {
    "id": "x", "ns": "a", "text": "t", "data": None, "tags": [], "confidence": None,
    "superseded_by": None, "expires_at": None, "valid_from": "2026-11-22T00:14:52.123Z", "valid_to": None,
    "current": True, "provenance": _PROV,
}
EDGE_CASES = [
    ("16 segments", "wm.set", "params", {"ns": "/".join(["a"] * 16), "key": "k", "value": 1}, True),
    ("512-byte namespace", "wm.set", "params", {"ns": "n" * 512, "key": "k", "value": 1}, True),
    ("513-byte namespace", "wm.set", "params", {"ns": "n" * 513, "key": "k", "value": 1}, False),
    ("1024-char key", "wm.set", "params", {"ns": "a", "key": "k" * 1024, "value": 1}, True),
    ("ttl_ms at maximum", "wm.set", "params", {"ns": "a", "key": "k", "value": 1, "ttl_ms": 315360000000}, True),
    ("value may be null", "wm.set", "params", {"ns": "a", "key": "k", "value": None}, True),
    ("64-char agent", "session.hello", "params", {"agent": "a" * 64}, True),
    ("128-char client", "session.hello", "params", {"agent": "a", "client": "c" * 128}, True),
    ("wm.txn 128 ops", "wm.txn", "params",
     {"ops": [{"op": "del", "ns": "a", "key": f"k{i}"} for i in range(128)]}, True),
    ("wm.txn 129 ops", "wm.txn", "params",
     {"ops": [{"op": "del", "ns": "a", "key": f"k{i}"} for i in range(129)]}, False),
    ("vector of 4096", "sem.upsert", "params", {"ns": "a", "text": "t", "vector": [0.0] * 4096}, True),
    ("vector of 4097", "sem.upsert", "params", {"ns": "a", "text": "t", "vector": [0.0] * 4097}, False),
    ("vector_b64 only", "sem.search", "params", {"ns": "kb", "vector_b64": "AACAPw=="}, True),
    ("vector_b64 of 3 bytes", "sem.search", "params", {"ns": "kb", "vector_b64": "AACA"}, False),
    ("wm.clear deleted without rev", "wm.clear", "result", {"deleted": 3}, False),
    ("wm.clear nothing with rev", "wm.clear", "result", {"deleted": 0, "rev": 5}, False),
    ("wm.get found without value", "wm.get", "result", {"found": True, "version": 3, "provenance": _PROV}, False),
    ("wm.get not found with value", "wm.get", "result", {"found": False, "value": 1}, False),
    ("wm.del deleted without rev", "wm.del", "result", {"deleted": True}, False),
    ("provenance with unknown member", "wm.get", "result",
     {"found": True, "value": 1, "version": 3, "provenance": {**_PROV, "extra": 1}}, False),
    ("stats may grow", "admin.stats", "result",
     {"uptime_ms": 1, "rev": 0, "connections": {"current": 0, "total": 0, "refused": 0},
      "working": {"keys": 0, "namespaces": 0, "bytes": 0}, "methods": {}, "episodic": {"records": 4}}, True),
    ("hello limit not an integer", "session.hello", "result",
     {"principal": "local", "agent": "a", "grants": [], "server": {"name": "mnemod", "version": "0.1.0", "protocol": 1},
      "peer": {"uid": 0, "gid": 0, "pid": 1},
      "limits": {**{k: 1 for k in [
          "max_line_bytes", "max_line_bytes_before_hello", "max_depth", "max_batch", "max_connections",
          "idle_timeout_ms", "max_key_bytes", "max_value_bytes", "max_txn_ops", "max_list_limit"]}, "x": "y"}}, False),
    ("ep hit needs the whole record", "ep.search", "result", {"hits": [{"id": "x", "score": 1}]}, False),
    ("sem.get never returns the vector", "sem.get", "result", {**_SEM, "found": True, "version": 1, "vector": [1]}, False),
    ("sem.get found", "sem.get", "result", {**_SEM, "found": True, "version": 1}, True),
    ("ep event needs an id", "event", "params", {"watch_id": "w", "rev": 1, "tier": "ep", "kind": "append", "ns": "a"}, False),
]


@pytest.mark.parametrize(
    "method,part,instance,expected",
    [pytest.param(m, p, i, e, id=f"{m}:{n}") for n, m, p, i, e in EDGE_CASES],
)
def test_edge_case(method, part, instance, expected):
    v = method_validator(method, part)
    if expected:
        assert_valid(v, instance)
    else:
        assert_invalid(v, instance)
