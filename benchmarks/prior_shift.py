"""Precision, recall and calibration where PTM issues are a minority (or a majority).

Resamples dev.jsonl into simulated repositories of ``--size`` issues at chosen PTM shares
(``--samples`` each, drawn with replacement within each class) and decides every issue
the way the service does (``app.workflow.repo_share.moved``, then the label policy: PTM-related,
not, or abstain), three ways:

- ``training``: at the model's training share, as a model without any correction;
- ``deployment``: at one share set for the whole deployment (``--deployment-share``);
- ``estimated``: at the repository's share estimated from its own issues (EM).

Precision and recall count the issues labelled ``ptm: related`` (abstentions are neither);
ECE is that of the moved probabilities. Mean and standard deviation over the samples.

    .venv/bin/python benchmarks/prior_shift.py [--model bert] [--shares 0.1 0.2 0.3 0.8]

Writes ``benchmarks/results/prior-shift-<model>.json``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from locations import DATA, RESULTS, model_parser

from app.triage.data import load_jsonl
from app.triage.labels import LabelPolicy
from app.triage.loader import load_classifier
from app.triage.prior_shift import estimate_share, expected_calibration_error
from app.workflow.repo_share import moved


def main() -> None:
    parser = model_parser(__doc__)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.8])
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--deployment-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    classifier = load_classifier(args.model, args.model_dir)
    train_share = classifier.train_ptm_share
    if train_share is None:
        raise SystemExit(f"the {args.model} model is not calibrated: nothing to move")
    dev = load_jsonl(DATA / "dev.jsonl")
    predictions = classifier.predict([issue.text() for issue in dev])
    usable = [j for j, p in enumerate(predictions) if p.abstain_reason is None]
    truth = np.array([dev[j].ptm for j in usable])
    predictions = [predictions[j] for j in usable]
    policy, rng = LabelPolicy(), np.random.default_rng(args.seed)
    positives, negatives = np.flatnonzero(truth), np.flatnonzero(~truth)
    result: dict[str, Any] = {"model": classifier.version, "train_share": train_share, "size": args.size,
                              "samples": args.samples, "deployment_share": args.deployment_share, "shares": {}}
    for share in args.shares:
        n_pos = int(round(share * args.size))
        runs: dict[str, list[dict[str, float]]] = {"training": [], "deployment": [], "estimated": []}
        estimates = []
        for _ in range(args.samples):
            rows = np.concatenate([rng.choice(positives, n_pos), rng.choice(negatives, args.size - n_pos)])
            sample, y = [predictions[j] for j in rows], truth[rows]
            estimate = estimate_share([p.ptm_score for p in sample], train_share, start=args.deployment_share)
            estimates.append(estimate)
            for way, at in (("training", train_share), ("deployment", args.deployment_share), ("estimated", estimate)):
                runs[way].append(_figures([moved(p, at, train_share) for p in sample], y, policy))
        result["shares"][str(share)] = {
            "estimated_share": _spread(estimates),
            **{way: {key: _spread([r[key] for r in figures]) for key in figures[0]} for way, figures in runs.items()},
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"prior-shift-{args.model}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _print(result)
    print(f"wrote {path}")


def _figures(sample: list[Any], truth: np.ndarray, policy: LabelPolicy) -> dict[str, float]:
    labelled = np.array([policy.ptm_decision(p.ptm_score, p.ptm) is True for p in sample])
    hits = float((labelled & truth).sum())
    return {
        "precision": hits / labelled.sum() if labelled.any() else float("nan"),
        "recall": hits / truth.sum(),
        "abstained": float(np.mean([policy.ptm_decision(p.ptm_score, p.ptm) is None for p in sample])),
        "ece": expected_calibration_error(np.array([p.ptm_score for p in sample]), truth.astype(float)),
    }


def _spread(values: list[float]) -> dict[str, float]:
    finite = [v for v in values if np.isfinite(v)]
    return {"mean": round(float(np.mean(finite)), 4), "sd": round(float(np.std(finite)), 4)}


def _print(result: dict[str, Any]) -> None:
    print(f"{result['model']}: {result['samples']} repositories of {result['size']} issues per share")
    print(f"{'share':>6} {'way':<11} {'precision':>15} {'recall':>15} {'abstained':>15} {'ECE':>15}  estimate")
    for share, block in result["shares"].items():
        for way in ("training", "deployment", "estimated"):
            cells = " ".join(f"{block[way][k]['mean']:>8.3f} ±{block[way][k]['sd']:.3f}"
                             for k in ("precision", "recall", "abstained", "ece"))
            estimate = block["estimated_share"]
            note = f"  {estimate['mean']:.3f} ±{estimate['sd']:.3f}" if way == "estimated" else ""
            print(f"{share:>6} {way:<11} {cells}{note}")


if __name__ == "__main__":
    main()
