import base64
import json
from pathlib import Path

import gidgethub
import gidgethub.httpx
import httpx
import jwt
import pytest

from app.github.auth import AppAuth
from tests.conftest_github import GITHUB_APP_ID, SIM_URL
from tests.github_sim import GitHubSimulator, generate_app_keypair
from tests.openapi_check import spec_path

REPO = "octo/repo"
WEBHOOK_EXAMPLES = spec_path().parents[1] / "github-webhooks"


@pytest.fixture
def sim(github_sim):
    github_sim.add_installation(7, "octo", [REPO])
    github_sim.add_installation(8, "other", ["other/private"])
    return github_sim


@pytest.fixture
async def gh(sim, github_factory):
    return await github_factory.for_installation(7)


@pytest.fixture
async def raw(sim):
    """A gidgethub client without credentials of its own."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=SIM_URL) as http:
        yield gidgethub.httpx.GitHubAPI(http, "test", base_url=SIM_URL)


async def status_of(call) -> tuple[int, str]:
    with pytest.raises(gidgethub.HTTPException) as err:
        await call
    return err.value.status_code, str(err.value)


# -- app JWTs ------------------------------------------------------------------


def signed(private_pem: str, **claims) -> str:
    return jwt.encode(claims, private_pem, algorithm="RS256")


async def test_valid_jwt_gets_an_installation_token(raw, github_auth, github_clock):
    data = await raw.post("/app/installations/7/access_tokens", data=b"", jwt=github_auth.jwt())
    assert data["token"].startswith("ghs_")
    assert data["expires_at"].endswith("Z") and data["repository_selection"] == "selected"


@pytest.mark.parametrize("case, message", [
    ("expired", "'Expiration time' claim ('exp') must be a numeric value"),
    ("too_long", "is too far in the future"),
    ("future_iat", "'Issued at' claim ('iat')"),
    ("wrong_key", "A JSON web token could not be decoded"),
    ("wrong_iss", "'Issuer' claim ('iss')"),
    ("garbage", "A JSON web token could not be decoded"),
])
async def test_bad_jwts_are_rejected(case, message, raw, github_app_keys, github_clock):
    now = int(github_clock())
    private = github_app_keys[0]
    token = {
        "expired": lambda: signed(private, iat=now - 700, exp=now - 1, iss=str(GITHUB_APP_ID)),
        "too_long": lambda: signed(private, iat=now - 60, exp=now + 3600, iss=str(GITHUB_APP_ID)),
        "future_iat": lambda: signed(private, iat=now + 120, exp=now + 600, iss=str(GITHUB_APP_ID)),
        "wrong_key": lambda: AppAuth(GITHUB_APP_ID, generate_app_keypair()[0], clock=github_clock).jwt(),
        "wrong_iss": lambda: AppAuth(GITHUB_APP_ID + 1, private, clock=github_clock).jwt(),
        "garbage": lambda: "not.a.jwt",
    }[case]()
    status, text = await status_of(raw.post("/app/installations/7/access_tokens", data=b"", jwt=token))
    assert status == 401 and message in text


async def test_app_endpoints_refuse_installation_tokens_and_no_auth(raw, gh):
    assert (await status_of(raw.getitem("/app", oauth_token=gh.oauth_token)))[0] == 401
    assert await status_of(raw.getitem("/app")) == (401, "Requires authentication")


async def test_unknown_installation_is_404(raw, github_auth):
    status, _ = await status_of(raw.post("/app/installations/99/access_tokens", data=b"",
                                         jwt=github_auth.jwt()))
    assert status == 404


# -- installation tokens ---------------------------------------------------------


async def test_bad_or_expired_token_is_401(raw, gh, sim, github_clock):
    assert await status_of(raw.getitem("/repos/octo/repo", oauth_token="ghs_nope")) == (401, "Bad credentials")
    github_clock.advance(3601)
    assert await status_of(raw.getitem("/repos/octo/repo", oauth_token=gh.oauth_token)) == (401, "Bad credentials")


async def test_repos_outside_the_installation_are_404(gh):
    assert (await status_of(gh.getitem("/repos/other/private")))[0] == 404
    assert (await status_of(gh.getitem("/repos/octo/missing")))[0] == 404


async def test_repository_names_are_case_insensitive(gh, sim):
    assert (await gh.getitem("/repos/Octo/Repo"))["full_name"] == REPO
    sim.add_installation(9, "octo", ["OCTO/REPO"])
    assert sim.installation_payload("created", 9)["repositories"][0]["full_name"] == REPO


# -- labels ------------------------------------------------------------------------


async def test_existing_label_name_is_422_case_insensitively(gh):
    await gh.post("/repos/octo/repo/labels", data={"name": "bug", "color": "d73a4a"})
    with pytest.raises(gidgethub.InvalidField) as err:
        await gh.post("/repos/octo/repo/labels", data={"name": "BUG"})
    assert err.value.status_code == 422
    assert err.value.errors == [{"resource": "Label", "code": "already_exists", "field": "name"}]


@pytest.mark.parametrize("body, field", [
    ({"name": "x" * 51}, "name"),
    ({"name": "ok", "color": "12345"}, "color"),
    ({"name": "ok", "color": "zzzzzz"}, "color"),
    ({"color": "ffffff"}, "name"),
])
async def test_invalid_labels_are_422(gh, body, field):
    with pytest.raises(gidgethub.InvalidField) as err:
        await gh.post("/repos/octo/repo/labels", data=body)
    assert err.value.errors[0]["field"] == field


async def test_label_crud(gh, sim):
    created = await gh.post("/repos/octo/repo/labels",
                            data={"name": "ptm: reuse", "color": "#ABCDEF", "description": "d"})
    assert created["color"] == "abcdef" and created["url"].endswith("/labels/ptm%3A%20reuse")
    assert (await gh.getitem("/repos/octo/repo/labels/{name}", {"name": "PTM: Reuse"}))["id"] == created["id"]
    renamed = await gh.patch("/repos/octo/repo/labels/{name}", {"name": "ptm: reuse"},
                             data={"new_name": "ptm/reuse", "color": "000000"})
    assert renamed["name"] == "ptm/reuse"
    await gh.post("/repos/octo/repo/labels", data={"name": "bug"})
    with pytest.raises(gidgethub.InvalidField):
        await gh.patch("/repos/octo/repo/labels/bug", data={"new_name": "PTM/reuse"})
    await gh.delete("/repos/octo/repo/labels/{name}", {"name": "ptm/reuse"})
    assert [lb["name"] for lb in sim.repo_labels(REPO)] == ["bug"]


async def test_labels_added_to_an_issue(gh, sim):
    sim.add_issue(REPO, "Fine-tuning BERT fails", labels=["bug"])
    labels = await gh.post("/repos/octo/repo/issues/1/labels", data={"labels": ["ptm: reuse", "BUG"]})
    assert [lb["name"] for lb in labels] == ["bug", "ptm: reuse"]
    new = next(lb for lb in sim.repo_labels(REPO) if lb["name"] == "ptm: reuse")
    assert new["color"] == "ededed"
    assert [lb["name"] for lb in sim.issue(REPO, 1)["labels"]] == ["bug", "ptm: reuse"]

    remaining = await gh.delete("/repos/octo/repo/issues/1/labels/{name}", {"name": "bug"})
    assert remaining is None  # gidgethub's delete drops bodies; the state tells
    assert [lb["name"] for lb in sim.issue(REPO, 1)["labels"]] == ["ptm: reuse"]
    status, text = await status_of(gh.delete("/repos/octo/repo/issues/1/labels/bug"))
    assert (status, text) == (404, "Label does not exist")

    assert [lb["name"] for lb in await gh.put("/repos/octo/repo/issues/1/labels",
                                              data={"labels": ["a", "b"]})] == ["a", "b"]
    await gh.delete("/repos/octo/repo/issues/1/labels")
    assert sim.issue(REPO, 1)["labels"] == []


async def test_deleting_a_repo_label_removes_it_from_issues(gh, sim):
    sim.add_issue(REPO, "t", labels=["x", "y"])
    await gh.delete("/repos/octo/repo/labels/x")
    assert [lb["name"] for lb in sim.issue(REPO, 1)["labels"]] == ["y"]


# -- issues, comments, contents, permissions ---------------------------------------


async def test_issue_listing_filters_and_marks_pull_requests(gh, sim, github_clock):
    sim.add_issue(REPO, "old", created_at="2020-01-01T00:00:00Z", state="closed",
                  closed_at="2020-02-01T00:00:00Z")
    sim.add_issue(REPO, "pr", pull_request=True, labels=["ptm"])
    sim.add_issue(REPO, "new", labels=["ptm", "bug"])
    open_items = [i async for i in gh.getiter("/repos/octo/repo/issues")]
    assert [i["title"] for i in open_items] == ["new", "pr"]
    assert "pull_request" in open_items[1] and "pull_request" not in open_items[0]
    everything = [i["title"] async for i in gh.getiter("/repos/octo/repo/issues?state=all&direction=asc")]
    assert everything == ["old", "pr", "new"]
    closed = await gh.getitem("/repos/octo/repo/issues?state=closed")
    assert closed[0]["closed_at"] == "2020-02-01T00:00:00Z" and closed[0]["state_reason"] == "completed"
    assert [i["title"] for i in await gh.getitem("/repos/octo/repo/issues?labels=PTM,bug")] == ["new"]
    assert len(await gh.getitem("/repos/octo/repo/issues?state=all&since=2021-01-01T00:00:00Z")) == 2


async def test_closing_and_reopening_an_issue(gh, sim, github_clock):
    sim.add_issue(REPO, "t")
    github_clock.advance(3600)
    closed = await gh.patch("/repos/octo/repo/issues/1", data={"state": "closed", "state_reason": "not_planned"})
    assert closed["state"] == "closed" and closed["state_reason"] == "not_planned"
    assert closed["closed_at"] == closed["updated_at"] != closed["created_at"]
    reopened = await gh.patch("/repos/octo/repo/issues/1", data={"state": "open"})
    assert reopened["closed_at"] is None and reopened["state_reason"] == "reopened"


async def test_comments(gh, sim):
    sim.add_issue(REPO, "t")
    comment = await gh.post("/repos/octo/repo/issues/1/comments", data={"body": "Labelled ptm: reuse"})
    assert comment["user"]["type"] == "Bot" and comment["body"] == "Labelled ptm: reuse"
    assert [c["id"] async for c in gh.getiter("/repos/octo/repo/issues/1/comments")] == [comment["id"]]
    assert sim.issue(REPO, 1)["comments"] == 1


async def test_contents_are_base64_and_404_when_absent(gh, sim):
    assert (await status_of(gh.getitem("/repos/octo/repo/contents/.github/ptm-triage.yml")))[0] == 404
    text = "labels:\n  reuse: 'ptm: reuse'\n" * 10
    sim.set_file(REPO, ".github/ptm-triage.yml", text)
    data = await gh.getitem("/repos/octo/repo/contents/.github/ptm-triage.yml")
    assert data["encoding"] == "base64" and all(len(line) <= 60 for line in data["content"].splitlines())
    assert base64.b64decode(data["content"]).decode() == text and data["size"] == len(text)


async def test_collaborator_permission(gh, sim):
    sim.set_permission(REPO, "maintainer", "maintain")
    perms = {u: await gh.getitem(f"/repos/octo/repo/collaborators/{u}/permission")
             for u in ("octo", "maintainer", "stranger")}
    assert {u: (p["permission"], p["role_name"]) for u, p in perms.items()} == {
        "octo": ("admin", "admin"), "maintainer": ("write", "maintain"), "stranger": ("read", "read")}
    with pytest.raises(ValueError):
        sim.set_permission(REPO, "x", "owner")


# -- pagination ------------------------------------------------------------------------


async def test_link_headers_like_github(gh, sim):
    for k in range(7):
        sim.add_issue(REPO, f"issue {k}")
    await gh.getitem("/repos/octo/repo/issues?per_page=3&page=2&state=open")
    link = sim.exchanges[-1].response_headers["link"]
    base = f"{SIM_URL}/repos/octo/repo/issues"
    assert link == (f'<{base}?page=1&per_page=3&state=open>; rel="prev", '
                    f'<{base}?page=3&per_page=3&state=open>; rel="next", '
                    f'<{base}?page=3&per_page=3&state=open>; rel="last", '
                    f'<{base}?page=1&per_page=3&state=open>; rel="first"')
    await gh.getitem("/repos/octo/repo/issues?per_page=3")
    assert sim.exchanges[-1].response_headers["link"] == (
        f'<{base}?page=2&per_page=3>; rel="next", <{base}?page=3&per_page=3>; rel="last"')
    await gh.getitem("/repos/octo/repo/issues")
    assert "link" not in sim.exchanges[-1].response_headers


async def test_getiter_walks_every_item_once(gh, sim):
    for k in range(65):
        sim.add_issue(REPO, f"issue {k}", labels=[f"l{k}"])
    numbers = [i["number"] async for i in gh.getiter("/repos/octo/repo/issues")]
    assert sorted(numbers) == list(range(1, 66)) and len(sim.exchanges) == 1 + 3  # token + 3 pages of 30
    names = [lb["name"] async for lb in gh.getiter("/repos/octo/repo/labels?per_page=100")]
    assert len(names) == len(set(names)) == 65


async def test_per_page_is_capped(github_app_keys, github_clock):
    sim = GitHubSimulator(GITHUB_APP_ID, github_app_keys[1], max_per_page=10, clock=github_clock)
    sim.add_installation(7, "octo", [f"octo/r{k}" for k in range(25)])
    auth = AppAuth(GITHUB_APP_ID, github_app_keys[0], clock=github_clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=SIM_URL) as http:
        gh = gidgethub.httpx.GitHubAPI(http, "test", base_url=SIM_URL)
        token = (await gh.post("/app/installations/7/access_tokens", data=b"", jwt=auth.jwt()))["token"]
        first = await gh.getitem("/installation/repositories?per_page=100", oauth_token=token)
        assert first["total_count"] == 25 and len(first["repositories"]) == 10
        repos = [r["full_name"] async for r in gh.getiter("/installation/repositories", oauth_token=token,
                                                          iterable_key="repositories")]
        assert repos == [f"octo/r{k}" for k in range(25)]


# -- rate limits and injected failures ---------------------------------------------------


async def test_rate_limit_exhaustion_then_recovery(gh, sim, github_clock):
    sim.rate_limit = 3
    remaining = []
    for _ in range(3):
        await gh.getitem("/repos/octo/repo")
        remaining.append(sim.exchanges[-1].response_headers["x-ratelimit-remaining"])
    assert remaining == ["2", "1", "0"]
    with pytest.raises(gidgethub.RateLimitExceeded) as err:
        await gh.getitem("/repos/octo/repo")
    assert err.value.status_code == 403 and "API rate limit exceeded" in str(err.value)
    headers = sim.exchanges[-1].response_headers
    assert headers["x-ratelimit-remaining"] == "0" and headers["x-ratelimit-used"] == "3"
    reset = int(headers["x-ratelimit-reset"])
    rate = await gh.getitem("/rate_limit")  # does not count, works while exhausted
    assert rate["rate"] == {"limit": 3, "remaining": 0, "reset": reset, "used": 3, "resource": "core"}
    github_clock.now = reset
    await gh.getitem("/repos/octo/repo")
    assert sim.exchanges[-1].response_headers["x-ratelimit-remaining"] == "2"


async def test_every_response_has_rate_limit_headers(gh, raw, sim):
    await gh.getitem("/repos/octo/repo")
    await status_of(raw.getitem("/repos/octo/repo", oauth_token="ghs_nope"))
    await status_of(gh.getitem("/nowhere"))
    for exchange in sim.exchanges:
        assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
                "x-ratelimit-used", "x-ratelimit-resource"} <= set(exchange.response_headers)
    assert sim.exchanges[-2].response_headers["x-ratelimit-limit"] == "60"  # anonymous
    assert sim.exchanges[-1].response_json["message"] == "Not Found"


async def test_fail_next(gh, sim):
    sim.add_issue(REPO, "t")
    sim.fail_next("GET", "/repos/octo/repo/issues", 502)
    with pytest.raises(gidgethub.GitHubBroken):
        await gh.getitem("/repos/octo/repo/issues/1")
    assert (await gh.getitem("/repos/octo/repo/issues/1"))["number"] == 1

    sim.fail_next("*", "/repos/", 403, times=2, headers={"retry-after": "30"},
                  message="You have exceeded a secondary rate limit.")
    for _ in range(2):
        with pytest.raises(gidgethub.BadRequest) as err:
            await gh.post("/repos/octo/repo/issues/1/labels", data={"labels": ["x"]})
        assert not isinstance(err.value, gidgethub.RateLimitExceeded)
        assert err.value.headers["retry-after"] == "30" and "secondary rate limit" in str(err.value)
    await gh.post("/repos/octo/repo/issues/1/labels", data={"labels": ["x"]})
    assert [lb["name"] for lb in sim.issue(REPO, 1)["labels"]] == ["x"]


# -- webhook payloads ----------------------------------------------------------------------


def example(event: str, name: str) -> dict:
    return json.loads(Path(WEBHOOK_EXAMPLES, event, f"{name}.payload.json").read_text())


@pytest.mark.parametrize("action", ["opened", "edited", "labeled", "unlabeled", "closed"])
def test_issues_payload_has_the_shape_of_githubs(sim, action):
    sim.add_issue(REPO, "Loading a Hugging Face checkpoint fails", "body", labels=["bug"])
    extra = {"label": "bug"} if action == "unlabeled" else {}
    payload = sim.issues_payload(action, REPO, 1, 7, **extra)
    real = example("issues", action if action != "closed" else "opened")
    assert set(real) - {"organization"} <= set(payload)
    for part in ("issue", "repository", "sender"):
        assert set(real[part]) - {"draft"} <= set(payload[part]), part
    assert payload["installation"] == {"id": 7, "node_id": payload["installation"]["node_id"]}
    if "label" in payload:
        assert set(payload["label"]) == set(real["label"]) and payload["label"]["name"] == "bug"
    assert payload.get("changes", {}) == {}


def test_unlabeled_payload_needs_the_label(sim):
    sim.add_issue(REPO, "t")
    with pytest.raises(ValueError, match="label"):
        sim.issues_payload("unlabeled", REPO, 1, 7)


def test_installation_payload_has_the_shape_of_githubs(sim):
    payload = sim.installation_payload("created", 7)
    real = example("installation", "created")
    assert set(real) <= set(payload)
    assert set(real["installation"]) <= set(payload["installation"])
    assert [set(r) for r in payload["repositories"]] == [set(real["repositories"][0])]
    assert payload["repositories"][0]["full_name"] == REPO and payload["sender"]["login"] == "octo"


async def test_issue_comment_payload(gh, sim):
    sim.add_issue(REPO, "t")
    comment = await gh.post("/repos/octo/repo/issues/1/comments", data={"body": "/ptm-triage reclassify"})
    payload = sim.issue_comment_payload("created", REPO, 1, comment["id"], 7)
    real = example("issue_comment", "created.with-installation")
    assert set(real) - {"organization"} <= set(payload)
    assert set(real["comment"]) <= set(payload["comment"])


# -- over a real socket --------------------------------------------------------------------


async def test_simulator_over_uvicorn(github_sim_server, sim, github_auth):
    for k in range(3):
        sim.add_issue(REPO, f"issue {k}")
    async with httpx.AsyncClient() as http:
        gh = gidgethub.httpx.GitHubAPI(http, "test", base_url=github_sim_server)
        token = (await gh.post("/app/installations/7/access_tokens", data=b"",
                               jwt=github_auth.jwt()))["token"]
        issues = [i async for i in gh.getiter("/repos/octo/repo/issues?per_page=1", oauth_token=token)]
    assert [i["number"] for i in issues] == [3, 2, 1]
    assert issues[0]["url"] == f"{github_sim_server}/repos/octo/repo/issues/3"
    assert sim.exchanges[-1].response_headers["link"].startswith(f"<{github_sim_server}/")


async def test_malformed_json_is_400(sim, gh):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url=SIM_URL) as http:
        response = await http.post("/repos/octo/repo/labels", content=b"{nope",
                                   headers={"authorization": f"token {gh.oauth_token}"})
    assert response.status_code == 400 and response.json()["message"] == "Problems parsing JSON"
    assert "x-ratelimit-remaining" in response.headers
