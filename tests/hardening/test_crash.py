"""kill -9 at random moments under a mixed concurrent write load, repeated.

Client threads write to every tier (wm.set with compare-and-set, claim.acquire/release,
ep.append, sem.upsert with text embedded by the server) while a searcher takes sem.search
results; every write whose reply came back is recorded. At a random moment the daemon
gets SIGKILL; then, before the restart, every .sqlite file passes PRAGMA integrity_check
(on a copy); after the restart:

- an ep.append whose reply was lost is retried with its idempotency key after the
  restart and then exists exactly once;
- every acknowledged write is there (README, Durability: `normal` and `strict` both
  promise that acknowledged writes survive a kill -9 of mnemod); the only other value a
  key, claim or record may hold is the one of the single write that was in flight when the
  connection dropped (never a value nobody wrote, never an older one);
- the global revision and fencing tokens are never below any acknowledged one, and new
  ones are above every one seen before;
- sem.search results taken before the kill are reproduced bit for bit (README, Semantic
  memory, Persistence: "a restart returns bit-identical results"), restricted to what was
  visible to the search: the records of the collection up to some revision at least as
  high as every record acknowledged before the search was sent.

Keys with TTLs hold their value until their (wall-clock) expiry and stay expired after it.
The state accumulates over the rounds (one data directory per mode), so later rounds
also replay snapshots and journals written by earlier ones.
"""
from __future__ import annotations

import os
import time
from typing import List

import pytest

from harness import Daemon, integrity_check_copies
from mixedload import Ledger, check_after_restart, check_revisions, config_for, start_load, stop_load

# The workload, the ledger and the checker live in mixedload.py (shared with
# test_powerloss.py).


# -- the test ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["normal", "strict"])
def test_kill9_under_mixed_load_loses_no_acknowledged_write(mode, daemons, rng, report, settings):
    d: Daemon = daemons(f"crash-{mode}", config=config_for(mode))
    led = Ledger()
    highest_rev_after_restart = 0
    highest_fresh_token = 0
    all_problems: List[str] = []
    total_lost = 0
    integrity_failures: List[str] = []
    searches_checked = 0
    kill_times: List[float] = []
    startup_kills: List[float] = []
    for rnd in range(settings.crash_rounds):
        searches_before = len(led.searches)
        stop, threads = start_load(d.sock, mode, rnd, led, rng)
        # A random moment: usually somewhere in the round, sometimes right after the start.
        delay = rng.uniform(0.0, 0.3) if rng.random() < 0.2 else rng.uniform(0.3, settings.crash_round_seconds)
        time.sleep(delay)
        kill_times.append(round(delay, 2))
        d.kill9()
        stop_load(stop, threads, rnd)
        integrity = integrity_check_copies(d.data_dir, os.path.join(d.workdir, "ic"))
        for name, res in integrity.items():
            if res != "ok":
                integrity_failures.append(f"round {rnd} {name}: {res}")
        if mode != "volatile":  # (volatile keeps no files; used only to check that this test can fail)
            assert "episodic.sqlite" in integrity and "semantic.sqlite" in integrity, integrity
        if rng.random() < 0.3:
            # Also kill a start-up: during recovery (journal replay, the start-up snapshot,
            # loading the matrices) or just after it.
            d.spawn()
            startup_kill = rng.uniform(0.0, 0.5)
            time.sleep(startup_kill)
            d.kill9()
            startup_kills.append(round(startup_kill, 2))
        d.start()
        with d.client("checker") as c:
            # This round's searches, and a sample of earlier ones (their collections are
            # never written again, so they must stay reproducible through every restart).
            older = led.searches[:searches_before]
            round_searches = led.searches[searches_before:] + rng.sample(older, min(10, len(older)))
            result = check_after_restart(c, mode, led, round_searches)
            searches_checked += len(round_searches)
            total_lost += result.lost
            all_problems.extend(f"round {rnd}: {p}" for p in result.problems)
            problems, highest_rev_after_restart, highest_fresh_token = check_revisions(
                c, mode, rnd, led, highest_rev_after_restart, highest_fresh_token)
            all_problems.extend(problems)
        if all_problems and not settings.long:
            break  # keep the evidence of the first bad round
    d.stop()
    report.record(f"crash_kill9[{mode}]", runs=rnd + 1, operations=led.operations,
                  faults=rnd + 1 + len(startup_kills), startup_kills_after_s=startup_kills,
                  acknowledged_writes=led.acked_writes, data_lost=total_lost,
                  searches_compared=searches_checked, ep_records=len(led.ep), ep_retried=led.ep_retried, sem_records=len(led.sem),
                  final_rev=highest_rev_after_restart, kill_after_s=kill_times)
    assert not led.errors, "errors under load:\n" + "\n".join(led.errors[:20])
    assert not integrity_failures, "\n".join(integrity_failures)
    assert total_lost == 0 and not all_problems, f"{total_lost} acknowledged writes lost:\n" + "\n".join(all_problems[:40])
    assert led.acked_writes > 0
    assert searches_checked > 0, "no search was taken before a kill"
