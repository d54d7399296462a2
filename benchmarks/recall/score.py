#!/usr/bin/env python3
"""Score mnemod's retrieval modes on the labelled recall set (facts.jsonl, questions.jsonl).

Starts a mnemod per embedder configuration on a temporary data dir and socket, loads every
fact with sem.upsert (JSON-RPC batch lines), asks every question with sem.search in each
mode and reports hit@1, hit@10 and MRR@10 next to in-process baselines (TF-IDF; and
all-MiniLM-L6-v2 through sentence-transformers when a Python that has it is given).

Retrievers:
  hash          vector mode, [semantic.embedder] kind = "hash"
  hybrid-hash   hybrid mode, kind = "hash"
  keyword       keyword mode (bm25; the embedder does not matter: run with kind = "hash")
  local-vector  vector mode, kind = "local" (the built-in all-MiniLM-L6-v2)
  hybrid        hybrid mode, kind = "local"
  tfidf         in process: scikit-learn's TfidfVectorizer, else a small TF-IDF written here
  minilm-st     in process: sentence-transformers all-MiniLM-L6-v2 from --model-dir

A retriever whose server feature is missing (mode refused with -32602, kind = "local"
refused at start, ...) is reported as unavailable with the reason. Standard library only
(scikit-learn is used when importable). Every socket read has a timeout; the daemons are
killed at exit.

    python3 benchmarks/recall/score.py --mnemod .build/release/mnemod \\
        --python-st /opt/stref/bin/python --model-dir ~/.cache/mnemo/models/all-MiniLM-L6-v2
"""
from __future__ import annotations

import argparse
import atexit
import datetime as _dt
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
K = 10
ALL = ["hash", "local-vector", "keyword", "hybrid", "hybrid-rrf", "hybrid-hash", "tfidf", "minilm-st"]
SERVER_RUNS = {  # retriever -> (embedder kind, mode, fusion or None for the server's default)
    "hash": ("hash", "vector", None),
    "hybrid-hash": ("hash", "hybrid", None),
    "keyword": ("hash", "keyword", None),
    "local-vector": ("local", "vector", None),
    "hybrid": ("local", "hybrid", None),
    "hybrid-rrf": ("local", "hybrid", "rrf"),
}


class Unavailable(Exception):
    """The retriever cannot run here; the message says why."""


