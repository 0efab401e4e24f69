"""Per-repository configuration: parsing, and how the running app follows it."""

from __future__ import annotations

import json

import pytest

from app.triage.labels import LabelPolicy
from app.triage.registry import DEFAULT_MODEL_DIR
from app.workflow.repo_config import ConfigProblem, RepoSettings, parse
from tests.e2e import INSTALLATION, REPO, Stack, open_issue

DEFAULT = LabelPolicy()

FULL = """
enabled: true
dry_run: false
comment: true
labels:
  prefix: model
  abstain: "model: unsure"
  subthemes: true
  colors: {PTM: "000000", HR: "ffffff"}
thresholds:
  ptm: 0.7
  uncertain: null
  themes: {HR: 0.4}
ignore:
  authors: ["dependabot[bot]"]
  labels: [wontfix]
  bots: false
backfill:
  labels: all
"""


def test_every_setting_is_read() -> None:
    settings = parse(FULL, DEFAULT)
    policy = settings.policy(DEFAULT)
    assert settings.comment and settings.backfill.labels == "all"
    assert policy.ptm_label == "model: related" and policy.abstain == "model: unsure"
    assert policy.ptm_threshold == 0.7 and policy.uncertain_band is None and policy.subthemes
    assert policy.theme_thresholds == {"HR": 0.4}
    colors = {spec.name: spec.color for spec in policy.all_labels()}
    assert colors["model: related"] == "000000" and colors["model: hardware and computation resource"] == "ffffff"


def test_an_empty_file_means_the_defaults() -> None:
    assert parse("", DEFAULT) == RepoSettings() == parse("# nothing\n", DEFAULT)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("labels: [oops", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("enabeld: true\n", "enabeld"),
        ("thresholds: {ptm: 1.5}\n", "thresholds.ptm"),
        ("thresholds: {themes: {XX: 0.5}}\n", "unknown theme codes"),
        ("labels: {colors: {HR: '#ff0000'}}\n", "colour"),
        ("labels: {prefix: ''}\n", "labels.prefix"),
        ("backfill: {labels: some}\n", "backfill.labels"),
    ],
)
def test_a_wrong_file_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigProblem, match=message):
        parse(text, DEFAULT)


@pytest.mark.parametrize(
    ("author", "kind", "labels", "reason"),
    [
        ("dependabot[bot]", "Bot", [], "ignored"),
        ("renovate[bot]", "Bot", [], "bot"),
        ("alice", "User", ["WontFix"], "wontfix"),
        ("alice", "User", ["bug"], None),
    ],
)
def test_ignore_rules(author: str, kind: str, labels: list[str], reason: str | None) -> None:
    settings = RepoSettings.model_validate({"ignore": {"authors": ["dependabot[bot]"], "labels": ["wontfix"]}})
    found = settings.ignore_reason(author, kind, labels)
    assert (found is None) if reason is None else (reason in found)


PTM = ("CUDA out of memory when loading the SDXL model on an 8 GB GPU",
       "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB while loading the checkpoint.")


def test_the_repositorys_file_is_followed_and_refreshed_on_push(stack: Stack) -> None:
    stack.sim.set_file(REPO, ".github/ptm-triage.yml", "labels: {prefix: model}\ncomment: true\n")
    first = open_issue(stack, *PTM)
    assert "model: related" in stack.labels_on(first)
    comments = [x for x in stack.sim.exchanges if x.method == "POST" and x.path.endswith(f"/{first}/comments")]
    assert len(comments) == 1 and "model: related" in comments[0].request_json["body"]
    config = stack.get("/api/config", repo=REPO)
    assert config["source"] == f"{REPO}:.github/ptm-triage.yml"
    train_share = json.loads((DEFAULT_MODEL_DIR / "bert" / "meta.json").read_text())["train_ptm_share"]
    assert config["ptm_share"] == {"share": train_share, "source": "training", "issues": 0, "known": 0}, \
        "one issue is too few to estimate the repository's share from"

    stack.sim.set_file(REPO, ".github/ptm-triage.yml", "enabled: false\n")
    second = open_issue(stack, *PTM)
    assert "model: related" in stack.labels_on(second), "cached until a push changes the file"
    stack.send("push", stack.sim.push_payload(REPO, INSTALLATION, [".github/ptm-triage.yml"]))
    stack.settle()
    third = open_issue(stack, *PTM)
    assert stack.labels_on(third) == set()
    assert stack.get("/api/config", repo=REPO)["settings"]["enabled"] is False


def test_the_owners_github_repository_is_the_fallback(stack: Stack) -> None:
    org_repo = "octo-org/.github"
    stack.sim.add_installation(INSTALLATION, "octo-org", [REPO, org_repo], account_type="Organization")
    stack.sim.set_file(org_repo, ".github/ptm-triage.yml", "labels: {prefix: org}\n")
    number = open_issue(stack, *PTM)
    assert "org: related" in stack.labels_on(number)
    assert stack.get("/api/config", repo=REPO)["source"] == f"{org_repo}:.github/ptm-triage.yml"


def test_an_invalid_file_leaves_the_defaults_and_says_why(stack: Stack) -> None:
    stack.sim.set_file(REPO, ".github/ptm-triage.yml", "thresholds: {ptm: 2}\n")
    number = open_issue(stack, *PTM)
    assert DEFAULT.ptm_label in stack.labels_on(number)
    config = stack.get("/api/config", repo=REPO)
    assert "thresholds.ptm" in config["error"]
    assert config["settings"] == json.loads(RepoSettings().model_dump_json())


def test_ignored_authors_are_left_alone(stack: Stack) -> None:
    stack.sim.set_file(REPO, ".github/ptm-triage.yml", "ignore: {authors: [alice]}\n")
    number = open_issue(stack, *PTM, user="alice")
    assert stack.labels_on(number) == set()
    bot = open_issue(stack, *PTM, user="helper[bot]", user_type="Bot")
    assert stack.labels_on(bot) == set()
    assert stack.get("/api/issues", repo=REPO)["total"] == 2


def test_an_invalid_file_that_asks_for_comments_gets_one_naming_the_problem(stack: Stack) -> None:
    stack.sim.set_file(REPO, ".github/ptm-triage.yml", "comment: true\nthresholds: {ptm: 2}\n")
    first, second = open_issue(stack, *PTM), open_issue(stack, *PTM)
    said = [x.request_json["body"] for x in stack.sim.exchanges if x.method == "POST" and x.path.endswith("/comments")]
    assert len(said) == 1 and "thresholds.ptm" in said[0] and f"/{first}/comments" in next(
        x.path for x in stack.sim.exchanges if x.method == "POST" and x.path.endswith("/comments"))
    assert DEFAULT.ptm_label in stack.labels_on(second), "the defaults serve meanwhile"
