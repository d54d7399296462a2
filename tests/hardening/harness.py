"""Shared pieces of the hardening suite: settings, a real-daemon handle, raw sockets, stats.

Nothing here talks to anything but the mnemod processes it starts itself (each on a Unix
socket in a fresh temporary directory) and /proc of those processes.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "clients" / "python"))  # the stdlib client, without installing

from mnemo_client import Client, MnemoError  # noqa: E402


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    v = os.environ.get(name)
    return float(v) if v not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    """Sizes of the runs. Short by default (CI); ``MNEMO_HARDENING_LONG=1`` for the long run;
    each figure can also be set on its own."""

    long: bool
    crash_rounds: int
    crash_round_seconds: float
    fuzz_frames: int
    fuzz_connections: int
    soak_seconds: float
    seed: int

    @staticmethod
    def from_env() -> "Settings":
        long = os.environ.get("MNEMO_HARDENING_LONG", "") not in ("", "0")
        seed_text = os.environ.get("MNEMO_HARDENING_SEED")
        seed = int(seed_text) if seed_text else random.SystemRandom().randrange(1, 2**31)
        return Settings(
            long=long,
            crash_rounds=_env_int("MNEMO_HARDENING_ROUNDS", 50 if long else 5),
            crash_round_seconds=_env_float("MNEMO_HARDENING_ROUND_SECONDS", 8.0 if long else 2.5),
            fuzz_frames=_env_int("MNEMO_HARDENING_FUZZ_FRAMES", 100000 if long else 6000),
            fuzz_connections=_env_int("MNEMO_HARDENING_FUZZ_CONNECTIONS", 6),
            soak_seconds=_env_float("MNEMO_HARDENING_SOAK_SECONDS", 1800.0 if long else 40.0),
            seed=seed,
        )


SETTINGS = Settings.from_env()


def mnemod_binary() -> str:
    return os.environ.get("MNEMOD_BIN", str(REPO / ".build" / "debug" / "mnemod"))


class Daemon:
    """One real mnemod on a temporary socket. ``start``/``kill9``/``stop``/``restart`` keep
    the data directory, so a restart recovers what the killed process left."""

    def __init__(self, workdir: str, config: str = "", data_dir: Optional[str] = None,
                 args: Sequence[str] = (), nofile: Optional[int] = None) -> None:
        self.workdir = workdir
        self.sock = os.path.join(workdir, "m.sock")
        self.data_dir = data_dir or os.path.join(workdir, "data")
        self.config_path = os.path.join(workdir, "mnemod.toml")
        self.log_path = os.path.join(workdir, "mnemod.log")
        self.args = list(args)
        self.nofile = nofile   # RLIMIT_NOFILE (soft and hard) of the daemon, if set
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.starts = 0
        self.set_config(config)

    def set_config(self, config: str) -> None:
        with open(self.config_path, "w") as f:
            f.write(config)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self) -> None:
        """Starts the process without waiting for it to serve."""
        assert not self.alive(), "already running"
        binary = mnemod_binary()
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"mnemod binary not found at {binary} (set MNEMOD_BIN)")
        if os.path.exists(self.sock):
            os.unlink(self.sock)  # a kill -9 leaves the file behind
        log = open(self.log_path, "ab")
        log.write(f"--- start {self.starts} at {time.time():.3f}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [binary, "--socket", self.sock, "--data-dir", self.data_dir, "--config", self.config_path,
             "--log-level", "info", *self.args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=self._limits if self.nofile else None,
        )
        log.close()
        self.starts += 1

    def _limits(self) -> None:
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def start(self, timeout: float = 30.0) -> "Daemon":
        self.spawn()
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mnemod exited with {self.proc.returncode} at start:\n{self.log_tail()}")
            try:
                with Client(self.sock, agent="probe", timeout=5) as c:
                    if c.health()["status"] == "ok":
                        return self
            except (MnemoError, OSError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.kill9()
                raise RuntimeError(f"mnemod did not answer admin.health within {timeout} s:\n{self.log_tail()}")
            time.sleep(0.02)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def restart(self) -> "Daemon":
        self.kill9()
        return self.start()

    def client(self, agent: str = "hardening", timeout: Optional[float] = 15.0) -> Client:
        return Client(self.sock, agent=agent, timeout=timeout)

    def log_tail(self, n: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- /proc ------------------------------------------------------------------------------
    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def thread_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))


def new_workdir(tag: str) -> str:
    # Short paths: a Unix socket path must fit in 108 bytes.
    return tempfile.mkdtemp(prefix=f"mh-{tag}-", dir="/tmp")


# -- SQLite checks ------------------------------------------------------------------------------

def sqlite_files(data_dir: str) -> List[str]:
    out = []
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            if name.endswith(".sqlite"):
                out.append(os.path.join(root, name))
    return sorted(out)


def integrity_check_copies(data_dir: str, scratch: str) -> Dict[str, str]:
    """``PRAGMA integrity_check`` of every .sqlite file in ``data_dir``, run on a copy (the
    database and its -wal) so that the daemon's own recovery is left untouched.
    Returns {file name: result text} ("ok" when sound)."""
    results: Dict[str, str] = {}
    os.makedirs(scratch, exist_ok=True)
    for path in sqlite_files(data_dir):
        name = os.path.basename(path)
        dst = os.path.join(scratch, name)
        for suffix in ("", "-wal"):
            if os.path.exists(dst + suffix):
                os.unlink(dst + suffix)
            if os.path.exists(path + suffix):
                shutil.copyfile(path + suffix, dst + suffix)
        if os.path.exists(dst + "-shm"):
            os.unlink(dst + "-shm")
        try:
            con = sqlite3.connect(dst)
            try:
                rows = con.execute("PRAGMA integrity_check").fetchall()
                results[name] = "\n".join(str(r[0]) for r in rows)
            finally:
                con.close()
        except sqlite3.Error as e:
            results[name] = f"cannot open: {e}"
    return results


# -- raw sockets ------------------------------------------------------------------------------

class Raw:
    """A raw connection for framing-level tests: send bytes, read reply lines."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = bytearray()
        self.eof = False

    def send(self, data: bytes) -> None:
        self.s.sendall(data)

    def request(self, rid: Any, method: str, params: Optional[Dict[str, Any]] = None) -> None:
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(json.dumps(msg).encode() + b"\n")

    def read_line(self, timeout: float = 5.0) -> Optional[bytes]:
        """One line (without the newline), or None at EOF. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[: nl + 1]
                return line
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0 or not self._receive(left):
                raise TimeoutError("no line in time")

    def read_json(self, timeout: float = 5.0) -> Any:
        line = self.read_line(timeout)
        return None if line is None else json.loads(line)

    def wait_closed(self, timeout: float) -> bool:
        """Drain until EOF; True if the peer closed within ``timeout``."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            left = deadline - time.monotonic()
            if left <= 0 or not self._receive(left):
                return False
        return True

    def _receive(self, timeout: float) -> bool:
        """Appends what arrives within ``timeout`` to the buffer (or notes EOF, a reset
        counting as one); False if nothing came in time."""
        self.s.settimeout(timeout)
        try:
            chunk = self.s.recv(1 << 16)
        except socket.timeout:
            return False
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        else:
            self.buf += chunk
        return True

    def close(self) -> None:
        try:
            self.s.close()
        except OSError:
            pass


def hello(raw: Raw, agent: str = "raw") -> Dict[str, Any]:
    raw.request(0, "session.hello", {"agent": agent})
    reply = raw.read_json()
    assert reply is not None and "result" in reply, f"hello failed: {reply}"
    return reply


# -- statistics ----------------------------------------------------------------------------

def wait_until(condition, timeout: float = 10.0) -> bool:
    """Polls `condition` every 10 ms until it holds (True) or `timeout` seconds passed
    (False): for a test that waits for something to happen, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def open_connections(raw: Raw) -> int:
    """The connections mnemod holds, `raw`'s own included (admin.stats through it)."""
    raw.request(990, "admin.stats")
    return raw.read_json(5)["result"]["connections"]["current"]


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def can_mount_tmpfs() -> Optional[str]:
    """None if this process may mount a tmpfs, else the reason it may not."""
    if os.geteuid() != 0:
        return "not root: cannot mount a tmpfs"
    probe = tempfile.mkdtemp(prefix="mh-probe-", dir="/tmp")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return f"mount -t tmpfs not permitted: {r.stderr.strip() or r.returncode}"
        subprocess.run(["umount", probe], capture_output=True)
        return None
    finally:
        shutil.rmtree(probe, ignore_errors=True)
