"""The service end to end over HTTP on loopback: GitHub simulator <-> service, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from app.config import Settings
from app.stats.corrected import corrected_comparison
from app.web.main import create_app
from tests.e2e import INSTALLATION, POLICY, REPO, Stack, open_issue
from tests.github_sim import BOT_LOGIN, GitHubSimulator
from tests.openapi_check import validate_request, validate_response
from tests.servers import serve
from tests.waiting import HTTP_TIMEOUT_S, wait_until

PTM_TITLE = "CUDA out of memory when loading the SDXL model on an 8 GB GPU"
PTM_BODY = (
    "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. "
    "The model checkpoint loads fine on CPU but fails on the GPU with fp16 enabled."
)
OTHER_TITLE = "Navbar links overlap on mobile Safari"
OTHER_BODY = "The CSS of the top navigation bar breaks below 400px wide; the links overlap the logo."


def test_installation_opened_labelled_closed_and_counted(stack: Stack) -> None:
    health = stack.get("/healthz")
    assert health["dry_run"] is False and health["model"].startswith("bert-minilm@")

    ptm = open_issue(stack, PTM_TITLE, PTM_BODY, created_days_ago=9)
    other = open_issue(stack, OTHER_TITLE, OTHER_BODY, created_days_ago=2)

    assert POLICY.ptm_label in stack.labels_on(ptm)
    assert POLICY.label_name("HR") in stack.labels_on(ptm)
    assert not stack.labels_on(other) & {POLICY.ptm_label}
    repo_labels = {label["name"]: label for label in stack.sim.repo_labels(REPO)}
    spec = {s.name: s for s in POLICY.all_labels()}[POLICY.ptm_label]
    assert repo_labels[POLICY.ptm_label]["color"] == spec.color
    assert repo_labels[POLICY.ptm_label]["description"] == spec.description

    for number in (ptm, other):
        stack.sim.set_issue_state(REPO, number, "closed")
        assert stack.send("issues", stack.sim.issues_payload("closed", REPO, number, INSTALLATION)).status_code == 202
    stack.settle()

    issues = {i["number"]: i for i in stack.get("/api/issues", repo=REPO)["issues"]}
    assert issues[ptm]["state"] == "closed" and issues[ptm]["resolution_days"] == 9
    assert issues[other]["resolution_days"] == 2
    assert issues[ptm]["prediction"]["ptm"] is True and issues[ptm]["prediction"]["model"] == health["model"]

    stats = stack.get("/api/stats", repo=REPO)["overall"]
    assert stats["ptm"]["n"] == 1 and stats["ptm"]["max"] == 9
    assert stats["non_ptm"]["n"] == 1 and stats["non_ptm"]["max"] == 2
    assert stats["themes"]["HR"]["n"] == 1
    page = httpx.get(f"{stack.url}/dashboard/{REPO}", timeout=HTTP_TIMEOUT_S).text
    assert REPO in page and 'id="chart-resolution"' in page

    # Every request the app sent and every answer it got is what GitHub's REST description allows.
    for x in stack.sim.exchanges:
        validate_request(x.method, x.path, x.query, x.request_json)
        validate_response(x.method, x.path, x.status, x.response_json)


def test_reopen_then_close_counts_the_final_closure(stack: Stack) -> None:
    number = open_issue(stack, PTM_TITLE, PTM_BODY, created_days_ago=4)
    for state, action in (("closed", "closed"), ("open", "reopened"), ("closed", "closed")):
        stack.sim.set_issue_state(REPO, number, state)
        stack.send("issues", stack.sim.issues_payload(action, REPO, number, INSTALLATION))
        stack.settle()
        if state == "open":
            assert stack.get("/api/issues", repo=REPO)["issues"][0]["resolution_days"] is None
    issue = stack.get("/api/issues", repo=REPO)["issues"][0]
    assert issue["reopen_count"] == 1 and issue["resolution_days"] == 4


def test_redelivery_of_the_same_id_changes_nothing(stack: Stack) -> None:
    issue = stack.sim.add_issue(REPO, PTM_TITLE, PTM_BODY)
    payload = stack.sim.issues_payload("opened", REPO, issue["number"], INSTALLATION)
    assert stack.send("issues", payload, delivery="d-1").status_code == 202
    stack.settle()
    writes, api = stack.label_writes(), stack.get("/api/issues", repo=REPO)
    again = stack.send("issues", payload, delivery="d-1")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    stack.settle()
    assert stack.label_writes() == writes
    assert stack.get("/api/issues", repo=REPO) == api


def test_humans_first(stack: Stack) -> None:
    # Opened with one of the app's labels already (an issue template, a maintainer): left as it is.
    preset = open_issue(stack, PTM_TITLE, PTM_BODY, labels=[POLICY.label_name("SE")])
    assert stack.labels_on(preset) == {POLICY.label_name("SE")}

    # A person removes the app's label: respected through later edits.
    number = open_issue(stack, PTM_TITLE, PTM_BODY)
    assert POLICY.ptm_label in stack.labels_on(number)
    # The app's own label events come back as deliveries too; they are not a person's correction.
    stack.send("issues", stack.sim.issues_payload("labeled", REPO, number, INSTALLATION, sender=BOT_LOGIN,
                                                  label=POLICY.ptm_label))
    stack.settle()
    kept = stack.labels_on(number) - {POLICY.ptm_label}
    stack.sim.set_issue_labels(REPO, number, sorted(kept))
    stack.send("issues", stack.sim.issues_payload("unlabeled", REPO, number, INSTALLATION, sender="maintainer",
                                                  label=POLICY.ptm_label))
    stack.settle()
    writes = stack.label_writes()
    stack.send("issues", stack.sim.issues_payload("edited", REPO, number, INSTALLATION,
                                                  changes={"body": {"from": "old"}}))
    stack.settle()
    assert stack.label_writes() == writes and POLICY.ptm_label not in stack.labels_on(number)
    assert stack.get("/api/issues", repo=REPO)["issues"][1]["labels_locked_by_human"] is True

    # In the statistics the person's labels win: `preset` counts with its theme, `number` by what is left.
    for n in (preset, number):
        stack.sim.set_issue_state(REPO, n, "closed")
        stack.send("issues", stack.sim.issues_payload("closed", REPO, n, INSTALLATION))
    stack.settle()
    stats = stack.get("/api/stats", repo=REPO)["overall"]
    left_ptm = bool(set(POLICY.decode(kept)[1]))
    assert stats["themes"]["SE"]["n"] == 1 + ("SE" in POLICY.decode(kept)[1])
    assert stats["ptm"]["n"] == 1 + left_ptm and stats["non_ptm"]["n"] == 1 - left_ptm


def test_a_restart_between_acknowledge_and_processing_loses_nothing(
    settings_for: Callable[..., Settings], simulator: GitHubSimulator
) -> None:
    numbers = [simulator.add_issue(REPO, f"{PTM_TITLE} #{i}", PTM_BODY)["number"] for i in range(3)]
    with serve(create_app(settings_for(worker="off"))) as url:  # acknowledges, then the process stops
        stack = Stack(simulator, url)
        assert stack.send("installation", simulator.installation_payload("created", INSTALLATION)).status_code == 202
        for number in numbers:
            assert stack.send("issues", simulator.issues_payload("opened", REPO, number, INSTALLATION)).status_code == 202
        assert stack.get("/healthz")["deliveries"]["pending"] == 4
        assert all(not stack.labels_on(n) for n in numbers)
    with serve(create_app(settings_for())) as url:  # the next start picks the work up
        stack = Stack(simulator, url)
        stack.settle()
        assert all(POLICY.ptm_label in stack.labels_on(n) for n in numbers)
        assert stack.get("/healthz")["deliveries"] == {"done": 4}


def test_an_issue_in_a_language_the_model_cannot_read_asks_a_person_and_leaves_the_statistics(
    stack: Stack,
) -> None:
    number = open_issue(stack, "加载 SDXL 模型后显存不足", "运行时出现 CUDA out of memory，显卡是 8GB，怎么办？",
                        created_days_ago=30)
    assert stack.labels_on(number) == {POLICY.abstain}
    stack.sim.set_issue_state(REPO, number, "closed")
    assert stack.send("issues", stack.sim.issues_payload("closed", REPO, number, INSTALLATION)).status_code == 202
    stack.settle()
    (issue,) = stack.get("/api/issues", repo=REPO)["issues"]
    assert issue["prediction"]["abstain_reason"] == "language not supported" and issue["prediction"]["abstained"]
    stats = stack.get("/api/stats", repo=REPO)["overall"]
    assert stats["excluded"]["language"] == 1 and stats["unclassified_closed"] == 0
    assert stats["ptm"]["n"] == stats["non_ptm"]["n"] == 0
    page = httpx.get(f"{stack.url}/dashboard/{REPO}", timeout=HTTP_TIMEOUT_S).text
    assert "1 issue in a language the model cannot read" in page


def test_github_failing_once_is_retried(settings_for: Callable[..., Settings], simulator: GitHubSimulator) -> None:
    simulator.fail_next("POST", f"/repos/{REPO}/issues/", 502)
    with serve(create_app(settings_for())) as url:
        stack = Stack(simulator, url)
        stack.send("installation", simulator.installation_payload("created", INSTALLATION))
        number = open_issue(stack, PTM_TITLE, PTM_BODY)
        wait_until(lambda: POLICY.ptm_label in stack.labels_on(number), "the retried delivery labelled the issue")
        assert any(x.status == 502 for x in simulator.exchanges)


def test_stats_switches_and_the_balanced_method(stack: Stack) -> None:
    numbers = [open_issue(stack, PTM_TITLE, PTM_BODY, created_days_ago=d) for d in (3, 8, 20)]
    numbers += [open_issue(stack, OTHER_TITLE, OTHER_BODY, created_days_ago=d) for d in (1, 2, 4)]
    open_issue(stack, OTHER_TITLE, OTHER_BODY, created_days_ago=6, user="ci[bot]", user_type="Bot")
    for number in numbers:
        reason = "not_planned" if number == numbers[2] else "completed"
        stack.sim.set_issue_state(REPO, number, "closed", reason)
        stack.send("issues", stack.sim.issues_payload("closed", REPO, number, INSTALLATION))
    stack.settle()

    everything = stack.get("/api/stats", repo=REPO)["overall"]
    # The bot's issue is left unclassified (repositories ignore bots by default) and is still open.
    assert everything["ptm"]["days"] == [3, 8, 20] and everything["open"]["unclassified"] == 1
    assert everything["open_age"]["unclassified"]["days"] == [6]
    # The corrected comparison reads the stored PTM probabilities of the same closed issues.
    scores = {i["number"]: i["prediction"]["ptm_score"] for i in stack.get("/api/issues", repo=REPO)["issues"]
              if i["prediction"]}  # the bot's issue has none
    days = dict(zip(numbers, (3, 8, 20, 1, 2, 4), strict=True))
    assert everything["corrected"] == corrected_comparison(list(days.values()), [scores[n] for n in days])
    planned = stack.get("/api/stats", repo=REPO, include_not_planned="false", include_bots="false")["overall"]
    assert planned["ptm"]["days"] == [3, 8]
    assert planned["excluded"] == {"not_planned": 1, "bots": 1, "language": 0, "period": 0, "type": 0, "theme": 0}
    balanced = stack.get("/api/stats", repo=REPO, method="balanced")
    assert balanced["method"] == "balanced" and balanced["pooled"]["n_per_group"] == 3
    assert httpx.get(f"{stack.url}/api/stats", params={"method": "median"}, timeout=HTTP_TIMEOUT_S).status_code == 422


def test_deleted_and_transferred_issues_leave_the_statistics(stack: Stack) -> None:
    kept, deleted, moved = (open_issue(stack, PTM_TITLE, PTM_BODY, created_days_ago=5) for _ in range(3))
    for number in (kept, deleted, moved):
        stack.sim.set_issue_state(REPO, number, "closed")
        stack.send("issues", stack.sim.issues_payload("closed", REPO, number, INSTALLATION))
    stack.send("issues", stack.sim.issues_payload("deleted", REPO, deleted, INSTALLATION))
    stack.send("issues", stack.sim.issues_payload("transferred", REPO, moved, INSTALLATION))
    stack.send("issues", stack.sim.issues_payload("locked", REPO, kept, INSTALLATION))
    stack.settle()
    assert [i["number"] for i in stack.get("/api/issues", repo=REPO)["issues"]] == [kept]
    assert stack.get("/api/stats", repo=REPO)["overall"]["ptm"]["days"] == [5]
