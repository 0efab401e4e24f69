"""Each repository's PTM share: estimated from its own issues, decisions made at it, flips relabelled once."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pytest
from sqlalchemy import select

from app.config import Settings
from app.github.client import GitHubClientFactory
from app.services import Services
from app.store.db import Database
from app.store.models import RepoShare
from app.store.queries import schedule_backfill, upsert_installation, upsert_repository
from app.triage.classifier import LABELS, PTM, IssueText, Prediction, thresholded
from app.triage.prior_shift import correct_prior, estimate_share
from app.workflow import backfill, labelling, repo_share
from app.workflow.repo_config import RepoSettings
from tests.e2e import POLICY
from tests.github_sim import GitHubSimulator
from tests.triage.test_prior_shift import calibrated_sample

REPO, INSTALLATION = "octo/speech", 8
TRAIN_SHARE = 0.57


class Calibrated:
    """A calibrated model at TRAIN_SHARE: the PTM probability is the title (``p=0.42``); HR when PTM."""

    version = "calibrated@1"
    train_ptm_share = TRAIN_SHARE

    def predict(self, texts: Sequence[IssueText]) -> list[Prediction]:
        thresholds = dict.fromkeys(LABELS, 0.5)
        return [thresholded({**dict.fromkeys(LABELS, 0.1), PTM: float(t.title[2:]), "HR": 0.9}, thresholds,
                            self.version) for t in texts]


@pytest.fixture
def services(make_settings: Callable[..., Settings], database_url: str, github_factory: GitHubClientFactory,
             github_sim: GitHubSimulator) -> Iterator[Services]:
    github_sim.add_installation(INSTALLATION, "octo", [REPO])
    db = Database(make_settings(database_url=database_url).sqlalchemy_url)
    db.migrate()
    yield Services(settings=make_settings(database_url=database_url), db=db, classifier=Calibrated(),
                   policy=POLICY, github=github_factory)
    db.dispose()


def repository(services: Services, sim: GitHubSimulator) -> int:
    with services.db.session() as session:
        upsert_installation(session, {"id": INSTALLATION, "account": {"login": "octo"}})
        repo = upsert_repository(session, {"id": sim.state.find_repo(REPO).id, "full_name": REPO}, INSTALLATION)
        schedule_backfill(session, repo.id, INSTALLATION)
        return repo.id


def app_labels(sim: GitHubSimulator, number: int) -> set[str]:
    return {label["name"] for label in sim.issue(REPO, number)["labels"] if POLICY.is_app_label(label["name"])}


def label_writes(sim: GitHubSimulator) -> int:
    return sum(1 for x in sim.exchanges if x.method in {"POST", "DELETE"} and "/issues/" in x.path)


async def test_a_minority_share_is_estimated_and_every_decision_follows_it(
    services: Services, github_sim: GitHubSimulator,
) -> None:
    p, truth = calibrated_sample(0.15, 160, seed=3)
    for score in p:
        github_sim.add_issue(REPO, f"p={score:.6f}")
    person = github_sim.add_issue(REPO, "p=0.010000", labels=[POLICY.ptm_label])["number"]  # a person said PTM
    repository_id = repository(services, github_sim)
    done = await backfill.run(services, repository_id)
    assert done["status"] == "done" and done["imported"] == 161

    with services.db.session() as session:
        row = session.get(RepoShare, repository_id)
        share = repo_share.current(services, session, repository_id)
    scores = np.round(p, 6)
    expected = estimate_share([*scores, 0.01], TRAIN_SHARE, known=[None] * len(scores) + [True])
    assert (row.source, row.issues, row.known) == ("estimated", 161, 1)
    assert share.share == pytest.approx(expected, abs=1e-6) and share.share == pytest.approx(truth.mean(), abs=0.06)

    # Every issue carries the labels of its decision at the estimated share; the first page's
    # issues, decided at the training share before there was an estimate, were labelled again.
    at_share = [set(POLICY.labels_for(repo_share.moved(prediction, share.share, TRAIN_SHARE)))
                for prediction in Calibrated().predict([IssueText(f"p={s:.6f}") for s in scores])]
    unmoved = [set(POLICY.labels_for(prediction)) for prediction in Calibrated().predict(
        [IssueText(f"p={s:.6f}") for s in scores])]
    assert [app_labels(github_sim, n + 1) for n in range(len(scores))] == at_share
    false_ptm = sum(POLICY.ptm_label in labels and not t for labels, t in zip(at_share, truth, strict=True))
    assert false_ptm < sum(POLICY.ptm_label in labels and not t for labels, t in zip(unmoved, truth, strict=True))
    assert app_labels(github_sim, person) == {POLICY.ptm_label}

    writes = label_writes(github_sim)
    gh = await services.github.for_installation(INSTALLATION)
    assert await labelling.follow_share(services, gh, repository_id, RepoSettings()) == 0
    assert label_writes(github_sim) == writes, "nothing left to relabel"


async def test_few_issues_keep_the_deployment_share(services: Services, github_sim: GitHubSimulator) -> None:
    for score in (0.6, 0.7, 0.95):
        github_sim.add_issue(REPO, f"p={score}")
    services.settings = services.settings.model_copy(update={"ptm_share": 0.2})
    repository_id = repository(services, github_sim)
    await backfill.run(services, repository_id)
    with services.db.session() as session:
        assert repo_share.current(services, session, repository_id) == repo_share.Share(0.2, "deployment")
        assert session.scalar(select(RepoShare)) is None
    labelled = [POLICY.ptm_label in app_labels(github_sim, n) for n in (1, 2, 3)]
    at_deployment_share = [bool(correct_prior(s, 0.2, TRAIN_SHARE) >= 0.5) for s in (0.6, 0.7, 0.95)]
    assert labelled == at_deployment_share == [False, False, True]


def test_an_estimate_another_worker_stored_meanwhile_stands(services: Services, github_sim: GitHubSimulator) -> None:
    """Two workers (processes: no lock in common) finding the estimate due at once: only the first one's is stored,
    so only its worker labels the issues it flips."""
    repo_id = repository(services, github_sim)
    training = repo_share.Share(0.57, "training")
    first, second = repo_share.Share(0.2, "estimated", 50), repo_share.Share(0.3, "estimated", 50)
    with services.db.session() as mine, services.db.session() as theirs:
        assert mine.get(RepoShare, repo_id) is None  # both read no estimate yet
        assert repo_share._record(theirs, repo_id, training, first)
        theirs.commit()
        assert not repo_share._record(mine, repo_id, training, second), "a second first estimate was stored"
    later = repo_share.Share(0.25, "estimated", 75)
    with services.db.session() as mine, services.db.session() as theirs:
        assert repo_share._record(theirs, repo_id, first, later)
        theirs.commit()
        assert not repo_share._record(mine, repo_id, first, repo_share.Share(0.4, "estimated", 75))
    with services.db.session() as session:
        assert session.get(RepoShare, repo_id).share == 0.25
