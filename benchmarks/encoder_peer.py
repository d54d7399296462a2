#!/usr/bin/env python3
"""The encoder's speed peer: sentence-transformers on PyTorch (CPU) loading the same model
directory as mnemod, on the same texts. Called by `mnemo-bench --workloads embed`.

    encoder_peer.py --model-dir DIR --texts texts.json --samples 200 --batches 10 --out peer.json

Writes {"single_ns": [...], "batch64_ns": [...], "version": ..., "threads": ...}, or
{"missing": reason} when sentence-transformers is not importable.
"""
import argparse
import json
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    try:
        import torch
        from sentence_transformers import SentenceTransformer
        import sentence_transformers
    except ImportError as e:
        with open(a.out, "w") as f:
            json.dump({"missing": f"sentence-transformers not importable: {e}"}, f)
        return
    texts = json.load(open(a.texts))
    model = SentenceTransformer(a.model_dir, device="cpu")
    enc = lambda batch: model.encode(batch, batch_size=len(batch), normalize_embeddings=True, convert_to_numpy=True)
    with torch.inference_mode():
        for t in texts[:8]:
            enc([t])
        enc(texts[:64])
        single = []
        for i in range(a.samples):
            t0 = time.perf_counter_ns()
            enc([texts[i % len(texts)]])
            single.append(time.perf_counter_ns() - t0)
        batches = []
        for i in range(a.batches):
            chunk = [texts[(i * 64 + j) % len(texts)] for j in range(64)]
            t0 = time.perf_counter_ns()
            enc(chunk)
            batches.append(time.perf_counter_ns() - t0)
    with open(a.out, "w") as f:
        json.dump({"single_ns": single, "batch64_ns": batches,
                   "version": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}",
                   "threads": torch.get_num_threads()}, f)


if __name__ == "__main__":
    main()
