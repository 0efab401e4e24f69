"""Every endpoint the simulator serves, checked against GitHub's OpenAPI description."""

import gidgethub
import pytest

from app.github.client import GitHubClient
from app.github.user_access import user_access
from tests import openapi_check

REPO = "/repos/octo/repo"


async def expect_error(call, status: int) -> None:
    with pytest.raises(gidgethub.HTTPException) as err:
        await call
    assert err.value.status_code == status


async def exercise_every_route(sim, factory) -> None:
    sim.add_installation(7, "octo", ["octo/repo", "octo/other"], account_type="Organization")
    sim.add_issue("octo/repo", "Fine-tuning ViT on my data", "text", labels=["bug"])
    sim.add_issue("octo/repo", "Closed one", None, state="closed", user="dependabot[bot]",
                  user_type="Bot")
    sim.add_issue("octo/repo", "A pull request", pull_request=True)
    sim.set_file("octo/repo", ".github/ptm-triage.yml", "enabled: true\n")
    app = await factory.app_client()
    await app.getitem("/app")
    await app.getitem("/app/installations?per_page=1&page=1")
    await app.getitem("/app/installations/7")
    await expect_error(app.getitem("/app/installations/99"), 404)
    await expect_error(app.post("/app/installations/7/access_tokens", data=b"", jwt="bad"), 401)

    gh = await factory.for_installation(7)
    await gh.getitem("/installation/repositories?per_page=1")
    await gh.getitem("/rate_limit")
    await gh.getitem(REPO)
    await expect_error(gh.getitem("/repos/someone/else"), 404)
    await gh.getitem(f"{REPO}/issues?state=all&sort=updated&direction=asc&per_page=1&page=2"
                     "&since=2020-01-01T00:00:00Z&labels=bug")
    await gh.getitem(f"{REPO}/issues/1")
    await expect_error(gh.getitem(f"{REPO}/issues/404"), 404)
    await gh.patch(f"{REPO}/issues/1", data={"title": "Fine-tuning ViT", "state": "closed",
                                             "state_reason": "completed", "labels": ["bug", "ptm"]})
    await gh.getitem(f"{REPO}/issues/1/labels?per_page=1")
    await gh.post(f"{REPO}/issues/1/labels", data={"labels": ["ptm: reuse"]})
    await gh.put(f"{REPO}/issues/1/labels", data={"labels": ["ptm: reuse", "bug"]})
    await gh.delete(f"{REPO}/issues/1/labels/{{name}}", {"name": "ptm: reuse"})
    await expect_error(gh.delete(f"{REPO}/issues/1/labels/nope"), 404)
    await gh.delete(f"{REPO}/issues/1/labels")
    await gh.post(f"{REPO}/issues/1/comments", data={"body": "Triage: ptm: reuse"})
    await gh.getitem(f"{REPO}/issues/1/comments?since=2020-01-01T00:00:00Z&per_page=10")
    await gh.getitem(f"{REPO}/labels?per_page=2")
    await gh.post(f"{REPO}/labels", data={"name": "ptm: model", "color": "0e8a16",
                                          "description": "Reusing a pre-trained model"})
    await expect_error(gh.post(f"{REPO}/labels", data={"name": "PTM: Model"}), 422)
    await gh.getitem(f"{REPO}/labels/{{name}}", {"name": "ptm: model"})
    await gh.patch(f"{REPO}/labels/{{name}}", {"name": "ptm: model"},
                   data={"new_name": "ptm: models", "color": "0e8a17", "description": "d"})
    await gh.delete(f"{REPO}/labels/{{name}}", {"name": "ptm: models"})
    await expect_error(gh.getitem(f"{REPO}/labels/gone"), 404)
    await gh.getitem(f"{REPO}/contents/.github/ptm-triage.yml?ref=main")
    await expect_error(gh.getitem(f"{REPO}/contents/missing.yml"), 404)
    await gh.getitem(f"{REPO}/collaborators/octo/permission")

    sim.state.user_tokens["ghu_exercise"] = "octo"  # what the OAuth web flow hands a signed-in person
    access = await user_access(factory._http, factory.api_url, "ghu_exercise")
    assert access.login == "octo" and len(access.repository_ids) == 2
    user = GitHubClient(factory._http, "test", oauth_token="ghu_exercise", base_url=factory.api_url)
    await expect_error(user.getitem("/user/installations/99/repositories"), 404)
    await expect_error(GitHubClient(factory._http, "test", oauth_token="ghu_nobody",
                                    base_url=factory.api_url).getitem("/user"), 401)

    sim.rate_limit = 0
    await expect_error(gh.getitem(REPO), 403)


