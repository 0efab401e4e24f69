"""Generated requests, property-based: no answer is a 5xx, and once the worker is idle no delivery is left
``pending`` or ``processing``.

- hypothesis: ``WEBHOOK_REQUESTS`` deliveries made from GitHub's payload examples (``../shared/github-webhooks``)
  with fields removed, replaced by strings, lists, objects, nulls, integers beyond 64 bits and deep nesting,
  most signed, some unsigned or wrongly signed;
- schemathesis: every route the app's own ``/openapi.json`` describes, with generated parameters (valid and
  invalid ones), as an anonymous caller, with an API token and with a wrong one.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from app.config import Settings
from app.web.access import create_api_token
from app.web.main import create_app
from tests.conftest import WEBHOOK_EXAMPLES
from tests.servers import serve
from tests.waiting import HTTP_TIMEOUT_S, wait_until
from tests.web.test_webhook import SECRET, headers, settle

WEBHOOK_REQUESTS = 3000
API_REQUESTS_PER_ROUTE = 1000
PARAMETERLESS = {"GET /healthz", "POST /webhook"}  # one request is all there is to generate
EXAMPLES = [(path.parent.name, json.loads(path.read_text())) for path in sorted(WEBHOOK_EXAMPLES.glob("*/*.json"))]
DEEP = "__deeply nested__"
Path_ = tuple[str | int, ...]


def paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every place in a JSON value, deepest last."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from paths(child, (*prefix, key))


REPLACEMENTS = st.one_of(
    st.just("a string"), st.just(["a", "list"]), st.just({"an": "object"}), st.none(), st.booleans(),
    st.sampled_from([2**63, 2**64 + 1, -(2**63) - 1, 10**30, 1.5e308, -0.0]), st.just(DEEP),
    st.text(max_size=20),
)


@st.composite
def mutated_delivery(draw: st.DrawFn) -> tuple[str, bytes]:
    """(event, body): an example payload with one to three places removed or replaced."""
    event, payload = draw(st.sampled_from(EXAMPLES))
    payload = copy.deepcopy(payload)
    for _ in range(draw(st.integers(1, 3))):
        places = list(paths(payload))
        if not places:
            break
        *parent_path, key = draw(st.sampled_from(places))
        parent = payload
        for step in parent_path:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = copy.deepcopy(draw(REPLACEMENTS))
    depth = draw(st.sampled_from([64, 2_000, 200_000]))
    text = json.dumps(payload).replace(json.dumps(DEEP), "[" * depth + "]" * depth)
    return event, text.encode()


@pytest.fixture
def service(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    settings = make_settings(github_webhook_secret=SECRET, dry_run=True, model_kind="baseline")
    with TestClient(create_app(settings)) as client:
        yield client


def test_generated_webhook_deliveries_get_no_5xx_and_all_end_in_an_outcome(service: TestClient) -> None:
    answers: dict[int, int] = {}

    @settings(max_examples=WEBHOOK_REQUESTS, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(mutated_delivery(), st.sampled_from(["signed"] * 8 + ["unsigned", "forged"]))
    def deliver(delivery: tuple[str, bytes], signing: str) -> None:
        event, body = delivery
        sent = headers(event, body)
        if signing == "unsigned":
            del sent["X-Hub-Signature-256"]
        elif signing == "forged":
            sent["X-Hub-Signature-256"] = "sha256=" + "0" * 64
        response = service.post("/webhook", content=body, headers=sent)
        answers[response.status_code] = answers.get(response.status_code, 0) + 1
        assert response.status_code < 500, (event, response.status_code, response.text[:300])
        if signing != "signed":
            assert response.status_code == 401
        else:
            assert response.status_code in (200, 202) or "detail" in response.json(), response.text[:300]

    deliver()
    assert sum(answers.values()) >= WEBHOOK_REQUESTS and answers.get(202, 0) > WEBHOOK_REQUESTS // 2, answers
    counts = settle(service)
    assert set(counts) <= {"done", "skipped", "failed"}, counts
    repositories = [i["repo"] for i in service.get("/api/issues", params={"limit": 1000}).json()["issues"]]
    for path in ["/api/stats", "/api/issues", "/api/backfill", "/dashboard",
                 *(f"/dashboard/{name}" for name in sorted(set(repositories)) if name.count("/") == 1)]:
        assert service.get(path).status_code == 200, path  # what the deliveries stored reads back


def test_every_route_of_the_openapi_description_answers_generated_requests_without_5xx(
    make_settings: Callable[..., Settings],
) -> None:
    config = make_settings(github_webhook_secret=SECRET, dry_run=True, model_kind="baseline")
    sent: dict[str, int] = {}
    app = create_app(config)
    with serve(app) as url:
        with app.state.services.db.session() as session:
            token = create_api_token(session, "generated-requests")
        callers = [{}, {"authorization": f"Bearer {token}"}, {"authorization": "Bearer ptmt_wrong"}]
        for event, payload in EXAMPLES:  # something to read
            body = json.dumps(payload).encode()
            assert httpx.post(f"{url}/webhook", content=body, headers=headers(event, body),
                              timeout=HTTP_TIMEOUT_S).status_code in (200, 202)
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.label for op in operations} >= {"GET /api/stats", "GET /api/issues", "POST /webhook"}
        for operation in operations:
            negative = [] if operation.label in PARAMETERLESS else [GenerationMode.NEGATIVE]
            cases = st.one_of(*(operation.as_strategy(mode) for mode in [GenerationMode.POSITIVE, *negative]))

            @settings(max_examples=API_REQUESTS_PER_ROUTE, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=cases, caller=st.sampled_from(callers))
            def call(case: Any, caller: dict[str, str]) -> None:
                response = case.call(headers=caller, timeout=HTTP_TIMEOUT_S)
                sent[case.operation.label] = sent.get(case.operation.label, 0) + 1
                assert response.status_code < 500, (case.method, case.formatted_path, case.query,
                                                     response.text[:300])

            call()

        def idle() -> bool:
            counts = httpx.get(f"{url}/healthz", timeout=HTTP_TIMEOUT_S).json()["deliveries"]
            return not counts.get("pending") and not counts.get("processing")

        wait_until(idle, "no delivery pending or processing")
    with_parameters = {label: n for label, n in sent.items() if label not in PARAMETERLESS}
    assert min(with_parameters.values()) >= API_REQUESTS_PER_ROUTE // 2, sent
    assert sum(sent.values()) >= 7 * API_REQUESTS_PER_ROUTE
