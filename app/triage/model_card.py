"""The model card each trained kind writes beside its artifact: one layout for every kind (what the
model is, then its sections: data, settings, thresholds per label, dev figures) closed by what
bounds every figure, the labels' own quality. Each kind's training code fills it in."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from app.taxonomy import SUBTHEMES, THEMES
from app.triage.classifier import LABELS, PTM
from app.triage.evaluate import format_report
from app.triage.registry import CARD_FILE

LABEL_NAMES = {PTM: "PTM-related", **THEMES, **SUBTHEMES}

LIMITS = [
    "Label quality bounds every figure here: on 125 re-labelled issues a second annotator agreed with the",
    "first on PTM-related 91% of the time and on themes at micro-F1 about 0.85 (see the data README).",
    "Dev has about the training share of PTM issues; a deployment usually sees far fewer (the paper: about",
    "10%), so expect lower PTM precision there unless the per-repository share estimate corrects for it.",
]

Section = tuple[str, Sequence[str]]


def label_table(columns: Sequence[str], cells: Callable[[str], Sequence[object]]) -> list[str]:
    """A Markdown table with one row per label: its code, its name, then ``cells(label)``."""
    return [
        "| label | name | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
        *(f"| {label} | {LABEL_NAMES[label]} | " + " | ".join(str(c) for c in cells(label)) + " |" for label in LABELS),
    ]


def settings(config: Mapping[str, Any]) -> list[str]:
    return [f"- `{key}`: {value}" for key, value in config.items()]


def dev_report(dev: Mapping[str, Any]) -> list[str]:
    """``app.triage.evaluate``'s report of the dev figures, as a code block."""
    return ["```", format_report(dict(dev)), "```"]


def render_card(version: str, summary: Sequence[str], sections: Sequence[Section]) -> str:
    lines = [f"# Model card: {version}", "", *summary]
    for title, body in [*sections, ("Limits", LIMITS)]:
        lines += ["", f"## {title}", *body]
    return "\n".join(lines) + "\n"


def write_card(out_dir: Path, version: str, summary: Sequence[str], sections: Sequence[Section]) -> Path:
    path = out_dir / CARD_FILE
    path.write_text(render_card(version, summary, sections), encoding="utf-8")
    return path
