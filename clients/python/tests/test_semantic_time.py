"""Facts that know when they were true: the semantic guide's example (docs/semantic.md) as written, and the client's
as_of / include_history / on_conflict arguments (sync and asyncio) against a real daemon."""
import asyncio
import datetime

import pytest
from readme_blocks import DOCS, run_example

from mnemo_client import Client, Conflict, InvalidParams, timestamp
from mnemo_client.aio import AsyncClient


def test_readme_validity_example_runs_as_written(mnemod: str) -> None:
    out, expected = run_example("## Facts that know when they were true", mnemod, DOCS / "semantic.md")
    assert out == expected


def test_timestamp_helper() -> None:
    assert timestamp(datetime.datetime(2026, 12, 1, 9, 30, 0, 123000)) == "2026-12-01T09:30:00.123Z"
    aware = datetime.datetime(2026, 12, 1, 10, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert timestamp(aware) == "2026-12-01T09:30:00.000Z"
    assert timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert timestamp(1.5) == "1970-01-01T00:00:01.500Z"


def test_as_of_after_three_supersessions(mnemod: str) -> None:
    """A chain a <- b <- c <- d: as_of inside each interval finds that fact, in every mode."""
    days = ["monday", "tuesday", "wednesday", "thursday"]
    start = datetime.datetime(2026, 9, 1)
    with Client(mnemod, agent="chain") as c:
        v = [0.0, 1.0, 0.0]
        prev = None
        for i, day in enumerate(days):
            c.sem_upsert("py/chain", f"the release train leaves on {day}", id=f"r{i}", vector=v, supersedes=prev,
                         valid_from=timestamp(start + datetime.timedelta(days=7 * i)))
            prev = f"r{i}"
        for i, day in enumerate(days):
            at = timestamp(start + datetime.timedelta(days=7 * i + 3))
            by_vector = c.sem_search("py/chain", vector=v, as_of=at)["hits"]
            by_words = c.sem_search("py/chain", "release train", mode="keyword", as_of=at)["hits"]
            assert [h["text"] for h in by_vector] == [f"the release train leaves on {day}"]
            assert [h["text"] for h in by_words] == [f"the release train leaves on {day}"]
            assert c.sem_get("py/chain", f"r{i}", as_of=at)["found"] is True
        everything = c.sem_search("py/chain", vector=v, include_superseded=True)["hits"]
        assert len(everything) == 4
        assert [h["id"] for h in c.sem_search("py/chain", vector=v)["hits"]] == ["r3"]
        with pytest.raises(InvalidParams):
            c.sem_search("py/chain", vector=v, as_of="last tuesday")


def test_asyncio_client_history_and_conflicts(mnemod: str) -> None:
    async def main() -> None:
        async with AsyncClient(mnemod, agent="aio-time") as c:
            v = [0.0, 0.0, 1.0]
            await c.sem_upsert("py/aio", "the cache is redis", id="cache", vector=v)
            await c.sem_upsert("py/aio", "the cache is memcached", id="cache", vector=v)
            h = await c.sem_history("py/aio", "cache")
            assert [x["text"] for x in h["versions"]] == ["the cache is memcached", "the cache is redis"]
            g = await c.sem_get("py/aio", "cache", include_history=True)
            assert g["current"] is True and [x["current"] for x in g["history"]] == [False]
            with pytest.raises(Conflict) as e:
                await c.sem_upsert("py/aio", "the cache is in process", vector=v, on_conflict="reject")
            assert [x["id"] for x in e.value.data["conflicts"]] == ["cache"]
            kept = await c.sem_upsert("py/aio", "the cache is in process", vector=v, on_conflict="keep_both")
            assert [x["id"] for x in kept["conflicts"]] == ["cache"] and "superseded" not in kept

    asyncio.run(asyncio.wait_for(main(), 30))
