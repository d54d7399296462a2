"""MnemoSession (mnemo_client.openai_agents) against a real mnemod and the SDK's own SQLiteSession.

The OpenAI Agents SDK must be installed (``pip install openai-agents``): a missing framework
is a collection error, never a silent skip. No LLM is called: the SDK's ScriptedModel plays
the model.
"""
import asyncio
import threading
import uuid
from typing import Any, List

import pytest
from agents import Agent, Runner, SQLiteSession, function_tool, set_tracing_disabled
from agents.memory import Session, SessionSettings
from agents.testing import ScriptedModel, assistant_message, function_call

from mnemo_client import Client, InvalidParams
from mnemo_client.openai_agents import KIND_CLEAR, KIND_ITEM, KIND_POP, MnemoSession

set_tracing_disabled(True)


def sid() -> str:
    return "conv-" + uuid.uuid4().hex[:10]


@pytest.fixture
def session(mnemod: str):
    s = MnemoSession(sid(), socket_path=mnemod, timeout=30)
    yield s
    s.close()


def msg(role: str, text: str) -> dict:
    return {"role": role, "content": text}


def test_is_an_sdk_session(session: MnemoSession) -> None:
    assert isinstance(session, Session)  # the SDK's runtime_checkable protocol
    assert session.session_id.startswith("conv-")
    assert session.ns == "agents/sessions/" + session.session_id
    assert isinstance(session.session_settings, SessionSettings)
    odd = MnemoSession("user 7/thread.3", session.client)
    assert odd.ns == "agents/sessions/user.207.2Fthread.2E3"


def test_matches_sqlite_session(session: MnemoSession) -> None:
    ref = SQLiteSession("ref")

    async def script(s: Any) -> List[Any]:
        out: List[Any] = []
        out.append(await s.get_items())
        out.append(await s.pop_item())
        await s.add_items([msg("user", "hi"), msg("assistant", "hello"), {"type": "function_call", "name": "f",
                                                                           "arguments": "{}", "call_id": "c1"}])
        await s.add_items([])
        await s.add_items([{"type": "function_call_output", "call_id": "c1", "output": "42"}, msg("user", "ü ✓")])
        for limit in (None, 0, 1, 2, 5, 100, -1):
            out.append(await s.get_items(limit))
        out.append(await s.pop_item())
        out.append(await s.pop_item())
        out.append(await s.get_items())
        await s.add_items([msg("user", "again")])
        out.append(await s.get_items(2))
        await s.clear_session()
        out.append(await s.get_items())
        out.append(await s.pop_item())
        await s.add_items([msg("user", "after clear")])
        out.append(await s.get_items())
        return out

    assert asyncio.run(script(session)) == asyncio.run(script(ref))
    ref.close()


def test_order_across_pages_and_limit(session: MnemoSession) -> None:
    items = [msg("user" if i % 2 else "assistant", f"message {i}") for i in range(1205)]
    session.add_items_sync(items[:600])
    session.add_items_sync(items[600:])
    assert session.get_items_sync() == items  # more than one ep.query page
    assert session.get_items_sync(3) == items[-3:]
    for _ in range(5):
        session.pop_item_sync()
    assert session.get_items_sync(1001) == items[-1001 - 5:-5]


def test_persistent_and_isolated(mnemod: str) -> None:
    a, b = sid(), sid()
    s1 = MnemoSession(a, socket_path=mnemod)
    s1.add_items_sync([msg("user", "remember me")])
    MnemoSession(b, s1.client).add_items_sync([msg("user", "other conversation")])
    s1.close()
    with Client(mnemod, agent="someone-else") as c:  # a new connection, as another process would
        s2 = MnemoSession(a, c)
        assert s2.get_items_sync() == [msg("user", "remember me")]
        assert MnemoSession(b, c).get_items_sync() == [msg("user", "other conversation")]
        assert MnemoSession(sid(), c).get_items_sync() == []
    with pytest.raises(RuntimeError):
        s1.get_items_sync()


def test_records_in_episodic_memory(session: MnemoSession) -> None:
    session.add_items_sync([msg("user", "the launch code is tangerine"), msg("assistant", "noted")])
    popped = session.pop_item_sync()
    assert popped == msg("assistant", "noted")
    recs = session.client.call("ep.query", ns=session.ns)["records"]
    assert [r["kind"] for r in recs] == [KIND_ITEM, KIND_ITEM, KIND_POP]
    assert recs[0]["content"] == "user: the launch code is tangerine" and recs[0]["tags"] == ["role:user"]
    assert recs[2]["data"]["pop"] == recs[1]["id"] and recs[2]["derived_from"] == [recs[1]["id"]]
    hits = session.client.call("ep.search", ns=session.ns, text="tangerine")["hits"]
    assert [h["id"] for h in hits] == [recs[0]["id"]]


