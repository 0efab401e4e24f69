"""``GET /metrics`` on the running service against the simulator: what a Prometheus scrape reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.web.main import create_app
from tests.e2e import INSTALLATION, REPO, Stack, open_issue
from tests.github_sim import GitHubSimulator
from tests.servers import serve
from tests.waiting import HTTP_TIMEOUT_S, wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=HTTP_TIMEOUT_S)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def baseline_stack(settings_for: Callable[..., Settings], simulator: GitHubSimulator) -> Iterator[Stack]:
    with serve(create_app(settings_for(model_kind="baseline"))) as url:
        stack = Stack(simulator, url)
        assert stack.send("installation", simulator.installation_payload("created", INSTALLATION)).status_code == 202
        stack.settle()
        yield stack


def test_a_scrape_counts_deliveries_queue_latency_classifier_github_and_backfills(baseline_stack: Stack) -> None:
    stack = baseline_stack
    before = scrape(stack.url)
    # A label write that GitHub fails four times: the client's own 3 retries (tenacity) fail too, and the
    # queue tries the delivery again later.
    stack.sim.fail_next("POST", f"/repos/{REPO}/issues/", 502, times=4)
    numbers = [open_issue(stack, f"CUDA out of memory with the model, case {n}", "torch OOM") for n in range(3)]
    assert httpx.post(f"{stack.url}/webhook", content=b"{}", headers={"X-GitHub-Event": "issues"},
                      timeout=HTTP_TIMEOUT_S).status_code == 401
    stack.settle()
    after = scrape(stack.url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("ptm_triage_webhook_requests_total", code="202") == 3
    assert grew("ptm_triage_webhook_requests_total", code="401") == 1
    assert grew("ptm_triage_deliveries_total", event="issues", outcome="done") == 3
    assert grew("ptm_triage_deliveries_total", event="issues", outcome="retry") == 1
    assert grew("ptm_triage_delivery_processing_seconds_count", event="issues") == 4
    assert value(after, "ptm_triage_delivery_processing_seconds_sum", event="issues") > 0
    assert grew("ptm_triage_classification_batch_size_count") >= 3
    assert grew("ptm_triage_classification_seconds_count") >= 3
    assert grew("ptm_triage_github_requests_total", method="POST", status="502") == 4
    assert grew("ptm_triage_github_requests_total", method="POST", status="200") >= len(numbers)
    assert value(after, "ptm_triage_github_rate_limit_remaining", client=f"installation:{INSTALLATION}") > 0
    assert value(after, "ptm_triage_queue_deliveries", status="pending") == 0
    assert value(after, "ptm_triage_queue_deliveries", status="done") >= 4
    assert value(after, "ptm_triage_queue_oldest_pending_age_seconds") == 0
    assert value(after, "ptm_triage_backfills", status="done") == 1
    assert REPO not in httpx.get(f"{stack.url}/metrics", timeout=HTTP_TIMEOUT_S).text


def test_the_oldest_pending_delivery_ages_while_no_worker_runs(
    settings_for: Callable[..., Settings], simulator: GitHubSimulator,
) -> None:
    with serve(create_app(settings_for(model_kind="baseline", worker="off"))) as url:
        stack = Stack(simulator, url)
        assert stack.send("installation", simulator.installation_payload("created", INSTALLATION)).status_code == 202
        first = scrape(url)
        assert value(first, "ptm_triage_queue_deliveries", status="pending") == 1
        wait_until(lambda: value(scrape(url), "ptm_triage_queue_oldest_pending_age_seconds") > value(
            first, "ptm_triage_queue_oldest_pending_age_seconds"), "the oldest pending delivery to age")
