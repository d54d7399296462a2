#!/usr/bin/env python3
"""Reference vectors for the built-in encoder's exactness test (EncoderExactnessTests).

Runs sentence-transformers (PyPI; CPU PyTorch) on the same model directory mnemod loads,
and writes, for a fixed list of sentences, the token ids its tokenizer produces and the
normalized sentence vectors. Regenerate with:

    python3 -m pip install sentence-transformers   # once, in any venv
    python3 Tests/MnemoCoreTests/EncoderReference/make_reference.py [MODEL_DIR]

MODEL_DIR defaults to $XDG_CACHE_HOME/mnemo/models/all-MiniLM-L6-v2 (else ~/.cache/...),
where `make model` unpacks it. No network: the model is loaded from the directory.
"""
import json
import os
import sys

from sentence_transformers import SentenceTransformer

SENTENCES = [
    "The staging database is reset every night.",
    "hi",
    "   a   ",
    "Deploy FAILED: migration 0042_add_index timed out after 300s (exit code 137)!!!",
    "Café crème, naïve façade, Ångström, São Paulo, Zürich, résumé",
    "Price: $1,299.99 + 8.875% tax = $1,415.28; ETA 2026-12-07T03:21:11Z",
    "User prefers dark mode 🌙 and vim keybindings 😀👍",
    "北京欢迎你 and 東京 are cities; 한국어 too",
    "Call fetch_user(id=42) -> {\"name\": \"Ada\", \"roles\": [\"admin\"]}",
    "Tabs\tand\nnewlines\r\nand   spaces",
    "don't can't won't it's O'Reilly's",
    "[SEP] special [MASK] tokens [CLS] written literally",
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "ΣΊΣΥΦΟΣ ΟΔΥΣΣΕΥΣ Straße İstanbul ǅemal",
    "a" * 120 + " " + "b" * 99,
    " ".join(["The agent retried the flaky integration test after the cache was warmed,"] * 30),
    "zero-width\u200bjoiner\u200d and soft\u00adhyphen and control\u0007bell",
    "https://example.com/path?q=memory&lang=en#frag user@example.org",
]


def default_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "mnemo", "models", "all-MiniLM-L6-v2")


def cls_variant(model_dir, tmp):
    """The same model with CLS pooling (as BGE models pool): the directory's files linked,
    1_Pooling/config.json replaced. Exercises the encoder's other pooling path."""
    os.makedirs(os.path.join(tmp, "1_Pooling"))
    for name in os.listdir(model_dir):
        if name != "1_Pooling":
            os.symlink(os.path.join(model_dir, name), os.path.join(tmp, name))
    with open(os.path.join(tmp, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 384, "pooling_mode_cls_token": True,
                   "pooling_mode_mean_tokens": False}, f)
    return tmp


def main():
    model_dir = sys.argv[1] if len(sys.argv) > 1 else default_dir()
    write(model_dir, SentenceTransformer(model_dir, device="cpu"), "all-MiniLM-L6-v2")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        cls_dir = cls_variant(model_dir, os.path.join(tmp, "cls"))
        write(cls_dir, SentenceTransformer(cls_dir, device="cpu"), "all-MiniLM-L6-v2-cls")


def write(model_dir, model, name):
    vectors = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True, batch_size=len(SENTENCES))
    tok = model.tokenizer
    out = {
        "model": name,
        "max_seq_length": model.max_seq_length,
        "made_with": "sentence-transformers " + __import__("sentence_transformers").__version__
        + ", torch " + __import__("torch").__version__,
        "cases": [
            {
                "text": s,
                "ids": tok(s, truncation=True, max_length=model.max_seq_length)["input_ids"],
                "vector": [float(f"{x:.8g}") for x in v.tolist()],
            }
            for s, v in zip(SENTENCES, vectors)
        ],
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".json")
    cases = out.pop("cases")
    with open(path, "w", encoding="utf-8") as f:  # one case a line: readable diffs
        head = json.dumps(out, ensure_ascii=False)[:-1]
        f.write(head + ',\n"cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]}\n")
    print(f"wrote {path}: {len(SENTENCES)} sentences")


if __name__ == "__main__":
    main()