def test_concurrent_pops_take_each_item_once(mnemod: str) -> None:
    name = sid()
    seed = MnemoSession(name, socket_path=mnemod)
    n = 40
    seed.add_items_sync([msg("user", f"m{i}") for i in range(n)])
    sessions = [MnemoSession(name, socket_path=mnemod) for _ in range(4)]
    got: List[Any] = []
    lock = threading.Lock()

    def work(s: MnemoSession) -> None:
        while True:
            item = s.pop_item_sync()
            if item is None:
                return
            with lock:
                got.append(item["content"])

    threads = [threading.Thread(target=work, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(got) == sorted(f"m{i}" for i in range(n))  # each exactly once
    assert seed.get_items_sync() == []
    for s in sessions + [seed]:
        s.close()


def test_clear_prunes_or_masks(mnemod: str) -> None:
    name = sid()
    pruning = MnemoSession(name, socket_path=mnemod)
    pruning.add_items_sync([msg("user", "a"), msg("user", "b")])
    pruning.clear_session_sync()
    assert pruning.client.call("ep.query", ns=pruning.ns)["records"] == []  # really deleted

    masking = MnemoSession(sid(), pruning.client, prune_on_clear=False)
    masking.add_items_sync([msg("user", "a"), msg("user", "b")])
    masking.clear_session_sync()
    masking.add_items_sync([msg("user", "c")])
    kinds = [r["kind"] for r in masking.client.call("ep.query", ns=masking.ns)["records"]]
    assert kinds == [KIND_ITEM, KIND_ITEM, KIND_CLEAR, KIND_ITEM]
    assert masking.get_items_sync() == [msg("user", "c")]
    assert masking.pop_item_sync() == msg("user", "c")
    assert masking.pop_item_sync() is None  # the marker hides what came before
    pruning.close()


def test_session_settings_limit(mnemod: str) -> None:
    s = MnemoSession(sid(), socket_path=mnemod, session_settings={"limit": 2})
    s.add_items_sync([msg("user", str(i)) for i in range(5)])
    assert s.get_items_sync() == [msg("user", "3"), msg("user", "4")]
    assert s.get_items_sync(limit=4) == [msg("user", str(i)) for i in range(1, 5)]
    s.close()


def test_failed_add_leaves_nothing_behind(session: MnemoSession, monkeypatch: pytest.MonkeyPatch) -> None:
    session.add_items_sync([msg("user", "before")])
    too_big = {"role": "user", "content": "x" * (session._max_data + 10)}
    with pytest.raises(ValueError, match="max_value_bytes"):
        session.add_items_sync([msg("user", "one"), too_big])  # refused before anything is sent
    assert session.get_items_sync() == [msg("user", "before")]

    original = session._append_params

    def sometimes_invalid(item: Any) -> Any:
        params = original(item)
        if item.get("content") == "bad":
            params["kind"] = "not a valid kind!"  # the daemon rejects this append (-32602)
        return params

    monkeypatch.setattr(session, "_append_params", sometimes_invalid)
    with pytest.raises(InvalidParams):
        session.add_items_sync([msg("user", "x1"), msg("user", "bad"), msg("user", "x2")])
    assert session.get_items_sync() == [msg("user", "before")]  # x1 and x2 were taken back


@function_tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_runner_with_mnemo_session(session: MnemoSession) -> None:
    def script() -> ScriptedModel:
        return ScriptedModel([
            [function_call("add", {"a": 2, "b": 3}, call_id="c1")],
            [assistant_message("5")],
            [assistant_message("you asked about 2+3")],
        ])

    async def run(s: Any, model: ScriptedModel) -> List[Any]:
        agent = Agent(name="calc", instructions="Answer briefly.", model=model, tools=[add])
        first = await Runner.run(agent, "what is 2+3?", session=s)
        second = await Runner.run(agent, "what did I ask?", session=s)
        return [first.final_output, second.final_output, await s.get_items()]

    model, ref_model = script(), script()
    ours = asyncio.run(run(session, model))
    ref = SQLiteSession("ref")
    theirs = asyncio.run(run(ref, ref_model))
    assert ours[:2] == ["5", "you asked about 2+3"]
    assert ours == theirs
    # The second run's model call got the whole first conversation from the session.
    assert model.last_call is not None and ref_model.last_call is not None
    assert model.last_call.input == ref_model.last_call.input
    assert [i.get("role") or i.get("type") for i in model.last_call.input] == [
        "user", "function_call", "function_call_output", "assistant", "user"]
    # And it is in Mnemo: a fresh session object over a new connection sees it.
    with Client(session.client.socket_path) as c:
        assert MnemoSession(session.session_id, c).get_items_sync() == ours[2]
    ref.close()


def test_runner_sync_and_gather(session: MnemoSession) -> None:
    agent = Agent(name="echo", model=ScriptedModel([[assistant_message("one")], [assistant_message("two")]]))
    assert Runner.run_sync(agent, "first", session=session).final_output == "one"
    assert Runner.run_sync(agent, "second", session=session).final_output == "two"

    async def reads() -> List[Any]:
        return list(await asyncio.gather(*(session.get_items(k) for k in (None, 1, 2))))

    everything, last, last_two = asyncio.run(reads())
    assert [i.get("role") for i in everything] == ["user", "assistant", "user", "assistant"]
    assert last == everything[-1:] and last_two == everything[-2:]


def test_readme_example_runs_as_documented(mnemod: str) -> None:
    from readme_blocks import run_example

    got, documented = run_example("### Use from the OpenAI Agents SDK", mnemod)
    assert got == documented
    got_again, _ = run_example("### Use from the OpenAI Agents SDK", mnemod)  # it starts afresh
    assert got_again == documented