# -- data --------------------------------------------------------------------------------------------
def read_jsonl(path: Path) -> List[Dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def under(ns: str, prefix: str) -> bool:
    return ns == prefix or ns.startswith(prefix + "/")


def metrics(ranked: Sequence[Sequence[str]], targets: Sequence[str]) -> Dict[str, float]:
    n = len(targets)
    h1 = h10 = rr = 0.0
    for ids, t in zip(ranked, targets):
        ids = list(ids)[:K]
        if t in ids:
            r = ids.index(t) + 1
            h1 += r == 1
            h10 += 1
            rr += 1.0 / r
    return {"hit@1": h1 / n, "hit@10": h10 / n, "mrr@10": rr / n}


def halves(ranked: Sequence[Sequence[str]], targets: Sequence[str]) -> Dict[str, float]:
    """MRR@10 on the even- and odd-numbered questions: the fusion weights were chosen on the
    even half, so the odd half is held out."""
    return {"mrr@10_even": metrics(ranked[0::2], targets[0::2])["mrr@10"],
            "mrr@10_odd": metrics(ranked[1::2], targets[1::2])["mrr@10"]}


# -- a minimal JSON-RPC client over the Unix socket (batch lines, a timeout on every read) ----------
class Rpc:
    def __init__(self, path: str, timeout: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1
        self.hello = self.call("session.hello", {"agent": "recall-score", "client": "recall-score/1"})

    def _line(self) -> Any:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)  # socket.timeout after `timeout` seconds
            if not chunk:
                raise ConnectionError("mnemod closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def batch(self, calls: Sequence[Tuple[str, Dict[str, Any]]]) -> List[Dict[str, Any]]:
        """Send the calls as one JSON-RPC batch line; return the responses in call order."""
        reqs = []
        for method, params in calls:
            reqs.append({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
            self.next_id += 1
        self.sock.sendall(json.dumps(reqs, separators=(",", ":")).encode() + b"\n")
        reply = self._line()
        if isinstance(reply, dict):  # the whole batch was refused
            raise RuntimeError(f"batch refused: {reply.get('error')}")
        by_id = {r.get("id"): r for r in reply}
        return [by_id.get(r["id"], {"error": {"code": 0, "message": "no response"}}) for r in reqs]

    def call(self, method: str, params: Dict[str, Any]) -> Any:
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                      "params": params}).encode() + b"\n")
        self.next_id += 1
        reply = self._line()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# -- the daemon --------------------------------------------------------------------------------------
class Daemon:
    """A mnemod on a temporary data dir and socket, configured by a TOML file."""

    live: List["Daemon"] = []

    def __init__(self, binary: str, embedder: Dict[str, str], start_timeout: float) -> None:
        self.tmp = tempfile.mkdtemp(prefix="mnemo-recall-")
        self.sock = os.path.join(self.tmp, "m.sock")
        cfg = os.path.join(self.tmp, "mnemod.toml")
        lines = ['log_level = "warning"', "", "[semantic.embedder]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in embedder.items()]
        Path(cfg).write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.config_text = Path(cfg).read_text(encoding="utf-8")
        self.log_path = os.path.join(self.tmp, "mnemod.log")
        self.log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if k not in ("MNEMO_SOCKET", "MNEMO_DATA_DIR", "MNEMO_CONFIG")}
        self.proc = subprocess.Popen(
            [binary, "--socket", self.sock, "--data-dir", os.path.join(self.tmp, "data"), "--config", cfg],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        Daemon.live.append(self)
        deadline = time.monotonic() + start_timeout
        while True:
            if self.proc.poll() is not None:
                self.log.close()
                msg = Path(self.log_path).read_text(errors="replace").strip()
                self.stop()
                raise Unavailable(f"mnemod exited with {self.proc.returncode} at start: {msg[-400:]}")
            try:
                rpc = Rpc(self.sock, 5)
                rpc.call("admin.health", {})
                rpc.close()
                return
            except (OSError, RuntimeError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise Unavailable(f"mnemod did not answer within {start_timeout:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self in Daemon.live:
            Daemon.live.remove(self)


@atexit.register
def _kill_daemons() -> None:
    for d in list(Daemon.live):
        d.stop()


def _err_text(err: Dict[str, Any]) -> str:
    data = err.get("data") or {}
    return f"{err.get('code')} {err.get('message')}" + (f" ({data})" if data else "")


def load_facts(rpc: Rpc, facts: Sequence[Dict[str, Any]], batch: int) -> Dict[str, Any]:
    t0 = time.monotonic()
    truncated = 0
    for i in range(0, len(facts), batch):
        chunk = facts[i:i + batch]
        calls = [("sem.upsert", {"ns": f["ns"], "id": f["id"], "text": f["text"], "tags": f.get("tags") or []})
                 for f in chunk]
        for f, r in zip(chunk, rpc.batch(calls)):
            if "error" in r:
                raise Unavailable(f"sem.upsert of {f['id']} failed: {_err_text(r['error'])}")
            truncated += bool((r.get("result") or {}).get("truncated"))
    out: Dict[str, Any] = {"load_s": round(time.monotonic() - t0, 2)}
    if truncated:
        out["facts_truncated"] = truncated
    return out


def run_mode(rpc: Rpc, questions: Sequence[Dict[str, Any]], mode: str, batch: int,
             fallback_without_mode: bool, fusion: Optional[str] = None) -> Tuple[List[List[str]], Dict[str, Any]]:
    """Every question through sem.search in ``mode``; the ranked ids and notes."""
    notes: Dict[str, Any] = {}
    send_mode: Optional[str] = mode
    ranked: List[List[str]] = []
    t0 = time.monotonic()
    i = 0
    while i < len(questions):
        chunk = questions[i:i + batch]
        calls = []
        for q in chunk:
            p: Dict[str, Any] = {"ns": q["ns_prefix"], "text": q["q"], "k": K}
            if send_mode is not None:
                p["mode"] = send_mode
            if fusion is not None:
                p["fusion"] = fusion
            calls.append(("sem.search", p))
        replies = rpc.batch(calls)
        errs = [r["error"] for r in replies if "error" in r]
        if errs:
            e = errs[0]
            if e.get("code") == -32602 and (e.get("data") or {}).get("field") == "mode":
                if fallback_without_mode and send_mode is not None and not ranked:
                    # A daemon without modes searches by vector only: the same retriever.
                    send_mode = None
                    notes["note"] = ("this daemon refuses `mode` (-32602, unknown parameter): "
                                     "sent without it (a daemon without modes searches by vector)")
                    notes["mode_error"] = _err_text(e)
                    continue
                raise Unavailable(f"sem.search mode={mode!r} refused: {_err_text(e)}")
            raise Unavailable(f"sem.search failed: {_err_text(e)}")
        for r in replies:
            res = r["result"]
            ranked.append([h["id"] for h in res.get("hits", [])])
            if res.get("truncated"):
                notes["truncated_queries"] = notes.get("truncated_queries", 0) + 1
            if res.get("skipped"):
                notes.setdefault("skipped", sorted(set(res["skipped"])))
        i += batch
    notes["search_s"] = round(time.monotonic() - t0, 2)
    return ranked, notes


def server_retrievers(args: argparse.Namespace, wanted: Sequence[str], facts: Sequence[Dict[str, Any]],
                      questions: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    binary = args.mnemod
    for kind in ("hash", "local"):
        names = [n for n in wanted if n in SERVER_RUNS and SERVER_RUNS[n][0] == kind]
        if not names:
            continue
        if not os.access(binary, os.X_OK):
            for n in names:
                out[n] = {"status": "unavailable", "reason": f"mnemod binary not found at {binary}"}
            continue
        embedder = {"kind": kind}
        if kind == "local" and args.model_dir_given:
            embedder["model_dir"] = args.model_dir
        print(f"[{kind}] starting mnemod with [semantic.embedder] {embedder}", file=sys.stderr)
        try:
            d = Daemon(binary, embedder, args.start_timeout)
        except Unavailable as e:
            for n in names:
                out[n] = {"status": "unavailable", "reason": str(e)}
            continue
        rpc = None
        try:
            rpc = Rpc(d.sock, args.timeout)
            server = rpc.hello.get("server", {})
            load = load_facts(rpc, facts, args.batch)
            print(f"[{kind}] loaded {len(facts)} facts in {load['load_s']} s", file=sys.stderr)
            for n in names:
                mode, fusion = SERVER_RUNS[n][1], SERVER_RUNS[n][2]
                try:
                    ranked, notes = run_mode(rpc, questions, mode, args.batch, fallback_without_mode=(mode == "vector"),
                                             fusion=fusion)
                except Unavailable as e:
                    out[n] = {"status": "unavailable", "reason": str(e)}
                    print(f"[{kind}] {n}: unavailable: {e}", file=sys.stderr)
                    continue
                m = {**metrics(ranked, [q["target"] for q in questions]), **halves(ranked, [q["target"] for q in questions])}
                out[n] = {"status": "ok", **m, "embedder": embedder, "mode": mode,
                          "server": server, **load, **notes}
                out[n]["ranked"] = ranked
                print(f"[{kind}] {n}: {fmt_metrics(m)}", file=sys.stderr)
        except Unavailable as e:
            for n in names:
                out.setdefault(n, {"status": "unavailable", "reason": str(e)})
        except (OSError, RuntimeError, ValueError) as e:  # socket timeout, closed connection, bad reply
            for n in names:
                out.setdefault(n, {"status": "unavailable", "reason": f"{type(e).__name__}: {e}"})
        finally:
            if rpc is not None:
                rpc.close()
            d.stop()
    return out


# -- in-process baselines ----------------------------------------------------------------------------
TOKEN = re.compile(r"(?u)\b\w\w+\b")


def rank_by_scores(scores_per_q: Iterable[Sequence[float]], facts: Sequence[Dict[str, Any]],
                   questions: Sequence[Dict[str, Any]]) -> List[List[str]]:
    ranked = []
    for q, scores in zip(questions, scores_per_q):
        cand = [(s, f["id"]) for s, f in zip(scores, facts) if under(f["ns"], q["ns_prefix"])]
        cand.sort(key=lambda x: (-x[0], x[1]))
        ranked.append([i for _, i in cand[:K]])
    return ranked


def tfidf_retriever(facts: Sequence[Dict[str, Any]], questions: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    docs = [f["text"] for f in facts]
    qs = [q["q"] for q in questions]
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore

        vec = TfidfVectorizer(sublinear_tf=True)
        dm = vec.fit_transform(docs)
        qm = vec.transform(qs)
        sims = (qm @ dm.T).toarray()
        impl = "scikit-learn TfidfVectorizer(sublinear_tf=True), cosine"
    except ImportError:
        tok = [Counter(TOKEN.findall(d.lower())) for d in docs]
        df = Counter(t for c in tok for t in c)
        n = len(docs)
        idf = {t: math.log((1 + n) / (1 + c)) + 1 for t, c in df.items()}

        def vec1(c: Counter) -> Dict[str, float]:
            v = {t: (1 + math.log(x)) * idf[t] for t, x in c.items() if t in idf}
            norm = math.sqrt(sum(w * w for w in v.values())) or 1.0
            return {t: w / norm for t, w in v.items()}

        dvs = [vec1(c) for c in tok]
        sims = []
        for q in qs:
            qv = vec1(Counter(TOKEN.findall(q.lower())))
            sims.append([sum(w * dv.get(t, 0.0) for t, w in qv.items()) for dv in dvs])
        impl = "hand-written TF-IDF (sublinear tf, smoothed idf), cosine"
    ranked = rank_by_scores(sims, facts, questions)
    targets = [q["target"] for q in questions]
    return {"status": "ok", **metrics(ranked, targets), **halves(ranked, targets), "impl": impl, "ranked": ranked}


ST_SCRIPT = r"""
import json, sys
from sentence_transformers import SentenceTransformer
model_dir, facts_path, questions_path = sys.argv[1:4]
facts = [json.loads(l) for l in open(facts_path, encoding="utf-8") if l.strip()]
qs = [json.loads(l) for l in open(questions_path, encoding="utf-8") if l.strip()]
m = SentenceTransformer(model_dir, device="cpu")
d = m.encode([f["text"] for f in facts], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
q = m.encode([x["q"] for x in qs], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
sims = q @ d.T
out = []
for i, x in enumerate(qs):
    p = x["ns_prefix"]
    cand = [(float(sims[i, j]), f["id"]) for j, f in enumerate(facts) if f["ns"] == p or f["ns"].startswith(p + "/")]
    cand.sort(key=lambda c: (-c[0], c[1]))
    out.append([c[1] for c in cand[:10]])
print(json.dumps({"ranked": out, "max_seq_length": m.max_seq_length}))
"""


def minilm_retriever(args: argparse.Namespace, facts_path: Path, questions_path: Path,
                     questions: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    py = args.python_st
    if py is None:
        try:
            import sentence_transformers  # type: ignore # noqa: F401
            py = sys.executable
        except ImportError:
            return {"status": "unavailable",
                    "reason": "sentence_transformers is not importable here; pass --python-st PYTHON"}
    if not os.path.isfile(os.path.join(args.model_dir, "config.json")):
        return {"status": "unavailable", "reason": f"no model at {args.model_dir} (--model-dir)"}
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    try:
        p = subprocess.run([py, "-c", ST_SCRIPT, args.model_dir, str(facts_path), str(questions_path)],
                           capture_output=True, text=True, timeout=args.st_timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"status": "unavailable", "reason": f"{py}: {e}"}
    if p.returncode != 0:
        return {"status": "unavailable", "reason": f"{py} exited {p.returncode}: {p.stderr.strip()[-400:]}"}
    res = json.loads(p.stdout.strip().splitlines()[-1])
    targets = [q["target"] for q in questions]
    return {"status": "ok", **metrics(res["ranked"], targets), **halves(res["ranked"], targets),
            "impl": f"sentence-transformers all-MiniLM-L6-v2 from {args.model_dir} (max_seq_length "
                    f"{res['max_seq_length']}), cosine, via {py}", "ranked": res["ranked"]}


# -- report ------------------------------------------------------------------------------------------
def fmt_metrics(m: Dict[str, Any]) -> str:
    return f"hit@1 {m['hit@1']:.3f}  hit@10 {m['hit@10']:.3f}  MRR@10 {m['mrr@10']:.3f}"


DESCRIPTIONS = {
    "hash": "mnemod, vector mode, embedder kind=hash (mnemo-hash-v1)",
    "local-vector": "mnemod, vector mode, embedder kind=local (all-MiniLM-L6-v2)",
    "keyword": "mnemod, keyword mode (FTS5 bm25)",
    "hybrid": "mnemod, hybrid mode (default fusion: minmax, 0.8 vector + 0.2 keyword), embedder kind=local",
    "hybrid-rrf": "mnemod, hybrid mode, fusion rrf (k=60), embedder kind=local",
    "hybrid-hash": "mnemod, hybrid mode (default fusion), embedder kind=hash",
    "tfidf": "in process: TF-IDF cosine",
    "minilm-st": "in process: sentence-transformers all-MiniLM-L6-v2",
}


def markdown(report: Dict[str, Any]) -> str:
    lines = [f"# Recall on the labelled set ({report['date']})", "",
             f"{report['facts']} facts, {report['questions']} questions (each a paraphrase of one fact; "
             f"mean word Jaccard question/target {report['jaccard_mean']:.3f}), k = {K}.", "",
             f"hit@10 is also given for the {report['low_overlap_questions']} questions sharing few words with "
             "their fact (Jaccard < 0.1) and for the others.", "",
             "MRR@10 is also given for the even- and odd-numbered questions: the hybrid fusion's "
             "weights were chosen on the even half, so the odd half is held out.", "",
             "| retriever | what | hit@1 | hit@10 | MRR@10 | MRR@10 even | MRR@10 odd | hit@10 J<0.1 | hit@10 J>=0.1 | notes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in report["order"]:
        r = report["retrievers"][name]
        if r["status"] == "ok":
            note = r.get("note", "")
            if r.get("impl"):
                note = (note + "; " if note else "") + r["impl"]
            split = r.get("hit@10_by_overlap", {})
            cells = " | ".join("-" if split.get(x) is None else f"{split[x]:.3f}" for x in ("low_overlap", "high_overlap"))
            half = " | ".join("-" if r.get(x) is None else f"{r[x]:.3f}" for x in ("mrr@10_even", "mrr@10_odd"))
            lines.append(f"| {name} | {DESCRIPTIONS[name]} | {r['hit@1']:.3f} | {r['hit@10']:.3f} | "
                         f"{r['mrr@10']:.3f} | {half} | {cells} | {note} |")
        else:
            reason = r["reason"].replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {name} | {DESCRIPTIONS[name]} | - | - | - | - | - | - | - | unavailable: {reason} |")
    if "local_vs_minilm_st_same_target_rank" in report:
        lines += ["", "local-vector and minilm-st put the target at the same rank (or both miss it) for "
                  f"{report['local_vs_minilm_st_same_target_rank']} questions."]
    lines += ["", f"Command: `{report['command']}`", ""]
    return "\n".join(lines)


def main() -> int:
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    default_model = os.path.join(xdg, "mnemo", "models", "all-MiniLM-L6-v2")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mnemod", default=".build/release/mnemod",
                    help="mnemod binary (default .build/release/mnemod, relative to the repository root "
                         "if not found from the current directory)")
    ap.add_argument("--model-dir", default=None,
                    help=f"all-MiniLM-L6-v2 directory (default {default_model}); when given it is also "
                         "the local embedder's model_dir")
    ap.add_argument("--python-st", default=None, help="a Python with sentence_transformers for minilm-st")
    ap.add_argument("--facts", default=str(HERE / "facts.jsonl"))
    ap.add_argument("--questions", default=str(HERE / "questions.jsonl"))
    ap.add_argument("--retrievers", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    ap.add_argument("--batch", type=int, default=64, help="calls per batch line (default 64)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for any reply (default 120)")
    ap.add_argument("--start-timeout", type=float, default=60.0, help="seconds for mnemod to start")
    ap.add_argument("--st-timeout", type=float, default=600.0, help="seconds for the minilm-st subprocess")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--name", default=None, help="result file name without extension (default: today's date)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    args.model_dir_given = args.model_dir is not None
    args.model_dir = os.path.abspath(os.path.expanduser(args.model_dir or default_model))
    if not os.path.exists(args.mnemod) and not os.path.isabs(args.mnemod):
        args.mnemod = str(REPO / args.mnemod)
    args.mnemod = os.path.abspath(args.mnemod)
    wanted = [n.strip() for n in args.retrievers.split(",") if n.strip()]
    bad = [n for n in wanted if n not in ALL]
    if bad:
        ap.error(f"unknown retrievers {bad}; choose from {ALL}")

    facts = read_jsonl(Path(args.facts))
    questions = read_jsonl(Path(args.questions))
    sys.path.insert(0, str(HERE))
    from build import jaccard  # the statistic build.py reports

    by_id = {f["id"]: f for f in facts}
    jacs = [jaccard(q["q"], by_id[q["target"]]["text"]) for q in questions]
    jac = sum(jacs) / len(questions)
    low = [j < 0.1 for j in jacs]  # questions sharing few words with their fact

    results: Dict[str, Dict[str, Any]] = {}
    results.update(server_retrievers(args, wanted, facts, questions))
    if "tfidf" in wanted:
        results["tfidf"] = tfidf_retriever(facts, questions)
        print(f"tfidf: {fmt_metrics(results['tfidf'])}", file=sys.stderr)
    if "minilm-st" in wanted:
        print("minilm-st: encoding in a subprocess", file=sys.stderr)
        results["minilm-st"] = minilm_retriever(args, Path(args.facts), Path(args.questions), questions)
        r = results["minilm-st"]
        print(f"minilm-st: {fmt_metrics(r) if r['status'] == 'ok' else r['reason']}", file=sys.stderr)

    order = [n for n in ALL if n in results]
    date = _dt.date.today().isoformat()
    report = {
        "date": date,
        "facts": len(facts),
        "questions": len(questions),
        "jaccard_mean": round(jac, 4),
        "low_overlap_questions": sum(low),
        "k": K,
        "command": " ".join([os.path.relpath(sys.argv[0]) if os.path.exists(sys.argv[0]) else sys.argv[0]]
                            + sys.argv[1:]),
        "mnemod": args.mnemod,
        "order": order,
        "retrievers": {},
    }
    per_question: Dict[str, List[Optional[int]]] = {}
    targets = [q["target"] for q in questions]
    for n in order:
        r = dict(results[n])
        ranked = r.pop("ranked", None)
        if ranked is not None:
            per_question[n] = [(ids.index(t) + 1 if t in ids[:K] else None) for ids, t in zip(ranked, targets)]
            split = {}
            for name, keep in (("low_overlap", True), ("high_overlap", False)):
                ranks = [rk for rk, lo in zip(per_question[n], low) if lo == keep]
                split[name] = round(sum(rk is not None for rk in ranks) / len(ranks), 4) if ranks else None
            r["hit@10_by_overlap"] = split
        for key in ("hit@1", "hit@10", "mrr@10"):
            if key in r:
                r[key] = round(r[key], 4)
        report["retrievers"][n] = r
    if "local-vector" in per_question and "minilm-st" in per_question:
        same = sum(x == y for x, y in zip(per_question["local-vector"], per_question["minilm-st"]))
        report["local_vs_minilm_st_same_target_rank"] = f"{same}/{len(targets)}"
    report["rank_of_target"] = per_question  # per question, in questions.jsonl order (None: not in top 10)
    md = markdown(report)
    print(md)
    if not args.no_write:
        out = Path(args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        name = args.name or date
        (out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        (out / f"{name}.md").write_text(md, encoding="utf-8")
        print(f"wrote {out / name}.json and .md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
