"""Fixtures of the security suite: a real mnemod ($MNEMOD_BIN) on a Unix socket in a fresh
/tmp directory, configured with four principals, and a small newline-delimited JSON-RPC
client. Self-contained (standard library and pytest only)."""
from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
TOKENS = {"ops": "ops-secret", "team": "team-secret", "victim": "victim-secret", "bound": "bound-secret"}
FOREIGN_UID = 65534 if os.getuid() != 65534 else 65533   # a uid that is not ours
TEAM_QUOTA = {"working_bytes": 200000, "semantic_records": 50, "episodic_records": 100,
              "episodic_bytes": 100000, "requests_per_second": 200, "connections": 4}
REPORT: List[str] = []


def mnemod_binary() -> str:
    return os.environ.get("MNEMOD_BIN", str(REPO / ".build" / "debug" / "mnemod"))


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def config_text(extra: str = "") -> str:
    quota = ", ".join(f"{k} = {v}" for k, v in TEAM_QUOTA.items())
    return f"""{extra}
[[principals]]
name = "ops"
token_sha256 = "{sha(TOKENS['ops'])}"
grants = [{{ ns = "**", perms = "rwa" }}]

[[principals]]
name = "team"
token_sha256 = "{sha(TOKENS['team'])}"
grants = [{{ ns = "wf/**", perms = "rwa" }}]
quota = {{ {quota} }}

[[principals]]
name = "victim"
token_sha256 = "{sha(TOKENS['victim'])}"
uids = [{os.getuid()}]
grants = [{{ ns = "v/**", perms = "rw" }}]

[[principals]]
name = "bound"
token_sha256 = "{sha(TOKENS['bound'])}"
uids = [{FOREIGN_UID}]
grants = [{{ ns = "**", perms = "rwa" }}]
"""


def report(line: str) -> None:
    REPORT.append(line)
    print("\n[security] " + line, flush=True)


class RpcError(Exception):
    def __init__(self, error: Dict[str, Any]) -> None:
        super().__init__(json.dumps(error)[:600])
        self.error = error
        self.code = error.get("code")
        self.data = error.get("data") or {}
        self.app = self.data.get("code") if isinstance(self.data, dict) else None


class Conn:
    """One connection: ``call`` sends a request and returns its result (RpcError on an error
    object); notifications met on the way are kept in ``events``."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = bytearray()
        self.ids = itertools.count(1)
        self.events: List[Dict[str, Any]] = []

    def send(self, data: bytes) -> None:
        self.s.sendall(data)

    def read(self) -> Optional[Dict[str, Any]]:
        """The next message, or None at EOF (socket.timeout when nothing comes in time)."""
        while b"\n" not in self.buf:
            try:
                chunk = self.s.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        return json.loads(line)

    def reply(self) -> Dict[str, Any]:
        """The next response (notifications go to ``events``)."""
        while True:
            msg = self.read()
            if msg is None:
                raise ConnectionError("mnemod closed the connection")
            if "id" in msg:
                return msg
            self.events.append(msg)

    def call(self, method: str, params: Optional[Dict[str, Any]] = None) -> Any:
        rid = next(self.ids)
        msg: Dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(json.dumps(msg).encode() + b"\n")
        r = self.reply()
        assert r.get("id") == rid, f"reply to {rid} expected, got {r}"
        if "error" in r:
            raise RpcError(r["error"])
        return r["result"]

    def fail(self, method: str, params: Optional[Dict[str, Any]] = None) -> RpcError:
        try:
            result = self.call(method, params)
        except RpcError as e:
            return e
        raise AssertionError(f"{method} {json.dumps(params)[:300]} succeeded ({json.dumps(result)[:300]}); a refusal was expected")

    def hello(self, who: str, token: Optional[str] = None) -> Any:
        return self.call("session.hello", {"agent": f"sec-{who}", "token": token if token is not None else TOKENS[who]})

    def close(self) -> None:
        try:
            self.s.close()
        except OSError:
            pass

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Daemon:
    def __init__(self, extra_config: str = "") -> None:
        self.workdir = tempfile.mkdtemp(prefix="ms-", dir="/tmp")   # short: socket paths <= 108 bytes
        self.sock = os.path.join(self.workdir, "m.sock")
        self.data_dir = os.path.join(self.workdir, "data")
        self.transfer = os.path.join(self.data_dir, "transfer")
        self.outside = os.path.join(self.workdir, "outside")         # a directory the attacks aim at
        os.mkdir(self.outside)
        self.config = os.path.join(self.workdir, "mnemod.toml")
        self.log = os.path.join(self.workdir, "mnemod.log")
        with open(self.config, "w") as f:
            f.write(config_text(extra_config))
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 60.0) -> "Daemon":
        deadline = time.monotonic() + timeout
        while True:   # the binary may be missing or busy for a moment while it is relinked
            binary = mnemod_binary()
            try:
                if not os.access(binary, os.X_OK):
                    raise FileNotFoundError(binary)
                with open(self.log, "ab") as log:
                    self.proc = subprocess.Popen(
                        [binary, "--socket", self.sock, "--data-dir", self.data_dir, "--config", self.config,
                         "--log-level", "warning"],
                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                break
            except OSError as e:
                if e.errno not in (errno.ENOENT, errno.ETXTBSY, errno.EACCES) or time.monotonic() > deadline:
                    raise RuntimeError(f"cannot start {binary} (set MNEMOD_BIN): {e}") from e
                time.sleep(0.5)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mnemod exited with {self.proc.returncode} at start:\n{self.log_tail()}")
            try:
                with self.conn("ops", timeout=5) as c:
                    if c.call("admin.health")["status"] == "ok":
                        return self
            except (OSError, RpcError, ConnectionError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"mnemod did not answer within {timeout} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def connect(self, timeout: float = 10.0) -> Conn:
        return Conn(self.sock, timeout)

    def conn(self, who: str, timeout: float = 10.0) -> Conn:
        """A connection past session.hello as principal ``who``."""
        c = Conn(self.sock, timeout)
        try:
            c.hello(who)
        except BaseException:
            c.close()
            raise
        return c

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def log_tail(self, n: int = 40) -> str:
        try:
            with open(self.log, "rb") as f:
                return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


@pytest.fixture
def daemon(request) -> Iterator[Daemon]:
    """A fresh daemon per test; killed at the end, its directory removed after a pass and
    kept (path printed) after a failure."""
    d = Daemon().start()
    try:
        yield d
    finally:
        d.kill()
        rep = getattr(request.node, "rep_call", None)
        if rep is None or rep.failed:
            print(f"\n[security] kept {d.workdir} (log: {d.log})")
        else:
            shutil.rmtree(d.workdir, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_report_header(config):
    return f"mnemo security: binary={mnemod_binary()}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if REPORT:
        terminalreporter.section("mnemo security summary")
        for line in REPORT:
            terminalreporter.write_line("[security] " + line)
