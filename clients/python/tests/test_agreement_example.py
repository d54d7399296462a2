"""The project README's agreement example, run as written against a real daemon."""
from readme_blocks import PROJECT_README, run_example


def test_readme_agreement_example_runs_as_written(mnemod: str) -> None:
    out, expected = run_example("## Agreement before acting", mnemod, PROJECT_README)
    assert out == expected


def test_asyncio_client_agrees_too(mnemod: str) -> None:
    """Two asyncio agents meet at a barrier and decide a proposal; a third waits for the decision."""
    import asyncio

    from mnemo.aio import AsyncClient

    async def party(agent: str) -> dict:
        async with AsyncClient(mnemod, agent=agent) as c:
            opened = await c.arrive("aio/t", "meet", 2, value=agent, wait_ms=10_000)
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
