"""Bit rot: one flipped bit or one truncation in one stored file, then a start.

A daemon in ``strict`` mode is filled through every tier (wm.set, ep.append, sem.upsert
with explicit vectors; each mutation also writes the audit tier) and stopped with SIGTERM:
the "clean" baseline (checkpointed databases, empty -wal files, a snapshot and a log). A
copy of it is started again, written some more and killed with SIGKILL: the "killed"
baseline, whose -wal files hold committed frames and whose log holds records no snapshot
covers. The expected state of each baseline is what an undamaged copy reads back after a
start: every wm key, every ep record (ep.query), every sem record (sem.get), sem.search
by vector over each collection (catches a damaged vector), ep.search by keyword (catches a
damaged full-text index), audit.query of the fill's namespaces; it must hold every
acknowledged write.

Each trial copies a baseline, damages one file (journal-*.log, snapshot-*.mnemo, the three
.sqlite files, and their -wal files when not empty; never -shm or LOCK): a random bit of a
random byte is flipped, or the file is cut at a random offset. Offsets in journal and
snapshot files fall mostly inside the written records (the rest in the zero-filled
reserve). `mnemo check --data-dir` runs on the damaged copy first (its verdict is
recorded), then mnemod starts on it and the trial is classified:

- detected: mnemod refused to start (exit 65, or another non-zero exit with a message),
  or admin.health says "degraded", or a read answers CORRUPT;
- harmless: it serves, and the whole expected state reads back identical;
- SILENT: it serves "ok" and some acknowledged data is missing or different.

Kinds are taken in turn (journal, snapshot, each database, each -wal), so that every kind
gets trials. test_bitrot_journal_files fails on any silent loss in journal or snapshot
files; test_bitrot_sqlite_files on any in the databases or their -wal files, listing
each case (file, offset, bit or cut, what differed). A hang at start or a daemon that dies
while serving fails both.

Knobs: MNEMO_BITROT_TRIALS (default 30; 300 with MNEMO_HARDENING_LONG=1),
MNEMO_HARDENING_SEED.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import struct
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import pytest

import powerloss
from harness import SETTINGS, Daemon, _env_int, new_workdir
from mnemo_client import Client, MnemoError

TRIALS = _env_int("MNEMO_BITROT_TRIALS", 300 if SETTINGS.long else 30)
DIMS = 32
CONFIG = ('durability = "strict"\nthreads = 2\n'
          "[working]\nsnapshot_bytes = 1048576\n")   # the least: the baseline holds a snapshot and a log
KINDS = ["journal", "snapshot", "episodic.sqlite", "semantic.sqlite", "audit.sqlite",
         "episodic.sqlite-wal", "semantic.sqlite-wal", "audit.sqlite-wal"]
JOURNAL_KINDS = ("journal", "snapshot")
SEARCH_WORDS = ["alpha", "lease", "nightly", "rollback", "zulu"]
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu deploy rollback cache queue worker "
         "lease fence token nightly staging").split()


def kind_of(rel: str) -> Optional[str]:
    base = os.path.basename(rel)
    if rel.startswith("working/") and base.startswith("journal-") and base.endswith(".log"):
        return "journal"
    if rel.startswith("working/") and base.startswith("snapshot-") and base.endswith(".mnemo"):
        return "snapshot"
    if base in ("episodic.sqlite", "semantic.sqlite", "audit.sqlite",
                "episodic.sqlite-wal", "semantic.sqlite-wal", "audit.sqlite-wal") and "/" not in rel:
        return base
    return None


# -- filling and reading ------------------------------------------------------------------------

def unit_vector(rng: random.Random) -> List[float]:
    v = [rng.gauss(0.0, 1.0) for _ in range(DIMS)]
    n = sum(x * x for x in v) ** 0.5
    return [round(x / n, 6) for x in v]


def fill(c: Client, rng: random.Random, tag: str, n_wm: int, n_ep: int, n_sem: int) -> Dict[str, Any]:
    """Writes through every tier; returns what was acknowledged."""
    acked: Dict[str, Any] = {"wm": {}, "ep": {}, "sem": {}}
    calls: List[Tuple[str, Dict[str, Any]]] = []
    for i in range(n_wm):
        k = f"k{rng.randrange(120)}"
        value = {"tag": tag, "i": i, "text": " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 30))),
                 "pad": "p" * rng.randrange(1000, 3000)}   # enough journal for a snapshot
        calls.append(("wm.set", {"ns": "bitrot/wm", "key": k, "value": value}))
    for i in range(n_ep):
        content = f"{tag} {i} " + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 40)))
        calls.append(("ep.append", {"ns": f"bitrot/ep/{rng.choice('ab')}", "kind": "step", "content": content,
                                    "tags": [tag, rng.choice(WORDS)], "data": {"i": i, "tag": tag}}))
    for i in range(n_sem):
        rid = f"s{rng.randrange(200)}"
        text = f"{tag} {i} " + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 20)))
        calls.append(("sem.upsert", {"ns": "bitrot/sem", "id": rid, "text": text, "vector": unit_vector(rng),
                                     "tags": [tag], "data": {"i": i}}))
    rng.shuffle(calls)
    for start in range(0, len(calls), 50):
        part = calls[start:start + 50]
        for (method, params), r in zip(part, c.pipeline(part)):
            if isinstance(r, Exception):
                raise AssertionError(f"fill: {method} {params.get('ns')}: {r!r}")
            if method == "wm.set":
                acked["wm"][params["key"]] = params["value"]
            elif method == "ep.append":
                acked["ep"][r["id"]] = params["content"]
            else:
                acked["sem"][params["id"]] = params["text"]
    return acked


VOLATILE = ("age_ms", "uptime_ms")


def strip(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in VOLATILE}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v


class ReadFailed(Exception):
    def __init__(self, what: str, error: Exception) -> None:
        super().__init__(f"{what}: {error!r}")
        self.what = what
        self.error = error


def _call(c: Client, what: str, method: str, params: Dict[str, Any]) -> Any:
    try:
        return c.call(method, params)
    except MnemoError as e:
        raise ReadFailed(what, e) from e


def found(c: Client, method: str, ns: str, field: str, names: List[str]) -> Dict[str, Any]:
    """``method`` for each name in one pipeline: the replies of those found, by name."""
    out = {}
    for name, g in zip(names, c.pipeline([(method, {"ns": ns, field: name}) for name in names])):
        if isinstance(g, Exception):
            raise ReadFailed(f"{method} {name}", g)
        if g.get("found"):
            out[name] = g
    return out


def read_state(c: Client, query_vectors: List[List[float]]) -> Dict[str, Any]:
    """Everything the fill stored, as the daemon serves it (volatile fields removed)."""
    state: Dict[str, Any] = {}
    state["wm"] = found(c, "wm.get", "bitrot/wm", "key", [f"k{i}" for i in range(120)])
    records: List[Any] = []
    cursor = None
    for _ in range(1000):
        params: Dict[str, Any] = {"ns": "bitrot/ep", "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = _call(c, "ep.query", "ep.query", params)
        records += page["records"]
        cursor = page.get("cursor")
        if not cursor or not page["records"]:
            break
    state["ep"] = records
    state["sem"] = found(c, "sem.get", "bitrot/sem", "id", [f"s{i}" for i in range(200)])
    state["sem.search"] = [_call(c, "sem.search", "sem.search", {"ns": "bitrot/sem", "vector": v, "k": 1000})["hits"]
                           for v in query_vectors]
    state["ep.search"] = [_call(c, f"ep.search {w}", "ep.search", {"ns": "bitrot/ep", "text": w, "limit": 1000,
                                                                     "mode": "keyword"})["hits"]
                          for w in SEARCH_WORDS]
    entries: List[Any] = []
    seen = set()
    since = None
    for _ in range(1000):
        params = {"ns": "bitrot", "limit": 1000}
        if since:
            params["since"] = since
        page = _call(c, "audit.query", "audit.query", params)["entries"]
        fresh = [e for e in page if e["id"] not in seen]
        for e in fresh:
            seen.add(e["id"])
        entries += fresh
        if not fresh or len(page) < 1000:
            break
        since = page[-1]["at"]
    state["audit"] = entries
    return strip(state)


def first_difference(a: Any, b: Any, path: str) -> str:
    """Where two JSON values first differ, e.g. "ep.search[0][3].score: expected 1.5, got 1.25"."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if a.get(k, "<absent>") != b.get(k, "<absent>"):
                return first_difference(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return first_difference(x, y, f"{path}[{i}]")
        return f"{path}: {len(b)} items, expected {len(a)}"
    return f"{path}: expected {json.dumps(a)[:120]}, got {json.dumps(b)[:120]}"


def diff_states(want: Dict[str, Any], got: Dict[str, Any]) -> List[str]:
    """What differs, briefly (counts per section and the first difference)."""
    out: List[str] = []
    for section in want:
        a, b = want[section], got.get(section)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            missing = sorted(set(a) - set(b))
            extra = sorted(set(b) - set(a))
            changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
            out.append(f"{section}: {len(missing)} missing {missing[:5]}, {len(changed)} changed {changed[:5]}"
                       + (f", {len(extra)} unexpected {extra[:5]}" if extra else ""))
        elif isinstance(a, list) and isinstance(b, list):
            n = sum(1 for x, y in zip(a, b) if x != y) + abs(len(a) - len(b))
            out.append(f"{section}: {len(b)} items (expected {len(a)}), {n} differ")
        out.append("  first difference: " + first_difference(a, b, section))
    return out


# -- baselines ------------------------------------------------------------------------------------

@dataclass
class Baseline:
    name: str
    data_dir: str
    expected: Dict[str, Any]
    files: Dict[str, List[str]]   # kind -> relative paths


@dataclass
class Trial:
    n: int
    baseline: str
    kind: str
    rel: str
    damage: str          # "bit 3 of byte 1234" | "cut at 1234"
    size: int
    check_code: int = -1
    check_out: str = ""
    exit_code: Optional[int] = None   # when mnemod refused to start
    outcome: str = ""    # refused | degraded | corrupt_on_read | harmless | SILENT | hang | died
    detail: str = ""


@dataclass
class Results:
    trials: List[Trial] = field(default_factory=list)
    workdir: str = ""
    seconds: float = 0.0


def daemon(workdir: str, data_dir: str) -> Daemon:
    """A daemon on ``data_dir`` (no shim) that waits while the binary is being relinked."""
    os.makedirs(workdir, exist_ok=True)
    return powerloss.make_shim_daemon(workdir, CONFIG, None, data_dir=data_dir)


def snapshot_files(data_dir: str) -> Dict[str, List[str]]:
    files: Dict[str, List[str]] = defaultdict(list)
    for root, _dirs, names in os.walk(data_dir):
        for name in names:
            rel = os.path.relpath(os.path.join(root, name), data_dir)
            k = kind_of(rel)
            if k and os.path.getsize(os.path.join(data_dir, rel)) > 0:
                files[k].append(rel)
    return files


def make_baselines(workdir: str, rng: random.Random, query_vectors: List[List[float]]) -> List[Baseline]:
    clean = os.path.join(workdir, "clean")
    d = daemon(os.path.join(workdir, "fill"), clean)
    try:
        d.start()
        with d.client("bitrot-fill") as c:
            acked = fill(c, rng, "first", n_wm=700, n_ep=400, n_sem=250)
    finally:
        code = d.stop()
    assert code == 0, f"mnemod did not stop cleanly after the fill (exit {code}):\n{d.log_tail()}"
    killed = os.path.join(workdir, "killed")
    shutil.copytree(clean, killed)
    d2 = daemon(os.path.join(workdir, "fill"), killed)
    try:
        d2.start()
        with d2.client("bitrot-fill") as c:
            more = fill(c, rng, "second", n_wm=150, n_ep=150, n_sem=80)
    finally:
        d2.kill9()
    out = []
    for name, path, ack in (("clean", clean, acked), ("killed", killed, merge(acked, more))):
        expected = reference_state(workdir, path, name, query_vectors)
        problems = acked_missing(expected, ack)
        assert not problems, f"the undamaged {name} baseline does not read back what was acknowledged:\n" + "\n".join(problems[:20])
        out.append(Baseline(name, path, expected, snapshot_files(path)))
    return out


def merge(a: Dict[str, Any], b: Dict[str, Any]) -> Dict[str, Any]:
    return {k: {**a[k], **b[k]} for k in a}


def reference_state(workdir: str, data_dir: str, name: str, query_vectors: List[List[float]]) -> Dict[str, Any]:
    """What an undamaged copy of the baseline reads back after a start (twice: it must be
    reproducible)."""
    states = []
    for i in range(2):
        ref = os.path.join(workdir, f"ref-{name}-{i}")
        shutil.copytree(data_dir, os.path.join(ref, "data"))
        d = daemon(ref, os.path.join(ref, "data"))
        try:
            d.start()
            with d.client("bitrot-check") as c:
                states.append(read_state(c, query_vectors))
        finally:
            d.kill9()
        shutil.rmtree(ref, ignore_errors=True)
    assert states[0] == states[1], "an undamaged copy does not read back the same twice:\n" + "\n".join(diff_states(states[0], states[1]))
    return states[0]


def acked_missing(state: Dict[str, Any], acked: Dict[str, Any]) -> List[str]:
    out = []
    for k, v in acked["wm"].items():
        if state["wm"].get(k, {}).get("value") != v:
            out.append(f"wm {k}")
    contents = {r["id"]: r["content"] for r in state["ep"]}
    for rid, content in acked["ep"].items():
        if contents.get(rid) != content:
            out.append(f"ep {rid}")
    for rid, text in acked["sem"].items():
        if state["sem"].get(rid, {}).get("text") != text:
            out.append(f"sem {rid}")
    return out


# -- damage and classification ---------------------------------------------------------------------

def used_end(path: str) -> int:
    """The end of the written records of a journal or snapshot file (its last non-zero byte)."""
    with open(path, "rb") as f:
        data = f.read()
    return len(data.rstrip(b"\0"))


def damage(path: str, kind: str, rng: random.Random) -> str:
    size = os.path.getsize(path)
    if kind in JOURNAL_KINDS and rng.random() < 0.85:
        end = max(1, used_end(path))
        off = rng.randrange(end)
    else:
        off = rng.randrange(size)
    if rng.random() < 0.3:
        os.truncate(path, off)
        return f"cut at {off} (of {size})"
    bit = rng.randrange(8)
    with open(path, "r+b") as f:
        f.seek(off)
        (b,) = struct.unpack("B", f.read(1))
        f.seek(off)
        f.write(bytes([b ^ (1 << bit)]))
    return f"bit {bit} of byte {off} (of {size})"


def run_trial(t: Trial, base: Baseline, workdir: str, rng: random.Random, query_vectors: List[List[float]]) -> None:
    tdir = os.path.join(workdir, f"t{t.n}")
    data = os.path.join(tdir, "data")
    shutil.copytree(base.data_dir, data)
    t.damage = damage(os.path.join(data, t.rel), t.kind, rng)
    t.check_code, out = powerloss.mnemo_check(data)
    t.check_out = out[-600:]
    d = daemon(tdir, data)
    keep = False
    try:
        try:
            health = powerloss.start_any(d, timeout=30)
        except powerloss.Refused as e:
            has_message = any(w in e.log_tail.lower() for w in ("error", "critical", "refuse", "damaged", "corrupt"))
            t.outcome = "refused" if (e.code == 65 or (e.code != 0 and has_message)) else "refused_silently"
            t.exit_code = e.code
            t.detail = f"exit {e.code}: " + last_line(e.log_tail)
            keep = t.outcome != "refused"
            return
        except TimeoutError as e:
            t.outcome, t.detail, keep = "hang", str(e)[-300:], True
            return
        if health.get("status") != "ok":
            t.outcome, t.detail = "degraded", json.dumps(health.get("degraded"))[:200]
            return
        try:
            with d.client("bitrot-check") as c:
                got = read_state(c, query_vectors)
        except ReadFailed as e:
            code = getattr(e.error, "data", None) or {}
            t.outcome = "corrupt_on_read" if "CORRUPT" in repr(e.error) or (isinstance(code, dict) and code.get("code") == "CORRUPT") else "read_error"
            t.detail = str(e)[:300]
            keep = t.outcome != "corrupt_on_read"
            return
        except (OSError, TimeoutError, MnemoError) as e:
            t.outcome, t.detail, keep = ("died" if not d.alive() else "read_error"), repr(e)[:300], True
            return
        differences = diff_states(base.expected, got)
        if not differences:
            t.outcome = "harmless"
        else:
            t.outcome, t.detail, keep = "SILENT", "\n".join(differences), True
    finally:
        d.kill9()
        if keep:
            ev = os.path.join(workdir, "evidence", f"trial-{t.n}")
            os.makedirs(os.path.dirname(ev), exist_ok=True)
            shutil.move(tdir, ev)
        else:
            shutil.rmtree(tdir, ignore_errors=True)


def last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:400] if lines else ""


