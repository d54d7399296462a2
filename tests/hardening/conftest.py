"""Fixtures of the hardening suite: real daemons from $MNEMOD_BIN, a seeded RNG printed on
failure, and the run report (one line per test; JSON at $MNEMO_HARDENING_REPORT)."""
from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import SETTINGS, Daemon, mnemod_binary, new_workdir  # noqa: E402


class Report:
    """Figures per test, for docs/guarantees.md."""

    def __init__(self) -> None:
        self.entries: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        self.current: Optional[str] = None   # node id of the running test

    def record(self, test: str, *, runs: int = 1, operations: int = 0, faults: int = 0,
               acknowledged_writes: int = 0, data_lost: int = 0, **extra: Any) -> Dict[str, Any]:
        entry: Dict[str, Any] = {"test": test, "runs": runs, "operations": operations,
                                 "faults_injected": faults, "acknowledged_writes": acknowledged_writes,
                                 "data_lost": data_lost}
        entry.update(extra)
        entry["nodeid"] = self.current
        with self.lock:
            self.entries.append(entry)
        print("\n[hardening] " + summary_line(entry), flush=True)
        return entry


def summary_line(e: Dict[str, Any]) -> str:
    head = (f"{e['test']}{' [' + e['outcome'].upper() + ']' if 'outcome' in e else ''}: runs={e['runs']} ops={e['operations']} faults={e['faults_injected']} "
            f"acked_writes={e['acknowledged_writes']} lost={e['data_lost']}")
    rest = " ".join(f"{k}={v}" for k, v in e.items()
                    if k not in ("test", "runs", "operations", "faults_injected", "acknowledged_writes",
                                 "data_lost", "outcome", "nodeid"))
    return head + (" " + rest if rest else "")


REPORT = Report()
_STARTED = time.time()


@pytest.fixture(scope="session")
def settings():
    return SETTINGS


@pytest.fixture(scope="session")
def report() -> Report:
    return REPORT


@pytest.fixture
def rng(request) -> random.Random:
    """A per-test RNG derived from the run's seed ($MNEMO_HARDENING_SEED to replay)."""
    request.node._hardening_seed = SETTINGS.seed
    return random.Random(f"{SETTINGS.seed}:{request.node.name}")


@pytest.fixture
def daemons(request) -> Iterator[Callable[..., Daemon]]:
    """``daemons(tag, config="", data_dir=None, start=True)`` makes a Daemon on a socket in
    a fresh temporary directory; every one is killed at the end of the test. Directories
    are removed after a pass and kept (path printed) after a failure."""
    with killed_at_end(request) as made:
        def make(tag: str, config: str = "", data_dir: Optional[str] = None, start: bool = True,
                 workdir: Optional[str] = None, nofile: Optional[int] = None) -> Daemon:
            d = Daemon(workdir or new_workdir(tag), config=config, data_dir=data_dir, nofile=nofile)
            made.append(d)
            if start:
                d.start()
            return d

        yield make


@contextlib.contextmanager
def killed_at_end(request) -> Iterator[List[Daemon]]:
    """A list for the daemons a test makes: each is killed when the test ends, its directory
    removed after a pass and kept (path printed) after a failure."""
    made: List[Daemon] = []
    try:
        yield made
    finally:
        for d in made:
            try:
                d.kill9()
            except Exception:  # noqa: BLE001 - teardown must reach every daemon
                pass
        rep = getattr(request.node, "rep_call", None)
        failed = rep is None or rep.failed
        for d in made:
            if failed:
                undo = getattr(d, "undo_dir", None)
                print(f"\n[hardening] kept {d.workdir} (log: {d.log_path}" + (f", undo logs: {undo})" if undo else ")"))
            else:
                shutil.rmtree(d.workdir, ignore_errors=True)


@pytest.fixture
def mounts(request) -> Iterator[List[str]]:
    """Mount points to unmount (lazily) at the end of the test."""
    points: List[str] = []
    try:
        yield points
    finally:
        for p in reversed(points):
            subprocess.run(["umount", "-l", p], capture_output=True)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.when == "call" or (rep.when == "setup" and not rep.passed):
        mine = [e for e in REPORT.entries if e.get("nodeid") == item.nodeid]
        if not mine and not rep.skipped:
            mine = [REPORT.record(item.name, runs=0)]   # failed before it could report figures
            mine[0]["nodeid"] = item.nodeid
        for e in mine:
            e["outcome"] = rep.outcome
    if rep.failed and hasattr(item, "_hardening_seed"):
        rep.sections.append(("hardening seed",
                             f"seed={item._hardening_seed}: replay with MNEMO_HARDENING_SEED={item._hardening_seed}"))


def pytest_runtest_setup(item):
    REPORT.current = item.nodeid


def pytest_report_header(config):
    s = SETTINGS
    return (f"mnemo hardening: binary={mnemod_binary()} seed={s.seed} long={s.long} "
            f"crash_rounds={s.crash_rounds}x{s.crash_round_seconds}s fuzz_frames={s.fuzz_frames} "
            f"soak={s.soak_seconds}s")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not REPORT.entries:
        return
    tr = terminalreporter
    tr.section("mnemo hardening summary")
    for e in REPORT.entries:
        tr.write_line(summary_line(e))
    totals = totals_of(REPORT.entries)
    tr.write_line("TOTAL: " + " ".join(f"{k}={v}" for k, v in totals.items()))
    tr.write_line(f"seed={SETTINGS.seed} (replay with MNEMO_HARDENING_SEED={SETTINGS.seed})")


def totals_of(entries: List[Dict[str, Any]]) -> Dict[str, Any]:
    keys = ("runs", "operations", "faults_injected", "acknowledged_writes", "data_lost")
    return {k: sum(int(e.get(k, 0)) for e in entries) for k in keys}


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("MNEMO_HARDENING_REPORT")
    if not path:
        return
    doc = {
        "suite": "mnemo hardening",
        "binary": mnemod_binary(),
        "seed": SETTINGS.seed,
        "settings": SETTINGS.__dict__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_STARTED)),
        "seconds": round(time.time() - _STARTED, 1),
        "exit_status": int(exitstatus),
        "tests": REPORT.entries,
        "totals": totals_of(REPORT.entries),
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
