"""`mnemo mcp` against outside checkers: the `mcp-conform` conformance suite from PyPI, and
the official `mcp` Python SDK's client calling every tool with arguments built from the
tool's own declared input schema (validated with jsonschema before they are sent)."""
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jsonschema
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

REPO = Path(__file__).resolve().parents[2]
MNEMOD = os.environ.get("MNEMOD_BIN", str(REPO / ".build" / "debug" / "mnemod"))
MNEMO = os.environ.get("MNEMO_BIN", str(Path(MNEMOD).with_name("mnemo")))


@pytest.fixture(scope="module")
def socket_path():
    tmp = tempfile.mkdtemp(prefix="mnemo-mcp-")
    sock = os.path.join(tmp, "m.sock")
    proc = subprocess.Popen([MNEMOD, "--socket", sock, "--data-dir", os.path.join(tmp, "data"), "--log-level", "warning"])
    deadline = time.monotonic() + 30
    while not os.path.exists(sock):
        assert proc.poll() is None, "mnemod exited"
        assert time.monotonic() < deadline, "mnemod did not listen"
        time.sleep(0.05)
    yield sock
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)


def test_mcp_conform_passes(socket_path):
    out = subprocess.run(
        [sys.executable, "-m", "mcp_probe", "server", "--transport", "stdio", "--command",
         f"{MNEMO} mcp --socket {socket_path} --ns conform/t"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "Result: PASS" in out.stdout, out.stdout[-3000:]


# A value of each JSON type for a tool argument, by name where the name says more.
SAMPLES = {
    "ttl_ms": 30_000, "wait_ms": 0, "parties": 1, "k": 3, "limit": 5, "token": 1, "quorum": 1,
    "confidence": 0.5, "choice": "yes", "mode": "hybrid", "dedupe": "report", "on_conflict": "keep_both",
    "valid_from": "2026-01-01T00:00:00.000Z", "valid_to": "2027-01-01T00:00:00.000Z",
    "as_of": "2026-06-01T00:00:00.000Z", "to": "mcp-agent", "type": "note", "ns": "conform/t",
}
BY_TYPE = {"string": "conformance", "integer": 1, "number": 0.5, "boolean": False, "array": ["a"], "object": {}}


# Optional arguments that name another record or a prior state: left out, as a first call would.
OMIT = {"supersedes", "if_version", "fence_token", "token"}


def arguments(schema):
    """Every declared argument, with a sample of its declared type (what a host would send)."""
    args = {}
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        if name in OMIT and name not in required:
            continue
        if name in SAMPLES:
            args[name] = SAMPLES[name]
        else:
            args[name] = BY_TYPE.get(prop.get("type", "string"), "conformance")
    # Arguments that exclude one another: keep the first of each pair, as a host would.
    if "key" in args and "prefix" in args:   # scratchpad_read: a key, or a listing by prefix
        args.pop("prefix")
        args.pop("limit", None)
    return args


def test_every_tool_called_with_its_declared_schema(socket_path):
    async def main():
        params = StdioServerParameters(command=MNEMO, args=["mcp", "--socket", socket_path, "--ns", "conform/t"])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = (await session.list_tools()).tools
                assert len(tools) >= 10
                outcomes = {}
                for tool in tools:
                    jsonschema.Draft202012Validator.check_schema(tool.input_schema)
                    args = arguments(tool.input_schema)
                    jsonschema.validate(args, tool.input_schema)
                    result = await session.call_tool(tool.name, args)
                    # A schema-valid call is answered with a result (never a protocol
                    # error); a refusal is a tool error whose text says why.
                    assert result.content and result.content[0].type == "text", tool.name
                    outcomes[tool.name] = "error: " + result.content[0].text[:80] if result.is_error else "ok"
                return outcomes

    outcomes = asyncio.run(asyncio.wait_for(main(), 120))
    print("OUTCOMES", sorted(outcomes.items()))
    # The ones whose sample arguments make sense on their own succeed.
    for name in ("remember_fact", "recall_facts", "remember_episode", "recall_episodes", "scratchpad_write",
                 "scratchpad_read", "claim_task", "inbox_post", "inbox_read"):
        assert outcomes.get(name) == "ok", outcomes
