"""semsearch's encoder vs sentence-transformers encode(), side by side on the same device.

    python benchmarks/encoder.py [--device cpu|cuda] [--rounds 3] [--corpus-limit 1000]

Prints one JSON line: fidelity on every STS-benchmark sentence (min cosine, max |cos − 1|, STSb
Spearman of both), and for the STS sentences and the dbpedia-entity corpus, sentences/s and
tokens/s of each, with the ratio. Where semsearch's default precision is half (fp16 on a GPU, bf16
on a CPU with AMX), both also run in it: semsearch's default against sentence-transformers' fp32
default and against sentence-transformers in the same half precision.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import alternate, dbpedia_texts, sts_pairs  # noqa: E402
from semsearch import Encoder  # noqa: E402
from semsearch.encoding.encoder import DTYPES  # noqa: E402
from semsearch.encoding.model_folder import default_model_path  # noqa: E402


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def sts_spearman(vectors_a: np.ndarray, vectors_b: np.ndarray, gold: list[float]) -> float:
    return float(spearmanr(cosine_rows(vectors_a, vectors_b), gold).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus-limit", type=int, default=1000, help="dbpedia documents timed (0: all 5,000)")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer  # reference only

    first, second, gold = sts_pairs()
    sts = first + second
    corpus = dbpedia_texts(args.corpus_limit or None)
    gpu = args.device.startswith("cuda")

    ours = {"fp32": Encoder(device=args.device, precision="fp32")}
    reference = {"fp32": SentenceTransformer(str(default_model_path()), device=args.device)}
    default = Encoder(device=args.device)  # precision "auto": fp16 on a GPU, bf16 on a CPU with AMX
    half = default.precision if default.precision != "fp32" else None
    if half:
        ours["half"] = default
        # sentence-transformers in the same half precision, the fairest baseline for it.
        reference[half] = SentenceTransformer(str(default_model_path()), device=args.device,
                                              model_kwargs={"torch_dtype": DTYPES[half]})

    result: dict = {"benchmark": "encoder", "device": args.device, "default_precision": default.precision,
                    "device_name": torch.cuda.get_device_name(args.device) if gpu else "cpu",
                    "torch_threads": torch.get_num_threads(), "rounds": args.rounds}

    # Fidelity on every STS sentence.
    st_vectors = reference["fp32"].encode(sts, convert_to_numpy=True)
    for name, encoder in ours.items():
        vectors = encoder.encode(sts)
        cos = cosine_rows(vectors, st_vectors)
        n = len(first)
        result[f"fidelity_{name}"] = {
            "min_cos": round(float(cos.min()), 7), "max_abs_cos_minus_1": float(np.abs(cos - 1).max()),
            "spearman_semsearch": round(sts_spearman(vectors[:n], vectors[n:], gold), 5)}
    n = len(first)
    result["spearman_sentence_transformers"] = round(sts_spearman(st_vectors[:n], st_vectors[n:], gold), 5)

    # Throughput, alternating runs, after one warm-up each.
    token_counter = ours["fp32"]
    for label, texts in (("sts", sts), ("dbpedia", corpus)):
        tokens = sum(min(n, token_counter.max_length) for n in token_counter.token_count(texts))
        runs = {f"semsearch_{k}": (lambda e=e: e.encode(texts)) for k, e in ours.items()}
        runs.update({f"st_{k}": (lambda m=m: m.encode(texts, convert_to_numpy=True)) for k, m in reference.items()})
        for run in runs.values():
            run() if len(texts) <= 3000 else None  # warm-up (skipped for big sets: the first round warms)
        medians = alternate(runs, args.rounds)
        figures = {name: {"seconds": round(t, 3), "sentences_per_s": round(len(texts) / t, 1),
                          "tokens_per_s": round(tokens / t)} for name, t in medians.items()}
        figures["texts"] = len(texts)
        figures["ratio_vs_st_fp32"] = round(medians["st_fp32"] / medians["semsearch_fp32"], 3)
        if half:
            figures["ratio_half_vs_st_fp32"] = round(medians["st_fp32"] / medians["semsearch_half"], 3)
            figures[f"ratio_half_vs_st_{half}"] = round(medians[f"st_{half}"] / medians["semsearch_half"], 3)
        result[label] = figures
    print(json.dumps(result))


if __name__ == "__main__":
    main()