DETECTED = ("refused", "degraded", "corrupt_on_read")


@pytest.fixture(scope="module")
def bitrot() -> Results:
    started = time.monotonic()
    rng = random.Random(f"{SETTINGS.seed}:bitrot")
    workdir = new_workdir("bitrot")
    res = Results(workdir=workdir)
    query_vectors = [unit_vector(random.Random(i)) for i in range(3)]
    try:
        baselines = make_baselines(workdir, rng, query_vectors)
        for n in range(TRIALS):
            kind = KINDS[n % len(KINDS)]
            choices = [b for b in baselines if b.files.get(kind)]
            if not choices:   # e.g. no -wal with content, no snapshot
                kind = rng.choice([k for k in KINDS if any(b.files.get(k) for b in baselines)])
                choices = [b for b in baselines if b.files.get(kind)]
            base = rng.choice(choices)
            rel = rng.choice(sorted(base.files[kind]))
            t = Trial(n, base.name, kind, rel, "", os.path.getsize(os.path.join(base.data_dir, rel)))
            run_trial(t, base, workdir, rng, query_vectors)
            res.trials.append(t)
    except BaseException:
        print(f"\n[hardening] bitrot: kept {workdir}")
        raise
    res.seconds = time.monotonic() - started
    print_summary(res)
    yield res
    if os.path.isdir(os.path.join(workdir, "evidence")):
        print(f"\n[hardening] bitrot: kept {workdir} (the damaged copies of the failing trials in evidence/)")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def counts(trials: List[Trial]) -> Dict[str, int]:
    c = Counter(t.outcome for t in trials)
    return {"detected": sum(c[o] for o in DETECTED), "harmless": c["harmless"], "silent": c["SILENT"],
            "other": sum(v for k, v in c.items() if k not in DETECTED + ("harmless", "SILENT"))}


