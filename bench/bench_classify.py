"""Classification cost without the model layer: per request (p50/p95) and the one-off load.

Every labelled request (dev and held-out) is classified `--rounds` times with
`classify_fast`, each timed alone; the budget is 5 ms p50 per request. Every labelled
follow-up's whole turn decision (`decide_turn`: mentions, classification, signals, the learned
turn model, the artifact scoring) is timed the same way. The load (imports, weights, tokenizer,
fitting the semantic layer and the turn model to the training set) is timed from the
classifier's construction to ready, in a fresh process so the imports are counted.
Usage: uv run python bench/bench_classify.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUDGET_P50_MS = 5.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    started = time.perf_counter()
    from config import load_config
    from understanding import TaskClassifier
    from understanding.evaluate import load_requests
    from understanding.training import DATA_DIR, load_followups, thread_artifacts
    from understanding.turns import decide_turn

    config = load_config()
    classifier = TaskClassifier(config)
    built = time.perf_counter()
    if not classifier.wait_ready(120):
        print(f"embedding model did not load: {classifier.load_error}")
        return 1
    ready = time.perf_counter()
    prompts = [r.text for r in load_requests(DATA_DIR / "requests.yaml", "all")]

    followups = load_followups(DATA_DIR / "followups.yaml", "all")
    costs: dict[str, list[float]] = {
        "classify_fast": [],
        "explicit choice": [],
        "similarity": [],
        "decide_turn (follow-up)": [],
    }
    for _ in range(args.rounds):
        for prompt in prompts:
            t0 = time.perf_counter()
            classifier.classify_fast(prompt)
            t1 = time.perf_counter()
            classifier.classify_fast(prompt, explicit="code")
            t2 = time.perf_counter()
            classifier.similarity(prompt, "now add a tags table")
            t3 = time.perf_counter()
            costs["classify_fast"].append((t1 - t0) * 1000)
            costs["explicit choice"].append((t2 - t1) * 1000)
            costs["similarity"].append((t3 - t2) * 1000)
        for case in followups:
            artifacts = thread_artifacts(config, case)
            t0 = time.perf_counter()
            last = case.thread[-1][1]
            decide_turn(config, classifier, case.text, explicit=None, artifacts=artifacts, last_task=last)
            costs["decide_turn (follow-up)"].append((time.perf_counter() - t0) * 1000)

    print(f"requests: {len(prompts)}, follow-ups: {len(followups)}, x {args.rounds} rounds")
    print(f"imports + construction: {(built - started) * 1000:.0f} ms (request path: none of the load)")
    print(f"learned layers ready after construction: {(ready - built) * 1000:.0f} ms (background thread)")
    for name, values in costs.items():
        print(
            f"{name:<26} p50 {statistics.median(values):.3f} ms   p95 {percentile(values, 95):.3f} ms   "
            f"max {max(values):.3f} ms"
        )
    within = True
    for name in ("classify_fast", "decide_turn (follow-up)"):
        p50 = statistics.median(costs[name])
        within = within and p50 <= BUDGET_P50_MS
        verdict = "within" if p50 <= BUDGET_P50_MS else "OVER"
        print(f"{name} p50 {p50:.3f} ms: {verdict} the {BUDGET_P50_MS:g} ms budget")
    return 0 if within else 1


if __name__ == "__main__":
    raise SystemExit(main())
