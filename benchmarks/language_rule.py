"""How the language rule of ``app.triage.language`` was chosen, measured on ``../shared/data``.

For each candidate share of non-Latin letters in the prose: how many annotated issues
the rule withdraws and how many of those the annotators called PTM-related (the rule's
cost), and, on dev, how many of the withdrawn issues the served model alone would have
called PTM-related (what the rule saves).

    .venv/bin/python benchmarks/language_rule.py

Writes ``benchmarks/results/language-rule.json``.
"""

from __future__ import annotations

import json

from locations import DATA, RESULTS

from app.triage.data import load_jsonl
from app.triage.language import MIN_FOREIGN_SHARE, foreign_share
from app.triage.loader import load_classifier

CANDIDATES = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5)


def main() -> None:
    splits = {name: load_jsonl(DATA / f"{name}.jsonl") for name in ("train", "dev")}
    shares = {name: [foreign_share(i.text()) for i in issues] for name, issues in splits.items()}
    model = load_classifier("bert").model  # the model behind the gate: what it would say unchecked
    dev_calls = [p.ptm for p in model.predict([i.text() for i in splits["dev"]])]
    rows = []
    for threshold in CANDIDATES:
        row: dict[str, object] = {"min_foreign_share": threshold}
        for name, issues in splits.items():
            caught = [j for j, s in enumerate(shares[name]) if s >= threshold]
            row[name] = {"withdrawn": len(caught), "annotated_ptm": sum(issues[j].ptm for j in caught)}
        caught_dev = [j for j, s in enumerate(shares["dev"]) if s >= threshold]
        row["dev_model_called_ptm"] = sum(dev_calls[j] for j in caught_dev)
        rows.append(row)
    result = {"model": model.version, "chosen": MIN_FOREIGN_SHARE, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "language-rule.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
