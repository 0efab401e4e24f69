"""Maintainers in control: /ptm-triage reclassify, label renames, corrections exported as training data."""

from __future__ import annotations

import json
from pathlib import Path

from app.cli import main
from app.triage.data import load_jsonl
from app.workflow.feedback_export import export_feedback
from tests.conftest import SHARED
from tests.e2e import INSTALLATION, POLICY, REPO, Stack, open_issue

PTM = ("CUDA out of memory when loading the SDXL model on an 8 GB GPU",
       "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB while loading the checkpoint.")


def correct(stack: Stack, number: int, labels: list[str], changed: str, action: str = "unlabeled") -> None:
    """A maintainer sets ``labels`` on GitHub, which tells the app with a (un)labeled delivery."""
    stack.sim.set_issue_labels(REPO, number, labels)
    stack.send("issues", stack.sim.issues_payload(action, REPO, number, INSTALLATION, sender="maintainer",
                                                  label=changed))
    stack.settle()


def reclassify_request(stack: Stack, number: int, user: str) -> None:
    comment = stack.sim.add_comment(REPO, number, "Labels look off.\n/ptm-triage reclassify", user)
    stack.send("issue_comment",
               stack.sim.issue_comment_payload("created", REPO, number, comment["id"], INSTALLATION))
    stack.settle()


def test_reclassify_from_a_writer_relabels_and_from_others_is_ignored(stack: Stack) -> None:
    number = open_issue(stack, *PTM)
    correct(stack, number, [], POLICY.ptm_label)
    assert stack.labels_on(number) == set()

    stack.sim.set_permission(REPO, "drive-by", "read")
    reclassify_request(stack, number, "drive-by")
    assert stack.labels_on(number) == set()

    stack.sim.set_permission(REPO, "maintainer", "maintain")
    reclassify_request(stack, number, "maintainer")
    assert POLICY.ptm_label in stack.labels_on(number)
    assert stack.get("/api/issues", repo=REPO)["issues"][0]["labels_locked_by_human"] is False


def test_a_renamed_label_is_renamed_on_tracked_issues(stack: Stack) -> None:
    open_issue(stack, *PTM)
    theme = POLICY.label_name("HR")
    stack.sim.rename_label(REPO, theme, "gpu trouble")
    stack.send("label", stack.sim.label_payload("edited", REPO, "gpu trouble", INSTALLATION,
                                                changes={"name": {"from": theme}}))
    stack.settle()
    labels = stack.get("/api/issues", repo=REPO)["issues"][0]["labels"]
    assert "gpu trouble" in labels and theme not in labels


def test_corrections_export_as_training_data_that_trains(stack: Stack, tmp_path: Path) -> None:
    wrong = open_issue(stack, "Navbar links overlap on mobile Safari", "The CSS of the top bar breaks.")
    right = open_issue(stack, *PTM)
    untouched = open_issue(stack, *PTM)
    correct(stack, wrong, [POLICY.ptm_label, POLICY.label_name("MU")], POLICY.label_name("MU"), "labeled")
    correct(stack, right, [POLICY.label_name("HR")], POLICY.ptm_label)

    out = tmp_path / "feedback.jsonl"
    assert export_feedback(stack.app.state.services.db, POLICY, out, "https://api.github.com") == 2
    rows = {r["number"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert untouched not in rows
    assert rows[wrong]["ptm"] is True and rows[wrong]["themes"] == ["MU"]
    assert rows[wrong]["corrected_by"] == "maintainer"
    assert rows[right]["url"] == f"https://github.com/{REPO}/issues/{right}"
    assert len(load_jsonl(out)) == 2, "the export reads back as annotated data"

    tiny = tmp_path / "tiny.jsonl"
    tiny.write_text("".join((SHARED / "data" / "train.jsonl").read_text().splitlines(keepends=True)[:150]))
    model = tmp_path / "model"
    assert main(["train", "--kind", "baseline", "--data", str(tiny), str(out), "--dev", str(tiny),
                 "--output", str(model)]) == 0
    card = (model / "MODEL_CARD.md").read_text()
    assert "152" in card, "the corrections are part of the training data"