def by_kind(trials: List[Trial]) -> Dict[str, Dict[str, Any]]:
    """Per file kind: outcomes (flips and cuts apart) and how `mnemo check` judged them."""
    out: Dict[str, Dict[str, Any]] = {}
    for k in KINDS:
        mine = [t for t in trials if t.kind == k]
        if mine:
            c = Counter(("cut:" if t.damage.startswith("cut") else "flip:") + t.outcome for t in mine)
            exits = Counter(t.exit_code for t in mine if t.exit_code is not None)
            out[k] = {"trials": len(mine), **dict(sorted(c.items())),
                      **({"refusal_exit_codes": dict(exits)} if exits else {}),
                      "check_flagged": sum(1 for t in mine if t.check_code != 0),
                      "check_missed": sum(1 for t in mine if t.check_code == 0 and t.outcome != "harmless"),
                      "check_alarm_on_harmless": sum(1 for t in mine if t.check_code != 0 and t.outcome == "harmless")}
    return out


def print_summary(res: Results) -> None:
    c = counts(res.trials)
    kinds = " ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in by_kind(res.trials).items())
    print(f"\n[hardening] bitrot: trials={len(res.trials)} detected={c['detected']} harmless={c['harmless']} "
          f"silent={c['silent']} other={c['other']} (by file kind {kinds}) seconds={res.seconds:.1f}", flush=True)


