#!/usr/bin/env python3
"""Assemble facts.jsonl and questions.jsonl from the hand-written batches in src/.

A batch is plain text:

    @ns kb/ops                 namespace of the facts that follow
    @tags infra,databases      tags of the facts that follow
    A fact, one line.
    ? A question whose answer is the fact just above (ns_prefix: the namespace's first segment)
    ?kb/ops A question searched under the prefix kb/ops only

Ids are <batch prefix>-<number> in file order, so they stay stable as long as facts are
only appended to a batch. Checks: ids unique, texts unique, every question has a target,
no question equals its fact, each fact 6 to 40 words. Prints the statistics.
"""
from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> set:
    return set(WORD.findall(text.lower()))


def jaccard(a: str, b: str) -> float:
    x, y = words(a), words(b)
    return len(x & y) / len(x | y) if x | y else 0.0


def build() -> tuple:
    facts, questions, errors = [], [], []
    seen_text = {}
    for path in sorted((HERE / "src").glob("*.txt")):
        prefix = path.stem.split("-", 1)[1]
        ns, tags, n, last = None, [], 0, None
        for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.strip()
            where = f"{path.name}:{lineno}"
            if not line or line.startswith("#"):
                continue
            if line.startswith("@ns "):
                ns = line[4:].strip()
            elif line.startswith("@tags"):
                tags = [t for t in line[5:].strip().split(",") if t]
            elif line.startswith("?"):
                head, _, q = line[1:].partition(" ")
                if last is None:
                    errors.append(f"{where}: question before any fact")
                    continue
                ns_prefix = head or last["ns"].split("/")[0]
                if not (last["ns"] == ns_prefix or last["ns"].startswith(ns_prefix + "/")):
                    errors.append(f"{where}: prefix {ns_prefix} does not cover {last['ns']}")
                questions.append({"q": q.strip(), "target": last["id"], "ns_prefix": ns_prefix})
            else:
                if ns is None:
                    errors.append(f"{where}: fact before @ns")
                    continue
                n += 1
                fact = {"id": f"{prefix}-{n:04d}", "ns": ns, "text": line, "tags": list(tags)}
                key = line.lower()
                if key in seen_text:
                    errors.append(f"{where}: duplicate fact text (also {seen_text[key]})")
                seen_text[key] = where
                nw = len(line.split())
                if not 6 <= nw <= 40:
                    errors.append(f"{where}: {nw} words")
                facts.append(fact)
                last = fact
    ids = [f["id"] for f in facts]
    if len(set(ids)) != len(ids):
        errors.append("duplicate ids")
    by_id = {f["id"]: f for f in facts}
    for q in questions:
        t = by_id.get(q["target"])
        if t is None:
            errors.append(f"missing target {q['target']}")
        elif q["q"].lower().strip(" ?.") == t["text"].lower().strip(" ?."):
            errors.append(f"question copies its fact: {q['q']}")
    return facts, questions, errors


def main() -> int:
    facts, questions, errors = build()
    for e in errors:
        print("error:", e, file=sys.stderr)
    if errors:
        return 1
    with open(HERE / "facts.jsonl", "w", encoding="utf-8") as f:
        for x in facts:
            f.write(json.dumps(x, ensure_ascii=False) + "\n")
    with open(HERE / "questions.jsonl", "w", encoding="utf-8") as f:
        for x in questions:
            f.write(json.dumps(x, ensure_ascii=False) + "\n")
    by_id = {f["id"]: f for f in facts}
    jac = [jaccard(q["q"], by_id[q["target"]]["text"]) for q in questions]
    lens = [len(f["text"].split()) for f in facts]
    ns_count = {}
    for f in facts:
        ns_count[f["ns"]] = ns_count.get(f["ns"], 0) + 1
    stats = {
        "facts": len(facts),
        "questions": len(questions),
        "namespaces": ns_count,
        "fact_words": {"min": min(lens), "mean": round(statistics.mean(lens), 1), "max": max(lens)},
        "jaccard": {
            "mean": round(statistics.mean(jac), 3) if jac else None,
            "median": round(statistics.median(jac), 3) if jac else None,
            "share_below_0.1": round(sum(j < 0.1 for j in jac) / len(jac), 3) if jac else None,
            "share_below_0.2": round(sum(j < 0.2 for j in jac) / len(jac), 3) if jac else None,
            "max": round(max(jac), 3) if jac else None,
        },
        "question_prefixes": sorted({q["ns_prefix"] for q in questions}),
    }
    print(json.dumps(stats, indent=1))
    (HERE / "stats.json").write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
