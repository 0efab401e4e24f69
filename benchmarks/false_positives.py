"""The non-PTM dev issues the served model is surest are PTM-related, for reading by a person.

    .venv/bin/python benchmarks/false_positives.py [--model bert] [--model-dir DIR] [--top 20]

Prints them (score, confidence and agreement of the annotation, URL, title) and writes
``benchmarks/results/false-positives-<model>.json``.
"""

from __future__ import annotations

import json

from locations import DATA, RESULTS, model_parser

from app.triage.data import load_jsonl
from app.triage.loader import load_classifier


def main() -> None:
    parser = model_parser(__doc__)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    classifier = load_classifier(args.model, args.model_dir)
    dev = load_jsonl(DATA / "dev.jsonl")
    predictions = classifier.predict([issue.text() for issue in dev])
    wrong = sorted(((p.ptm_score, issue, p) for issue, p in zip(dev, predictions, strict=True)
                    if p.ptm and not issue.ptm), key=lambda row: -row[0])[: args.top]
    rows = [{"ptm_score": round(score, 4), "themes": list(p.themes), "confidence": issue.confidence,
             "agreement": issue.agreement, "url": issue.url, "title": issue.title} for score, issue, p in wrong]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"false-positives-{args.model}.json"
    path.write_text(json.dumps({"model": classifier.version, "false_positives": rows}, indent=2,
                               ensure_ascii=False) + "\n", encoding="utf-8")
    for row in rows:
        print(f"{row['ptm_score']:.3f} {row['confidence']:<4} {row['agreement']:<11} {','.join(row['themes']):<8} "
              f"{row['url']}\n      {row['title'][:110]}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
