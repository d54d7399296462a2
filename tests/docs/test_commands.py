"""The commands the documentation shows work as written: the README's walk-through and
its socat session run against a fresh mnemod with this build's binaries on PATH, as do
the semantic guide's; and every `mnemo SUBCOMMAND --flag ...` in any shell block of the
documentation names a subcommand that exists and flags its help lists."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("MNEMOD_BIN", ROOT / ".build" / "debug" / "mnemod")).resolve().parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shell_blocks(path: Path) -> Iterator[str]:
    text = path.read_text(encoding="utf-8")
    for m in re.finditer(r"^```sh\n(.*?)^```", text, re.S | re.M):
        yield m.group(1)


def block_after(path: Path, heading: str, index: int = 0) -> str:
    text = path.read_text(encoding="utf-8")
    section = text[text.index(heading):]
    return list(re.finditer(r"^```sh\n(.*?)^```", section, re.S | re.M))[index].group(1)


@pytest.fixture
def daemon() -> Iterator[Tuple[str, dict]]:
    """A fresh mnemod serving ./mnemo.sock in a temporary directory (the cwd of the block)."""
    work = tempfile.mkdtemp(prefix="mnemo-docs.")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", MNEMO_SOCKET=os.path.join(work, "mnemo.sock"))
    proc = subprocess.Popen([str(BIN / "mnemod"), "--socket", env["MNEMO_SOCKET"], "--data-dir", os.path.join(work, "data")],
                            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "log"), "w"))
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([str(BIN / "mnemo"), "health"], env=env, capture_output=True).returncode != 0:
            assert proc.poll() is None and time.monotonic() < deadline, Path(work, "log").read_text()[-2000:]
            time.sleep(0.05)
        yield work, env
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def run(block: str, work: str, env: dict) -> subprocess.CompletedProcess:
    # The README's PATH line points at the release build: this build is put first instead.
    block = block.replace("export PATH=$PWD/.build/release:$PATH", "")
    done = subprocess.run(["bash", "-e", "-c", block], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_the_readme_walk_through_runs_as_written(daemon):
    work, env = daemon
    out = run(block_after(ROOT / "README.md", "## A one-minute walk-through"), work, env).stdout
    assert '"parse"' in out and "granted" in out, out
    assert "staging database is reset every night" in out, out  # found by meaning


def test_the_readme_socat_session_runs_as_written(daemon):
    work, env = daemon
    if shutil.which("socat") is None:
        pytest.fail("socat is not installed (make deps / .ci/run install it)")
    out = run(block_after(ROOT / "README.md", "## A one-minute walk-through", 1), work, env).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 3 and '"steps":3' in lines[2] and '"status":"ok"' in lines[2], out


def test_the_semantic_guide_example_runs_as_written(daemon):
    work, env = daemon
    out = run(block_after(ROOT / "docs" / "semantic.md", "# Semantic memory"), work, env).stdout
    assert "staging database is reset every night" in out, out


def documented_invocations() -> List[Tuple[str, str, List[str]]]:
    """(where, subcommand, flags) of every `mnemo ...` line in a shell block."""
    out = []
    for path in DOCS:
        for block in shell_blocks(path):
            for line in block.splitlines():
                line = re.sub(r"^\s*\$ ", "", line.split("  #")[0].split(" # ")[0])
                m = re.search(r"(?:^|\s)mnemo ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)(.*)$", line)
                if not m:
                    continue
                words, rest = m.group(1).split(), m.group(2)
                flags = re.findall(r"(?:^|\s)(--[a-z][a-z-]*)", rest)
                out.append((f"{path.relative_to(ROOT)}: {line.strip()}", words, flags))
    return out


@pytest.mark.parametrize("where,words,flags", documented_invocations(), ids=lambda v: v if isinstance(v, str) else None)
def test_documented_cli_invocations_name_real_subcommands_and_flags(where, words, flags):
    # `mnemo ep search`: a group and its subcommand; `mnemo get wf/42`: a subcommand and an argument.
    for n in (2, 1):
        done = subprocess.run([str(BIN / "mnemo"), *words[:n], "--help"], capture_output=True, text=True, timeout=30)
        if done.returncode == 0 and "USAGE" in done.stdout.upper():
            break
    assert done.returncode == 0, f"{where}: `mnemo {' '.join(words)} --help` failed: {done.stderr[-500:]}"
    for flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", done.stdout), f"{where}: {flag} is not an option of mnemo {' '.join(words[:n])}"
