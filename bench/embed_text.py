"""Benchmark: batched ``embed_text`` vs a naive one-utterance-at-a-time loop (paper Sec. 2.1).

Both compute the same features -- the sum of the last four hidden layers of the frozen BERT
model, one row per word piece -- on the same transcripts, in one process: the IEMOCAP demo
transcripts when ``data/IEMOCAP_demo`` exists and ``ser_utils.datasets.load_iemocap`` can read
it, otherwise ~2,000 generated sentences of 3-25 words (IEMOCAP-like turn lengths). Model loading
is excluded from both timings (one warm-up call each first).

Usage::

    python bench/embed_text.py [--n 2000] [--model auto] [--batch-size 32] [--layers 4]

Prints a table: seconds, utterances/s, speed-up (target >= 3x) and the largest absolute
difference between the two outputs (target <= 1e-4).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ser_utils.features import text as T

DEMO = Path(__file__).resolve().parents[1] / "data" / "IEMOCAP_demo"

_WORDS = ("i you we they he she it what why how when where yes no oh yeah well okay right "
          "really just so but and or because if then not don't can't won't i'm you're it's "
          "that's know think want need feel love hate like mean said told tell go going come "
          "back home work time today tomorrow never always again maybe sorry please thank "
          "god wow great terrible fine good bad happy sad angry upset excited tired little "
          "lot much more all nothing something everything anything people guy man woman "
          "kid mother father friend money job car house wedding beach letter phone dog").split()


def generated_transcripts(n: int, *, seed: int = 0) -> list[str]:
    """``n`` sentences of 3-25 words (IEMOCAP turns are mostly this long), seeded."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        words = rng.choice(_WORDS, size=rng.integers(3, 26)).tolist()
        words[0] = words[0].capitalize()
        if len(words) > 8 and rng.random() < 0.5:  # a comma mid-sentence
            words[len(words) // 2] += ","
        out.append(" ".join(words) + rng.choice([".", "?", "!", "..."]))
    return out


def load_transcripts(n: int) -> tuple[list[str], str]:
    if DEMO.exists():
        try:
            from ser_utils.datasets import load_iemocap

            texts = load_iemocap(DEMO)["text"].tolist()
            if texts:
                return texts, f"IEMOCAP demo transcripts ({DEMO})"
        except Exception as exc:  # noqa: BLE001 - fall back, but say why
            print(f"[bench] could not read {DEMO} ({type(exc).__name__}: {exc}); "
                  "using generated sentences")
    return generated_transcripts(n), f"{n} generated sentences of 3-25 words"


def naive(texts, path: str, layers: int) -> list[np.ndarray]:
    """One forward pass per utterance, as a straightforward loop would do it."""
    import torch

    tokenizer, model = T._load_bert(path)  # same frozen model object, so only batching differs
    out = []
    with torch.inference_mode():
        for text in texts:
            enc = tokenizer(T.clean_transcript(text), return_tensors="pt", truncation=True,
                            max_length=512)
            hidden = model(**enc, output_hidden_states=True).hidden_states
            out.append(torch.stack(hidden[-layers:]).sum(0)[0].numpy().astype(np.float32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="generated sentences (no demo data)")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--layers", type=int, default=4)
    args = ap.parse_args()

    import torch

    texts, source = load_transcripts(args.n)
    info = T.text_encoder_info("bert", args.model)
    path = info["path"]
    # warm-up: model load, tokenizer and allocator caches are outside both timings
    T.embed_text(texts[:8], path, args.layers, batch_size=args.batch_size)
    naive(texts[:8], path, args.layers)

    t0 = time.perf_counter()
    batched = T.embed_text(texts, path, args.layers, batch_size=args.batch_size)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    looped = naive(texts, path, args.layers)
    t_naive = time.perf_counter() - t0

    diff = max(float(np.abs(a - b).max()) for a, b in zip(batched, looped, strict=False))
    assert all(a.shape == b.shape for a, b in zip(batched, looped, strict=False))
    n_pieces = sum(len(a) for a in batched)
    table = pd.DataFrame({
        "method": ["naive loop (1 utt / forward)", f"embed_text (batch {args.batch_size})"],
        "seconds": [t_naive, t_batched],
        "utt/s": [len(texts) / t_naive, len(texts) / t_batched],
        "speed-up": [1.0, t_naive / t_batched],
    })
    print(f"model: {info['name']} ({info['dim']}-d), sum of last {args.layers} hidden layers")
    print(f"data: {source}: {len(texts)} utterances, {n_pieces} word pieces incl. [CLS]/[SEP]")
    print(f"torch threads: {torch.get_num_threads()}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"max |embed_text - naive| = {diff:.2e}  (target <= 1e-4)")
    print(f"speed-up = {t_naive / t_batched:.1f}x  (target >= 3x)")


if __name__ == "__main__":
    main()
