"""POST /webhook on the service as a newcomer runs it (dry-run, SQLite): what it accepts, what it refuses."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.store.models import Delivery, Issue, Prediction
from app.web.main import create_app
from tests import secret_watch
from tests.conftest import WEBHOOK_EXAMPLES
from tests.waiting import wait_until

SECRET = "test-secret"
secret_watch.register(SECRET)
EXAMPLES = sorted(WEBHOOK_EXAMPLES.glob("*/*.json"))


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(event: str, body: bytes, delivery: str | None = None, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body),
        **extra,
    }


@pytest.fixture
def client(make_settings) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = make_settings(github_webhook_secret=SECRET, dry_run=True, max_body_bytes=25 * 1024 * 1024)
    with TestClient(create_app(settings)) as c:
        yield c


def settle(client: TestClient) -> dict[str, int]:
    seen: dict[str, int] = {}

    def settled() -> bool:
        seen.clear()
        seen.update(client.get("/healthz").json()["deliveries"])
        return not seen.get("pending") and not seen.get("processing")

    wait_until(settled, lambda: f"deliveries still queued: {seen}")
    return seen


def delivery(client: TestClient, delivery_id: str) -> Delivery:
    with client.app.state.services.db.session() as session:
        return session.get(Delivery, delivery_id)


def test_examples_exist() -> None:
    assert len(EXAMPLES) > 40, f"expected GitHub's webhook examples under {WEBHOOK_EXAMPLES}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_signed_example_is_accepted_and_processed(client: TestClient, path: Path) -> None:
    body = path.read_bytes()
    delivery_id = str(uuid.uuid4())
    response = client.post("/webhook", content=body, headers=headers(path.parent.name, body, delivery_id))
    assert 200 <= response.status_code < 300, response.text
    settle(client)
    stored = delivery(client, delivery_id)
    assert stored is not None and stored.status in {"done", "skipped"}, (stored.status, stored.error)
    assert not (stored.error or "").startswith("payload's"), "GitHub's own payload is the shape the handlers read"


@pytest.mark.parametrize("path", EXAMPLES[:10], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_unsigned_and_forged_examples_get_401(client: TestClient, path: Path) -> None:
    body = path.read_bytes()
    unsigned = headers(path.parent.name, body)
    del unsigned["X-Hub-Signature-256"]
    assert client.post("/webhook", content=body, headers=unsigned).status_code == 401
    forged = headers(path.parent.name, body, **{"X-Hub-Signature-256": sign(body, "wrong")})
    assert client.post("/webhook", content=body, headers=forged).status_code == 401
    sha1_only = headers(path.parent.name, body)
    del sha1_only["X-Hub-Signature-256"]
    sha1_only["X-Hub-Signature"] = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert client.post("/webhook", content=body, headers=sha1_only).status_code == 401
    with client.app.state.services.db.session() as session:
        assert session.scalars(select(Delivery)).all() == []


def test_ping_answers_pong_and_is_stored(client: TestClient) -> None:
    body = (WEBHOOK_EXAMPLES / "ping" / "payload.json").read_bytes()
    response = client.post("/webhook", content=body, headers=headers("ping", body, "ping-1"))
    assert response.status_code == 200 and response.json()["msg"] == "pong"
    assert delivery(client, "ping-1").status == "done"


def test_redelivery_is_acknowledged_and_not_done_twice(client: TestClient) -> None:
    body = (WEBHOOK_EXAMPLES / "issues" / "opened.payload.json").read_bytes()
    first = client.post("/webhook", content=body, headers=headers("issues", body, "same-id"))
    assert first.status_code == 202
    settle(client)
    again = client.post("/webhook", content=body, headers=headers("issues", body, "same-id"))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    settle(client)
    with client.app.state.services.db.session() as session:
        assert len(session.scalars(select(Prediction)).all()) == 1
        assert len(session.scalars(select(Issue)).all()) == 1


def _opened_with(title: str, body: object) -> bytes:
    data = json.loads((WEBHOOK_EXAMPLES / "issues" / "opened.payload.json").read_text())
    data["issue"]["title"], data["issue"]["body"] = title, body
    data["issue"]["number"] = abs(hash(title)) % 100000
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("content", "extra", "status", "message"),
    [
        (b"{not json", {}, 400, "not valid JSON"),
        (b"[1, 2]", {}, 400, "JSON object"),
        (b'{"action": "opened", "x": "\xff\xfe"}', {}, 400, "UTF-8"),
        (b'{"action": "opened"}', {"Content-Type": "text/plain"}, 415, "content type"),
        (b'{"action": "opened"}', {"X-GitHub-Event": ""}, 400, "X-GitHub-Event"),
        (b'{"action": "opened"}', {"X-GitHub-Event": "e" * 65}, 400, "X-GitHub-Event"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", {}, 400, "nested too deeply"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_problem(
    client: TestClient, content: bytes, extra: dict[str, str], status: int, message: str
) -> None:
    response = client.post("/webhook", content=content, headers={**headers("issues", content), **extra})
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_body_over_25_mb_gets_413(client: TestClient) -> None:
    content = b'{"pad": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    response = client.post("/webhook", content=content, headers=headers("issues", content))
    assert response.status_code == 413


def test_form_encoded_payload_is_accepted(client: TestClient) -> None:
    from urllib.parse import urlencode

    payload = (WEBHOOK_EXAMPLES / "issues" / "opened.payload.json").read_text()
    content = urlencode({"payload": payload}).encode()
    h = headers("issues", content, "form-1", **{"Content-Type": "application/x-www-form-urlencoded"})
    assert client.post("/webhook", content=content, headers=h).status_code == 202
    settle(client)
    assert delivery(client, "form-1").status == "done"


@pytest.mark.parametrize(
    ("event", "content", "status", "reason"),
    [
        ("star", b'{"action": "created"}', "skipped", "no handler for star.created"),
        ("issues", b'{"action": "fizzled"}', "skipped", "no handler for issues.fizzled"),
        ("issues", b'{"action": "opened", "repository": {"id": 1, "full_name": "a/b"}}', "skipped", "no issue"),
        ("issues", _opened_with("CUDA out of memory with SDXL", None), "done", None),
        ("issues", _opened_with("Huge log", "RuntimeError: boom\n" * 60000), "done", None),
    ],
    ids=["unknown-event", "unknown-action", "missing-field", "null-body", "one-megabyte-body"],
)
def test_odd_deliveries_are_recorded_and_never_stop_the_worker(
    client: TestClient, event: str, content: bytes, status: str, reason: str | None
) -> None:
    outcome_then_a_good_one(client, event, content, status, reason)


def _example_with(change: Callable[[dict], object]) -> bytes:
    data = json.loads((WEBHOOK_EXAMPLES / "issues" / "opened.payload.json").read_text())
    change(data)
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("content", "status", "reason"),
    [
        (_example_with(lambda d: d.update(action=["opened"])), "skipped", "cannot route issues"),
        (_example_with(lambda d: d.update(action={"opened": True})), "skipped", "cannot route issues"),
        (_example_with(lambda d: d.update(installation={"id": 2**70})), None, None),
        (_example_with(lambda d: d.update(installation="77")), None, None),
        (_example_with(lambda d: d["issue"].update(number="seven")), None, None),
        (_example_with(lambda d: d.update(action="x" * 300)), "skipped", "no handler"),
    ],
    ids=["action-list", "action-object", "installation-beyond-64-bits", "installation-string", "number-string",
         "action-too-long"],
)
def test_payloads_shaped_unlike_githubs_end_in_an_outcome_with_a_reason(
    client: TestClient, content: bytes, status: str | None, reason: str | None
) -> None:
    """Signed, so accepted (never a 5xx); then skipped or failed with its reason, never left queued."""
    outcome_then_a_good_one(client, "issues", content, status, reason)


def outcome_then_a_good_one(client: TestClient, event: str, content: bytes, status: str | None,
                            reason: str | None) -> None:
    """``content`` is acknowledged and ends ``status`` (any finished one, with None) with ``reason``;
    a good delivery after it is done."""
    response = client.post("/webhook", content=content, headers=headers(event, content, "odd"))
    assert response.status_code == 202, response.text
    settle(client)
    stored = delivery(client, "odd")
    if status is None:
        assert stored.status in ("done", "skipped", "failed")
        assert stored.status == "done" or stored.error
    else:
        assert stored.status == status, stored.error
    if reason:
        assert reason in stored.error
    good = (WEBHOOK_EXAMPLES / "issues" / "opened.payload.json").read_bytes()
    client.post("/webhook", content=good, headers=headers("issues", good, "after"))
    settle(client)
    assert delivery(client, "after").status == "done"


def test_a_redelivery_of_a_failed_or_skipped_delivery_is_processed_again(client: TestClient) -> None:
    listed = _example_with(lambda d: d.update(action=["opened"]))
    assert client.post("/webhook", content=listed, headers=headers("issues", listed, "fixed-later")).status_code == 202
    settle(client)
    assert delivery(client, "fixed-later").status == "skipped"
    good = (WEBHOOK_EXAMPLES / "issues" / "opened.payload.json").read_bytes()
    again = client.post("/webhook", content=good, headers=headers("issues", good, "fixed-later"))
    assert again.status_code == 202 and again.json()["status"] == "queued"
    settle(client)
    found = delivery(client, "fixed-later")
    assert (found.status, found.error, found.attempts) == ("done", None, 1)
    once_more = client.post("/webhook", content=good, headers=headers("issues", good, "fixed-later"))
    assert once_more.json()["status"] == "duplicate", "a delivery that is done is not done twice"


def test_healthz_reports_model_and_dry_run(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["dry_run"] is True
    assert health["model"].startswith("bert-minilm@"), "the BERT serves by default"


def test_openapi_describes_what_each_json_route_answers(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, model in [("/healthz", "Health"), ("/api/issues", "IssuePage"), ("/api/config", "RepositoryConfig"),
                        ("/api/backfill", "Backfills")]:
        schema = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}, path


def test_openapi_describes_both_shapes_of_the_statistics(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["paths"]["/api/stats"]["get"]["responses"]["200"]["content"]
    refs = {item["$ref"] for item in schema["application/json"]["schema"]["anyOf"]}
    assert refs == {"#/components/schemas/Stats", "#/components/schemas/Balanced"}