def describe(t: Trial) -> str:
    return (f"trial {t.n} [{t.baseline}] {t.rel}: {t.damage}; mnemo check exit {t.check_code}; {t.outcome}"
            + (f"\n    " + t.detail.replace("\n", "\n    ") if t.detail else ""))


def _assert_part(bitrot: Results, kinds: Tuple[str, ...], label: str, report) -> None:
    mine = [t for t in bitrot.trials if t.kind in kinds]
    c = counts(mine)
    report.record(f"bitrot[{label}]", runs=len(mine), operations=len(mine), faults=len(mine),
                  data_lost=c["silent"], detected=c["detected"], harmless=c["harmless"], silent=c["silent"],
                  other=c["other"], by_kind=by_kind(mine),
                  check_exit_codes=dict(Counter(t.check_code for t in mine)),
                  silent_cases=[f"{t.baseline}:{t.rel}: {t.damage}" for t in mine if t.outcome == "SILENT"])
    bad = [t for t in mine if t.outcome not in DETECTED + ("harmless",)]
    silent = [t for t in bad if t.outcome == "SILENT"]
    assert not bad, (f"{len(silent)} silent losses and {len(bad) - len(silent)} other failures (hang, crash, "
                     f"refusal without a message) in {label} files out of {len(mine)} trials; the damaged copies "
                     f"are in {bitrot.workdir}/evidence:\n" + "\n".join(describe(t) for t in bad))


def test_bitrot_journal_files(bitrot, report):
    """Journal and snapshot files: every damage is detected (refusal) or harmless."""
    if TRIALS >= len(KINDS):
        assert any(t.kind == "journal" for t in bitrot.trials) and any(t.kind == "snapshot" for t in bitrot.trials)
    _assert_part(bitrot, JOURNAL_KINDS, "journal", report)


def test_bitrot_sqlite_files(bitrot, report):
    """The databases and their -wal files: every damage is detected (degraded, refused,
    CORRUPT on read) or harmless."""
    _assert_part(bitrot, tuple(k for k in KINDS if k not in JOURNAL_KINDS), "sqlite", report)
