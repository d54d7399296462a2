"""Power-loss simulation for the hardening suite.

``unsynced.c`` (an LD_PRELOAD shim, compiled here at run time) logs, for every file under
$MNEMO_POWERLOSS_DIR that mnemod changes, the pre-image of each change and the start and
end of each fsync/fdatasync. After mnemod is killed, ``pull_plug`` undoes, file by file and
in reverse order, every change logged after the start of that file's last completed sync:
what a disk that kept nothing it was not forced to keep would hold after a power loss at
the moment of the kill. ``covered_after`` then tells whether a write acknowledged at a
given moment was made durable by a sync that began after it.

Not simulated (see README.md): directory operations (create, rename, unlink are durable at
once), a disk that keeps some unsynced writes and not others (reordering, torn sectors),
shared writable mappings (logged as a warning record; the -shm files are not tracked).
"""
from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "unsynced.c"

MAGIC = 0x31474C50
T_PRE, T_SYNC_START, T_SYNC_END, T_UNLINK, T_RENAME, T_MMAP_WRITE, T_OPEN, T_UNTRACKED = 1, 2, 3, 4, 5, 6, 7, 8
F_ZEROS = 1
HEADER = struct.Struct("<IIII")


def find_compiler() -> Optional[str]:
    for name in (os.environ.get("CC") or "", "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compile_shim(out_dir: str) -> str:
    """Builds unsynced.so into ``out_dir``; returns its path. Raises RuntimeError("no C
    compiler ...") when there is none (callers skip), CalledProcessError on a build error."""
    cc = find_compiler()
    if cc is None:
        raise RuntimeError("no C compiler (cc, gcc or clang; or $CC) to build the power-loss shim")
    out = os.path.join(out_dir, "unsynced.so")
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-Wall", "-o", out, str(SOURCE), "-ldl", "-lpthread"],
                   check=True, capture_output=True, text=True)
    return out


