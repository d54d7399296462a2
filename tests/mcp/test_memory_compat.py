"""`mnemo mcp --memory-server-compat`: the official MCP memory server's tools, through the
official `mcp` SDK client, on a graph that several bridges share without losing writes (the
original rewrites one JSONL file whole from each process), and `mnemo import --from
mcp-memory` of that server's file."""
import asyncio
import json
import os
import subprocess

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from test_mcp_conformance import MNEMO, socket_path  # noqa: F401 (the shared mnemod fixture)

TOOLS = {"create_entities", "create_relations", "add_observations", "delete_entities", "delete_observations",
         "delete_relations", "read_graph", "search_nodes", "open_nodes"}


async def with_bridges(sock, ns, n, body):
    """Runs ``body(sessions)`` with ``n`` bridges (separate processes) on the same graph."""
    params = StdioServerParameters(command=MNEMO, args=["mcp", "--memory-server-compat", "--socket", sock, "--ns", ns])
    sessions = []

    async def open_one(stack):
        read, write = await stack.enter_async_context(stdio_client(params))
        s = await stack.enter_async_context(ClientSession(read, write))
        await s.initialize()
        return s

    from contextlib import AsyncExitStack
    async with AsyncExitStack() as stack:
        for _ in range(n):
            sessions.append(await open_one(stack))
        return await body(sessions)


async def call(session, tool, args):
    result = await session.call_tool(tool, args)
    assert not result.is_error, (tool, result.content[0].text)
    return json.loads(result.content[0].text)


def test_the_memory_server_tools_on_a_graph_two_bridges_share(socket_path):  # noqa: F811
    async def body(sessions):
        a, b = sessions
        assert {t.name for t in (await a.list_tools()).tools} == TOOLS
        created = await call(a, "create_entities", {"entities": [
            {"name": "Ada", "entityType": "person", "observations": ["writes programs"]},
            {"name": "Engine", "entityType": "machine", "observations": []}]})
        assert [e["name"] for e in created] == ["Ada", "Engine"]
        # An existing name is ignored, as the original does.
        assert await call(b, "create_entities", {"entities": [{"name": "Ada", "entityType": "x", "observations": []}]}) == []
        assert len(await call(b, "create_relations", {"relations": [{"from": "Ada", "to": "Engine", "relationType": "programs"}]})) == 1
        assert await call(a, "create_relations", {"relations": [{"from": "Ada", "to": "Engine", "relationType": "programs"}]}) == []

        # 40 observations through each bridge at once: none lost.
        async def add(session, tag):
            for i in range(40):
                await call(session, "add_observations", {"observations": [{"entityName": "Ada", "contents": [f"{tag}-{i}"]}]})
        await asyncio.gather(add(a, "a"), add(b, "b"))
        ada = (await call(a, "open_nodes", {"names": ["Ada"]}))["entities"][0]
        assert len(ada["observations"]) == 81 and len(set(ada["observations"])) == 81

        found = await call(b, "search_nodes", {"query": "MACHINE"})
        assert [e["name"] for e in found["entities"]] == ["Engine"] and found["relations"] == []
        both = await call(b, "open_nodes", {"names": ["Ada", "Engine", "Nobody"]})
        assert len(both["entities"]) == 2 and both["relations"] == [{"from": "Ada", "to": "Engine", "relationType": "programs"}]

        missing = await b.call_tool("add_observations", {"observations": [{"entityName": "Nobody", "contents": ["x"]}]})
        assert missing.is_error and "Entity with name Nobody not found" in missing.content[0].text
        await call(a, "delete_observations", {"deletions": [{"entityName": "Ada", "observations": ["a-0", "b-0"]}]})
        await call(b, "delete_entities", {"entityNames": ["Engine"]})
        graph = await call(a, "read_graph", {})
        assert [e["name"] for e in graph["entities"]] == ["Ada"] and graph["relations"] == []
        assert len(graph["entities"][0]["observations"]) == 79

    asyncio.run(asyncio.wait_for(with_bridges(socket_path, "compat/shared", 2, body), 120))


def test_import_from_the_memory_server_file(socket_path, tmp_path):  # noqa: F811
    lines = [
        {"type": "entity", "name": "Grace", "entityType": "person", "observations": ["wrote a compiler"]},
        {"type": "entity", "name": "COBOL", "entityType": "language", "observations": []},
        {"type": "relation", "from": "Grace", "to": "COBOL", "relationType": "designed"},
    ]
    memory = tmp_path / "memory.json"
    memory.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    run = lambda: subprocess.run([MNEMO, "import", "--from", "mcp-memory", str(memory), "--ns", "compat/imported",
                                  "--socket", socket_path, "-o", "json"], capture_output=True, text=True, timeout=60)
    first = run()
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"entities": 2, "updated": 0, "relations": 1}
    again = run()
    assert json.loads(again.stdout) == {"entities": 0, "updated": 0, "relations": 0}, "importing twice changes nothing"
    bad = tmp_path / "bad.json"
    bad.write_text('{"type":"entity","name":"x","entityType":"t"}\nnot json\n')
    refused = subprocess.run([MNEMO, "import", "--from", "mcp-memory", str(bad), "--socket", socket_path],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 65 and "line 2" in refused.stderr

    async def body(sessions):
        graph = await call(sessions[0], "read_graph", {})
        assert sorted(e["name"] for e in graph["entities"]) == ["COBOL", "Grace"]
        assert graph["relations"] == [{"from": "Grace", "to": "COBOL", "relationType": "designed"}]

    asyncio.run(asyncio.wait_for(with_bridges(socket_path, "compat/imported", 1, body), 60))
