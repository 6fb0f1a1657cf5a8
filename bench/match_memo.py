"""The match memo (engine/match_memo.py) against durable-rules alone, on the benchmark population.

    python -m bench.match_memo [--subjects 100000] [--skip 0] [--seed 20250630]

Materialises the same subjects (store/rows.py `materialise`: the import's rule work) twice in
one process, first with the adapter's memo, then with it switched off, and compares every
subject's rows and change-feed entries. Reports both times, the memo's hits, misses and size,
and how many subjects differ: any difference means the memo answered something durable-rules
would not have, and the exit status is 1. The first pass pays the memo's misses; the second
pays durable-rules for every fact.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.match_memo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--skip", type=int, default=0, help="start this many subjects into the population")
    parser.add_argument("--seed", type=int, default=20250630)
    args = parser.parse_args(argv)

    import engine  # noqa: F401 - the package first: catalog.vocabulary imports from it
    from catalog.vocabulary import load_vocabulary
    from engine.adapter import default_adapter
    from engine.compiler import compile_rulebooks
    from engine.evaluator import Evaluator
    from store.history import BEGINNING, CatalogHistory, Era
    from store.rows import materialise

    from .population import generate

    vocab = load_vocabulary()
    catalog = compile_rulebooks(None, vocab)
    history = CatalogHistory([Era(BEGINNING, None, {}, catalog, Evaluator(catalog))])
    raw = itertools.islice(generate(args.skip + args.subjects, seed=args.seed), args.skip, None)
    bundles = [engine.parse_bundle(obj, vocab=vocab) for obj in raw]
    adapter = default_adapter()

    started = time.perf_counter()
    remembered = [materialise(history, bundle) for bundle in bundles]
    with_memo = time.perf_counter() - started
    memo, adapter.memo = adapter.memo, None
    try:
        started = time.perf_counter()
        asked = [materialise(history, bundle) for bundle in bundles]
        without = time.perf_counter() - started
    finally:
        adapter.memo = memo
    differing = sum(1 for a, b in zip(remembered, asked) if a != b)
    n = len(bundles)
    print(f"{n:,} subjects: with the memo {with_memo:.1f} s ({with_memo / n * 1e6:.0f} µs a subject), "
          f"durable-rules alone {without:.1f} s ({without / n * 1e6:.0f} µs); memo hits {memo.hits:,}, "
          f"misses {memo.misses:,}, sequences kept {len(memo):,}; subjects differing: {differing}")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
