"""Encoding throughput: biolens's vectorized ``encode`` vs the guide's per-character Python loop.

Usage: python benchmarks/bench_encoding.py [--n 20000] [--length 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from biolens.data.alphabets import DNA
from biolens.data.encoding import encode


def _vocab() -> dict[str, int]:
    vocab = {"PAD": 0, "N": DNA.unknown_index}
    vocab.update({s: i for i, s in enumerate(DNA.symbols, start=1)})
    return vocab


def guide_loop_encode(seqs: list[str], max_length: int) -> np.ndarray:
    """Guide 3.3 ``BiologicalSequenceDataset.encode_sequence``: an explicit ``for char in sequence`` loop with a
    membership test per character, pad with a while loop; biolens's index mapping so outputs are comparable."""
    vocab = _vocab()

    def encode_sequence(sequence: str) -> list[int]:
        sequence = sequence.upper()
        if len(sequence) > max_length:
            sequence = sequence[:max_length]
        encoded = []
        for char in sequence:
            if char in vocab:
                encoded.append(vocab[char])
            else:
                encoded.append(vocab["N"])
        while len(encoded) < max_length:
            encoded.append(vocab["PAD"])
        return encoded

    return np.stack([np.asarray(encode_sequence(s), dtype=np.uint8) for s in seqs])


def guide_style_encode(seqs: list[str], max_length: int) -> np.ndarray:
    """Guide 7.2 ``PromoterDataset.encode_sequence`` (a list comprehension with a dict lookup per character, pad
    with a while loop), one sequence at a time, using biolens's index mapping so the outputs are comparable."""
    vocab = _vocab()

    def encode_sequence(sequence: str) -> list[int]:
        sequence = sequence.upper()[:max_length]
        encoded = [vocab.get(base, vocab["N"]) for base in sequence]
        while len(encoded) < max_length:
            encoded.append(vocab["PAD"])
        return encoded

    return np.stack([np.asarray(encode_sequence(s), dtype=np.uint8) for s in seqs])


def random_dna(n: int, length: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGTNacgt", dtype=np.uint8)
    p = np.array([0.24, 0.24, 0.24, 0.24, 0.01, 0.01, 0.01, 0.005, 0.005])
    codes = rng.choice(letters, size=(n, length), p=p / p.sum())
    lengths = rng.integers(length // 2, length + 1, size=n)  # variable lengths → padding is exercised
    return [row[:k].tobytes().decode("ascii") for row, k in zip(codes, lengths)]


def timed(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="number of sequences")
    parser.add_argument("--length", type=int, default=1_000, help="max (padded) length")
    parser.add_argument("--repeats", type=int, default=7, help="best of this many runs for the vectorized encoder")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    seqs = random_dna(args.n, args.length)
    n_chars = sum(len(s) for s in seqs)
    t_fast, (fast, _) = timed(lambda: encode(seqs, DNA, max_len=args.length), args.repeats)
    t_loop, loop = timed(lambda: guide_loop_encode(seqs, args.length), 1)
    t_comp, comp = timed(lambda: guide_style_encode(seqs, args.length), 1)
    identical = bool(np.array_equal(fast, loop) and np.array_equal(fast, comp))

    rows = [("biolens encode (vectorized)", t_fast), ("guide 3.3 for-loop per char", t_loop),
            ("guide 7.2 comprehension", t_comp)]
    print(f"{args.n:,} DNA sequences, lengths {args.length // 2}-{args.length} ({n_chars / 1e6:.1f} M characters), "
          f"padded to {args.length}")
    print(f"{'method':<30}{'seconds':>10}{'seqs/s':>14}{'M chars/s':>12}")
    for label, t in rows:
        print(f"{label:<30}{t:>10.3f}{args.n / t:>14,.0f}{n_chars / t / 1e6:>12.2f}")
    ratio = t_loop / t_fast
    print(f"speed-up vs guide 3.3 per-character loop: {ratio:.0f}x   vs guide 7.2 comprehension: "
          f"{t_comp / t_fast:.0f}x   identical output: {identical}")
    if args.json:
        result = {
            "n": args.n, "length": args.length, "chars": n_chars, "machine": platform.machine(),
            "vectorized_s": t_fast, "loop_s": t_loop, "vectorized_seqs_per_s": args.n / t_fast,
            "loop_seqs_per_s": args.n / t_loop, "speedup": ratio, "identical": identical,
            "comprehension_s": t_comp, "speedup_vs_comprehension": t_comp / t_fast,
        }  # fmt: skip
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if not identical:
        raise SystemExit("outputs differ")


if __name__ == "__main__":
    main()