def shim_env(shim: str, data_dir: str, log_path: str, base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["LD_PRELOAD"] = shim
    env["MNEMO_POWERLOSS_DIR"] = data_dir
    env["MNEMO_POWERLOSS_LOG"] = log_path
    return env


# -- the log -------------------------------------------------------------------------------------

@dataclass
class Rec:
    pos: int             # index in the log (the order of the operations)
    type: int
    dev: int
    ino: int
    path: str
    # PRE
    op: int = 0
    offset: int = 0
    old_size: int = 0
    old_len: int = 0
    zeros: bool = False
    old: bytes = b""
    # SYNC_*
    sync_id: int = 0
    ns: int = 0
    # RENAME: the new name
    to: str = ""
    flags: int = 0


@dataclass
class Log:
    records: List[Rec]
    bytes_read: int
    cut_bytes: int       # a record cut by the kill (ignored), and anything after it


def _path(buf: bytes, at: int) -> Tuple[str, int]:
    (n,) = struct.unpack_from("<Q", buf, at)
    at += 8
    return buf[at:at + n].decode("utf-8", "surrogateescape"), at + n


def read_log(path: str) -> Log:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return Log([], 0, 0)
    out: List[Rec] = []
    at = 0
    while at + HEADER.size <= len(data):
        magic, typ, n, crc = HEADER.unpack_from(data, at)
        body = data[at + HEADER.size: at + HEADER.size + n]
        if magic != MAGIC or len(body) != n or (zlib.crc32(body) & 0xFFFFFFFF) != crc:
            break
        pos = len(out)
        if typ == T_PRE:
            dev, ino, op, off, size, have, flags = struct.unpack_from("<7Q", body, 0)
            p, q = _path(body, 56)
            zeros = bool(flags & F_ZEROS)
            old = b"" if zeros else body[q:q + have]
            out.append(Rec(pos, typ, dev, ino, p, op=op, offset=off, old_size=size, old_len=have, zeros=zeros, old=old))
        elif typ in (T_SYNC_START, T_SYNC_END):
            dev, ino, sid, ns = struct.unpack_from("<4Q", body, 0)
            p, _ = _path(body, 32)
            out.append(Rec(pos, typ, dev, ino, p, sync_id=sid, ns=ns))
        elif typ in (T_UNLINK, T_RENAME):
            dev, ino = struct.unpack_from("<2Q", body, 0)
            p, q = _path(body, 16)
            to = _path(body, q)[0] if typ == T_RENAME else ""
            out.append(Rec(pos, typ, dev, ino, p, to=to))
        elif typ in (T_MMAP_WRITE, T_UNTRACKED):
            dev, ino = struct.unpack_from("<2Q", body, 0)
            out.append(Rec(pos, typ, dev, ino, _path(body, 16)[0]))
        elif typ == T_OPEN:
            dev, ino, flags, size = struct.unpack_from("<4Q", body, 0)
            out.append(Rec(pos, typ, dev, ino, _path(body, 32)[0], flags=flags, old_size=size))
        at += HEADER.size + n
    return Log(out, at, len(data) - at)


# -- pulling the plug ------------------------------------------------------------------------------

@dataclass
class Sync:
    path: str            # the file's name when it was synced
    start_ns: int
    end_ns: int


@dataclass
class Plug:
    """What ``pull_plug`` did."""
    undone: int = 0                  # pre-images applied
    bytes_restored: int = 0
    files: Dict[str, int] = field(default_factory=dict)     # path -> pre-images undone
    sizes: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # path -> (size before, after)
    gone: int = 0                    # pre-images of files since unlinked (skipped)
    kept: int = 0                    # pre-images covered by a completed sync (durable)
    syncs: List[Sync] = field(default_factory=list)          # completed syncs, in log order
    open_syncs: int = 0              # syncs started and not completed at the kill
    mmap_writes: List[str] = field(default_factory=list)     # writes the log missed (shared writable mappings, ...)
    records: int = 0
    cut_bytes: int = 0

    def last_sync_start(self, match) -> int:
        """The latest start (CLOCK_MONOTONIC ns) of a completed sync of a file whose name
        satisfies ``match`` (0 if none)."""
        return max((s.start_ns for s in self.syncs if match(s.path)), default=0)

    def summary(self) -> str:
        top = sorted(self.files.items(), key=lambda kv: -kv[1])[:6]
        return (f"undone={self.undone} ({self.bytes_restored} bytes) kept={self.kept} gone={self.gone} "
                f"syncs={len(self.syncs)} open_syncs={self.open_syncs} files="
                + ", ".join(f"{os.path.basename(p)}:{n}" for p, n in top))


def pull_plug(log_path: str, data_dir: str) -> Plug:
    """Undoes every change the log holds that no completed sync made durable. Run it only
    after the process that wrote the log is dead."""
    log = read_log(log_path)
    plug = Plug(records=len(log.records), cut_bytes=log.cut_bytes)
    # Files by incarnation: an unlinked inode number may be reused by a new file.
    incarnation: Dict[Tuple[int, int], int] = defaultdict(int)
    pres: Dict[Tuple[int, int, int], List[Rec]] = defaultdict(list)
    starts: Dict[int, Tuple[Tuple[int, int, int], Rec]] = {}
    durable_from: Dict[Tuple[int, int, int], int] = {}   # file -> log position of the covering sync's start
    for r in log.records:
        key = (r.dev, r.ino, incarnation[(r.dev, r.ino)])
        if r.type == T_PRE:
            pres[key].append(r)
        elif r.type == T_SYNC_START:
            starts[r.sync_id] = (key, r)
        elif r.type == T_SYNC_END:
            if r.sync_id in starts:
                skey, s = starts.pop(r.sync_id)
                durable_from[skey] = max(durable_from.get(skey, -1), s.pos)
                plug.syncs.append(Sync(s.path, s.ns, r.ns))
        elif r.type == T_UNLINK:
            incarnation[(r.dev, r.ino)] += 1
        elif r.type == T_MMAP_WRITE:
            plug.mmap_writes.append(r.path)
        elif r.type == T_UNTRACKED:
            plug.mmap_writes.append(r.path + " (descriptor beyond the shim's table)")
    plug.open_syncs = len(starts)
    # Where each live file is now (by inode; renames are durable at once).
    where: Dict[Tuple[int, int], str] = {}
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            p = os.path.join(root, name)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            where[(st.st_dev, st.st_ino)] = p
    for key, recs in pres.items():
        dev, ino, inc = key
        cut = durable_from.get(key, -1)
        todo = [r for r in recs if r.pos > cut]
        plug.kept += len(recs) - len(todo)
        if not todo:
            continue
        path = where.get((dev, ino)) if inc == incarnation[(dev, ino)] else None
        if path is None:
            plug.gone += len(todo)
            continue
        before = os.path.getsize(path)
        fd = os.open(path, os.O_RDWR)
        try:
            for r in reversed(todo):
                if r.old_len:
                    data = bytes(r.old_len) if r.zeros else r.old
                    os.pwrite(fd, data, r.offset)
                    plug.bytes_restored += len(data)
                os.ftruncate(fd, r.old_size)
                plug.undone += 1
        finally:
            os.close(fd)
        plug.files[path] = plug.files.get(path, 0) + len(todo)
        plug.sizes[path] = (before, os.path.getsize(path))
    return plug


# -- starting daemons under the shim ------------------------------------------------------------

def spawn_retrying(argv: Sequence[str], deadline_s: float = 180.0, **popen) -> "subprocess.Popen[bytes]":
    """Popen that waits while the binary is missing or busy (being relinked by a build in
    the same tree)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if not os.access(argv[0], os.X_OK):
                raise FileNotFoundError(errno.ENOENT, "not there (yet)", argv[0])
            return subprocess.Popen(list(argv), **popen)
        except OSError as e:
            if e.errno not in (errno.ETXTBSY, errno.ENOENT) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run_retrying(argv: Sequence[str], timeout: float = 120.0, **kw) -> "subprocess.CompletedProcess[str]":
    """subprocess.run with the same patience for a binary being relinked."""
    deadline = time.monotonic() + 180.0
    while True:
        try:
            if not os.access(argv[0], os.X_OK):
                raise FileNotFoundError(errno.ENOENT, "not there (yet)", argv[0])
            return subprocess.run(list(argv), timeout=timeout, capture_output=True, text=True, **kw)
        except OSError as e:
            if e.errno not in (errno.ETXTBSY, errno.ENOENT) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def mnemo_cli() -> str:
    """The `mnemo` command-line binary next to $MNEMOD_BIN (or $MNEMO_BIN)."""
    from harness import mnemod_binary
    return os.environ.get("MNEMO_BIN") or os.path.join(os.path.dirname(os.path.abspath(mnemod_binary())), "mnemo")


def mnemo_check(data_dir: str) -> Tuple[int, str]:
    """`mnemo check --data-dir DIR`: (exit code, output)."""
    r = run_retrying([mnemo_cli(), "check", "--data-dir", data_dir], timeout=120)
    return r.returncode, (r.stdout + r.stderr).strip()


# -- a daemon under the shim ----------------------------------------------------------------------

def make_shim_daemon(workdir: str, config: str, shim: Optional[str], data_dir: Optional[str] = None):
    """A harness.Daemon whose every start runs under the shim (when ``shim`` is set) with a
    fresh undo log (``d.undo_log``: the one of the latest start), and that waits while the
    binary is being relinked."""
    from harness import Daemon, mnemod_binary

    class ShimDaemon(Daemon):
        def __init__(self) -> None:
            super().__init__(workdir, config=config, data_dir=data_dir)
            self.shim = shim
            self.undo_dir = os.path.join(workdir, "undo")
            if shim:
                os.makedirs(self.undo_dir, exist_ok=True)
                os.makedirs(self.data_dir, exist_ok=True)
            self.undo_log: Optional[str] = None

        def spawn(self) -> None:
            assert not self.alive(), "already running"
            if os.path.exists(self.sock):
                os.unlink(self.sock)
            env = dict(os.environ)
            if self.shim:
                self.undo_log = os.path.join(self.undo_dir, f"undo-{self.starts:04d}.log")
                env = shim_env(self.shim, self.data_dir, self.undo_log, env)
            with open(self.log_path, "ab") as log:
                log.write(f"--- start {self.starts} at {time.time():.3f}"
                          f"{' under the power-loss shim, log ' + str(self.undo_log) if self.shim else ''}\n".encode())
                log.flush()
                self.proc = spawn_retrying(
                    [mnemod_binary(), "--socket", self.sock, "--data-dir", self.data_dir, "--config",
                     self.config_path, "--log-level", "info", *self.args],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
            self.starts += 1

    return ShimDaemon()


class Refused(Exception):
    """mnemod exited at start."""

    def __init__(self, code: int, log_tail: str) -> None:
        super().__init__(f"mnemod exited with {code} at start:\n{log_tail}")
        self.code = code
        self.log_tail = log_tail


def start_any(d, timeout: float = 30.0) -> Dict:
    """Starts ``d`` and returns its first admin.health answer, whatever the status (the
    harness's start waits for "ok" only). Raises Refused if it exits, TimeoutError if it
    does not answer in time (then it is killed)."""
    from mnemo_client import Client, MnemoError
    d.spawn()
    deadline = time.monotonic() + timeout
    while True:
        if d.proc.poll() is not None:
            raise Refused(d.proc.returncode, d.log_tail())
        try:
            with Client(d.sock, agent="probe", timeout=5) as c:
                return c.health()
        except (MnemoError, OSError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            d.kill9()
            raise TimeoutError(f"mnemod did not answer admin.health within {timeout} s:\n{d.log_tail()}")
        time.sleep(0.02)
