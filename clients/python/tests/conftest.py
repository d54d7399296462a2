import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run against the source tree without installing

from mnemo_client import Client, MnemoError  # noqa: E402

DEFAULT_BIN = HERE.parents[2] / ".build" / "debug" / "mnemod"


@pytest.fixture(scope="module")
def mnemod() -> Iterator[str]:
    """Start a real mnemod on a temporary socket; yields the socket path."""
    binary = os.environ.get("MNEMOD_BIN", str(DEFAULT_BIN))
    if not os.access(binary, os.X_OK):
        pytest.fail(f"mnemod binary not found at {binary} (set MNEMOD_BIN)")
    tmp = tempfile.mkdtemp(prefix="mnemo-py-")
    sock = os.path.join(tmp, "m.sock")
    log = open(os.path.join(tmp, "mnemod.log"), "wb")
    proc = subprocess.Popen(
        [binary, "--socket", sock, "--data-dir", os.path.join(tmp, "data"), "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            log.close()
            pytest.fail(f"mnemod exited with {proc.returncode}: {open(os.path.join(tmp, 'mnemod.log')).read()}")
        try:
            with Client(sock, agent="probe") as c:
                if c.health()["status"] == "ok":
                    break
        except MnemoError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("mnemod did not answer admin.health within 15 s")
        time.sleep(0.05)
    try:
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def client(mnemod: str) -> Iterator[Client]:
    with Client(mnemod, agent="tester", timeout=10) as c:
        yield c
