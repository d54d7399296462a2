"""The agreement guide's example (docs/agreement.md), run as written against a real daemon."""
from readme_blocks import DOCS, run_example


def test_readme_agreement_example_runs_as_written(mnemod: str) -> None:
    out, expected = run_example("# Agreement before acting", mnemod, DOCS / "agreement.md")
    assert out == expected


def test_asyncio_client_agrees_too(mnemod: str) -> None:
    """Two asyncio agents meet at a barrier and decide a proposal; a third waits for the decision."""
    import asyncio

    from mnemo_client.aio import AsyncClient

    async def party(agent: str) -> dict:
        async with AsyncClient(mnemod, agent=agent) as c:
            async with c.barrier("aio/t", "meet", 2, value=agent, wait_ms=10_000) as opened:
                await c.vote("aio/t", "go", "yes")
            return opened

    async def main() -> None:
        async with AsyncClient(mnemod, agent="opener") as o:
            await o.vote_open("aio/t", "go", voters=["a1", "a2"])
            waiting = asyncio.ensure_future(o.vote_get("aio/t", "go", wait_ms=10_000))
            results = await asyncio.gather(party("a1"), party("a2"))
            assert all(r["state"] == "open" and r["arrived"] == 2 for r in results)
            decided = await waiting
            assert decided["status"] == "accepted" and isinstance(decided["token"], int)

    asyncio.run(asyncio.wait_for(main(), 30))


def test_barrier_context_manager_waits_across_short_calls(mnemod: str) -> None:
    """Each call waits at most a slice short of the client's timeout; the helper asks again
    about its generation until the barrier opens, then runs the block once."""
    import threading
    import time

    from mnemo_client import Broken, Client

    opened = []

    def late() -> None:
        time.sleep(1.5)
        with Client(mnemod, agent="late") as c:
            c.arrive("cm/t", "gate", 2)

    t = threading.Thread(target=late)
    t.start()
    with Client(mnemod, agent="early", timeout=1.0) as c:  # calls wait 0.5 s each
        with c.barrier("cm/t", "gate", 2, value="early", wait_ms=10_000) as r:
            opened.append(r)
    t.join()
    assert len(opened) == 1 and opened[0]["generation"] == 1 and opened[0]["arrived"] == 2
    with Client(mnemod, agent="alone") as c:
        try:
            with c.barrier("cm/t", "short", 2, ttl_ms=300, wait_ms=5_000):
                raise AssertionError("the block ran without every party")
        except Broken as e:
            assert e.data["generation"] == 1
