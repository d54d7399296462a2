"""The contract suite (schemas/test_live_responses.py) against a cluster node, as it runs
against a single node; the tiers a node does not serve are skipped there, and their
methods must be refused naming the cluster."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_live_contract_suite_passes_against_a_cluster_node(postgres):
    db = postgres.new_database()
    binary = os.path.abspath(os.environ.get("MNEMOD_BIN", str(ROOT / ".build" / "debug" / "mnemod")))
    env = dict(os.environ, MNEMO_LIVE_CLUSTER=postgres.conninfo(db), MNEMOD_BIN=binary)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                          str(ROOT / "schemas" / "test_live_responses.py")],
                         cwd=ROOT / "schemas", env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "failed" not in summary, summary
    print("\n[cluster] live contract suite on a node: " + summary)


def test_the_cluster_guide_example_runs_as_written():
    """The cluster guide's example (docs/cluster.md), extracted and run with this build on PATH."""
    text = (ROOT / "docs" / "cluster.md").read_text()
    section = text[text.index("# Cluster mode on PostgreSQL"):]
    block = section[section.index("```sh\n") + 6:section.index("\n```", section.index("```sh\n"))]
    binaries = os.path.dirname(os.path.abspath(os.environ.get("MNEMOD_BIN", str(ROOT / ".build" / "debug" / "mnemod"))))
    for leftover in ("/tmp/pg", "/tmp/node-a", "/tmp/node-b"):
        subprocess.run(["rm", "-rf", leftover], check=True)
    run = subprocess.run(["bash", "-e", "-c", block], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PATH=binaries + os.pathsep + os.environ["PATH"]))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "version 1" in run.stdout and '"step": 1' in run.stdout, run.stdout