async def test_every_route_is_exercised_and_matches_the_spec(github_sim, github_factory):
    await exercise_every_route(github_sim, github_factory)
    exercised = set()
    for e in github_sim.exchanges:
        template, _ = openapi_check.find_operation(e.method, e.path)
        assert template == e.route, (e.method, e.path)
        openapi_check.validate_request(e.method, e.path, e.query, e.request_json)
        openapi_check.validate_response(e.method, e.path, e.status, e.response_json)
        exercised.add((e.method, template))
    assert exercised == github_sim.routes()
    statuses = {e.status for e in github_sim.exchanges}
    assert {200, 201, 204, 401, 403, 404, 422} <= statuses


# -- the checker itself ----------------------------------------------------------

LABEL = {"id": 1, "node_id": "L", "url": "https://api.github.com/repos/o/r/labels/x", "name": "x",
         "color": "ededed", "default": False, "description": None}


def test_find_operation_prefers_literal_segments():
    assert openapi_check.find_operation("GET", "/repos/o/r/issues/events")[0] == "/repos/{owner}/{repo}/issues/events"
    assert openapi_check.find_operation("GET", "/repos/o/r/issues/12?x=1")[0] == "/repos/{owner}/{repo}/issues/{issue_number}"
    assert openapi_check.find_operation("GET", "/repos/o/r/contents/a/b.yml")[0] == "/repos/{owner}/{repo}/contents/{path}"


@pytest.mark.parametrize("method, path", [("GET", "/nowhere"), ("PUT", "/app")])
def test_unknown_paths_and_methods_fail(method, path):
    with pytest.raises(AssertionError):
        openapi_check.find_operation(method, path)


def test_nullable_fields_accept_null_and_nothing_else_does():
    openapi_check.validate_response("GET", "/repos/o/r/labels/x", 200, LABEL)
    with pytest.raises(AssertionError, match="color"):
        openapi_check.validate_response("GET", "/repos/o/r/labels/x", 200, {**LABEL, "color": None})
    with pytest.raises(AssertionError, match="'default' is a required property"):
        openapi_check.validate_response("GET", "/repos/o/r/labels/x", 200,
                                        {k: v for k, v in LABEL.items() if k != "default"})
    with pytest.raises(AssertionError, match="'limit' is a required property"):
        openapi_check.validate_response("GET", "/rate_limit", 200, {"rate": {}, "resources": {}})


def test_nullable_conversion():
    assert openapi_check.to_json_schema({"type": "string", "nullable": True, "enum": ["a"]}) == {
        "type": ["string", "null"], "enum": ["a", None]}
    assert openapi_check.to_json_schema({"nullable": True, "anyOf": [{"type": "integer"}]}) == {
        "anyOf": [{"type": "null"}, {"anyOf": [{"type": "integer"}]}]}


def test_undocumented_success_status_fails_and_errors_must_look_like_github_errors():
    with pytest.raises(AssertionError, match="not documented"):
        openapi_check.validate_response("GET", "/app", 204, None)
    openapi_check.validate_response("GET", "/app", 401, {"message": "Bad credentials"})
    with pytest.raises(AssertionError):
        openapi_check.validate_response("GET", "/app", 401, {"message": 1})


@pytest.mark.parametrize("query, body", [
    ({"colour": "red"}, None),
    ({"per_page": "many"}, None),
])
def test_bad_queries_fail(query, body):
    with pytest.raises(AssertionError):
        openapi_check.validate_request("GET", "/repos/o/r/labels", query, body)


def test_request_bodies_are_checked():
    openapi_check.validate_request("POST", "/repos/o/r/labels", {}, {"name": "x"})
    for body in ({"color": "ffffff"}, {"name": 5}, None):
        with pytest.raises(AssertionError):
            openapi_check.validate_request("POST", "/repos/o/r/labels", {}, body)
    with pytest.raises(AssertionError, match="takes no request body"):
        openapi_check.validate_request("GET", "/app", {}, {"x": 1})
