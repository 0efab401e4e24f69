"""The simulation study of the statistics corrected for misclassification (``app.stats.corrected``).

Many synthetic repositories whose truth is known (``tests/misclassified_installation.py``:
calibrated PTM probabilities from a classifier of known error, true classes drawn from them,
lognormal resolution times with PTM issues ``factor`` times slower at the median). For each
setting and seed it compares three verdicts on "PTM issues take longer" at alpha = 0.05:

- ``true``: one-sided Mann-Whitney U on the true labels (what a perfect classifier would show);
- ``labelled``: the same test on the classifier's labels (``p >= 0.5``), what the dashboard
  reported before the correction;
- ``corrected``: the corrected test (``p_greater``).

and reports, over the seeds: how often the corrected 95% interval covers the true difference
of means, how often each verdict agrees with the true one, how often each says "longer", and
the mean difference of means each way against the truth.

    .venv/bin/python benchmarks/corrected_stats.py [--seeds 400]

Writes ``benchmarks/results/corrected-stats.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from locations import write_result

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# After the checkout is on sys.path: the benchmark imports the app and the test double from it.
from app.stats.corrected import corrected_comparison  # noqa: E402
from app.stats.resolution import ALPHA  # noqa: E402
from tests.misclassified_installation import mann_whitney_p, simulate, true_difference  # noqa: E402

# (name, issues, PTM share, PTM median factor, k: the classifier's error, larger is worse)
SETTINGS = [
    ("small repo, 10% PTM, slower", 200, 0.1, 2.0, 3.0),
    ("small repo, 30% PTM, slower", 200, 0.3, 2.0, 3.0),
    ("medium repo, 30% PTM, a little slower", 500, 0.3, 1.5, 3.0),
    ("medium repo, 57% PTM, slower", 500, 0.57, 2.0, 3.0),
    ("medium repo, 30% PTM, no difference", 500, 0.3, 1.0, 3.0),
    ("large repo, 10% PTM, a little slower", 2000, 0.1, 1.5, 3.0),
    ("medium repo, 30% PTM, slower, a good classifier", 500, 0.3, 2.0, 1.0),
]


def run_setting(n: int, share: float, factor: float, k: float, seeds: int) -> dict[str, Any]:
    truth = true_difference(factor)
    covered, accuracy = 0, []
    agree = {"labelled": 0, "corrected": 0}
    longer = {"true": 0, "labelled": 0, "corrected": 0}
    differences: dict[str, list[float]] = {"true_labels": [], "labelled": [], "corrected": []}
    for seed in range(seeds):
        data = simulate(seed, n=n, share=share, factor=factor, k=k)
        result = corrected_comparison(data.days, data.probability, seed=seed)
        low, high = result["difference_days"]["ci95"] or (np.inf, -np.inf)
        covered += low <= truth <= high
        verdicts = {
            "true": mann_whitney_p(data.days, data.truth) < ALPHA,
            "labelled": mann_whitney_p(data.days, data.predicted) < ALPHA,
            "corrected": (result["p_greater"] if result["p_greater"] is not None else 1.0) < ALPHA,
        }
        for name, verdict in verdicts.items():
            longer[name] += verdict
            if name != "true":
                agree[name] += verdict == verdicts["true"]
        accuracy.append(data.accuracy())
        differences["true_labels"].append(float(data.days[data.truth].mean() - data.days[~data.truth].mean()))
        differences["labelled"].append(float(data.days[data.predicted].mean() - data.days[~data.predicted].mean()))
        differences["corrected"].append(result["difference_days"]["mean"] or float("nan"))
    return {
        "issues": n, "ptm_share": share, "ptm_median_factor": factor, "k": k, "seeds": seeds,
        "classifier_accuracy": round(float(np.mean(accuracy)), 3),
        "true_difference_days": round(truth, 2),
        "mean_difference_days": {name: round(float(np.nanmean(v)), 2) for name, v in differences.items()},
        "ci95_coverage": round(covered / seeds, 3),
        "verdict_agreement_with_true": {name: round(v / seeds, 3) for name, v in agree.items()},
        "says_longer": {name: round(v / seeds, 3) for name, v in longer.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=400)
    args = parser.parse_args()
    started = time.perf_counter()
    results = {}
    for name, n, share, factor, k in SETTINGS:
        results[name] = run_setting(n, share, factor, k, args.seeds)
        print(name, json.dumps(results[name]), flush=True)
    summary = {
        "coverage_mean": round(float(np.mean([r["ci95_coverage"] for r in results.values()])), 3),
        "agreement_mean": {name: round(float(np.mean([r["verdict_agreement_with_true"][name] for r in results.values()])), 3)
                           for name in ("labelled", "corrected")},
    }
    out = {"settings": results, "summary": summary, "alpha": ALPHA, "wall_s": round(time.perf_counter() - started, 1)}
    print(json.dumps(summary, indent=2))
    write_result("corrected-stats", out)


if __name__ == "__main__":
    main()
