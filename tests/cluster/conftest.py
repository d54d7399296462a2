"""Fixtures of the cluster suite: one throwaway PostgreSQL for the run (scripts/pg-dev.sh),
and per test a fresh database with mnemod nodes on it (separate processes and sockets)."""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "hardening"))
sys.path.insert(0, str(ROOT / "clients" / "python"))

from harness import Daemon  # noqa: E402

PG_DEV = str(ROOT / "scripts" / "pg-dev.sh")


class Postgres:
    """The run's PostgreSQL: a Unix socket in a temporary directory."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.sock = os.path.join(root, "sock")
        self._dbs = itertools.count(1)

    def psql(self, sql: str, db: str = "mnemo") -> str:
        return subprocess.run(["psql", "-h", self.sock, "-U", "postgres", "-d", db, "-XAtqc", sql],
                              check=True, capture_output=True, text=True).stdout

    def new_database(self) -> str:
        name = f"t{next(self._dbs)}"
        self.psql(f"CREATE DATABASE {name}")
        return name

    def conninfo(self, db: str) -> str:
        return f"host={self.sock} dbname={db} user=postgres"

    def restart_immediate(self) -> None:
        """pg_ctl restart -m immediate: PostgreSQL crashes and recovers from its WAL."""
        subprocess.run([PG_DEV, "restart", self.root], check=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    root = tempfile.mkdtemp(prefix="mnemo-pg.")
    os.rmdir(root)  # pg-dev.sh makes it, owned by the server's user
    subprocess.run([PG_DEV, "start", root], check=True, stdout=subprocess.DEVNULL)
    try:
        yield Postgres(root)
    finally:
        subprocess.run([PG_DEV, "stop", root], check=False)


class Cluster:
    """Nodes of one cluster (one database), named n0, n1, ..."""

    def __init__(self, pg: Postgres, db: str, nodes: List[Daemon]) -> None:
        self.pg = pg
        self.db = db
        self.nodes = nodes

    def __getitem__(self, i: int) -> Daemon:
        return self.nodes[i]

    def __len__(self) -> int:
        return len(self.nodes)


def node_config(pg: Postgres, db: str, name: str, extra: str = "") -> str:
    return f'[cluster]\npostgres = "{pg.conninfo(db)}"\nnode = "{name}"\n{extra}'


@pytest.fixture
def cluster(postgres: Postgres, request) -> Iterator[Callable[..., Cluster]]:
    """``cluster(n=3, extra="")`` starts n nodes on a fresh database; all are killed at the
    end. Their directories are removed after a pass and kept (printed) after a failure."""
    made: List[Daemon] = []
    dirs: List[str] = []

    def make(n: int = 3, extra: str = "") -> Cluster:
        db = postgres.new_database()
        nodes = []
        for i in range(n):
            workdir = tempfile.mkdtemp(prefix=f"mnemo-cluster-{request.node.name[:40]}-n{i}.")
            dirs.append(workdir)
            d = Daemon(workdir, config=node_config(postgres, db, f"n{i}", extra))
            made.append(d)
            nodes.append(d.start())
        return Cluster(postgres, db, nodes)

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for d in made:
        d.kill9()
    for w in dirs:
        if failed:
            print(f"\n[cluster] kept {w}")
        else:
            shutil.rmtree(w, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
