"""Who reads what (``app.web.access``, ``app.web.signin``): every read route, for a private and a public
repository, as an anonymous client, a person signed in with GitHub without and with access to the private
one, and an operator's API token. Sign-in goes through the GitHub simulator's OAuth web flow end to end,
with a browser-like client that keeps cookies and follows redirects across the two sites.

The table of outcomes below is the README's ("Who may read what").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from app.cli import main
from app.config import Settings
from app.web.main import create_app
from tests import secret_watch
from tests.e2e import INSTALLATION, REPO, Stack, days_ago
from tests.github_sim import GitHubSimulator
from tests.servers import serve
from tests.waiting import HTTP_TIMEOUT_S

PRIVATE = "octo-org/secret-models"
PRIVATE_TITLE = "LoRA weights of the unreleased checkpoint fail to load"
PUBLIC_TITLE = "CUDA out of memory when loading the SDXL pipeline"
NO_SUCH = "octo-org/no-such-repository"
MAINTAINER, OUTSIDER = "mona", "passer-by"
SESSION_SECRET = "access-test-session-secret-4f1c9a"
secret_watch.register(SESSION_SECRET)

# Every read route; {repo} is the repository asked about. The lists (no {repo}) show a repository or not;
# the others answer it (200, or the dashboard's 307 to the repository's page) or 404 as if it were not tracked.
ROUTES = [
    "/api/issues", "/api/issues?repo={repo}", "/api/stats", "/api/stats?repo={repo}", "/api/config?repo={repo}",
    "/api/backfill", "/api/backfill?repo={repo}", "/dashboard", "/dashboard?repo={repo}", "/dashboard/{repo}",
    "/dashboard/{repo}/issues.csv", "/dashboard/{repo}/issues.json",
]
SHOWN, HIDDEN = "shown", "hidden"
# viewer -> (public repository, private repository), on every route alike.
OUTCOMES = {
    "anonymous": (SHOWN, HIDDEN),
    "signed in without access": (SHOWN, HIDDEN),
    "signed in with access": (SHOWN, SHOWN),
    "API token": (SHOWN, SHOWN),
}


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden fields of the simulator's authorisation form (its ``redirect_uri`` and ``state``)."""
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page))


@dataclass
class Browser:
    """What a browser does in the flow, by hand: httpx' own cookie jar would not send a ``Secure`` cookie
    over plain http on loopback. Every cookie set is kept with its attributes, for the test to check."""

    cookies: dict[str, str] = field(default_factory=dict)
    set_cookies: list[SimpleCookie] = field(default_factory=list)

    def request(self, method: str, url: str, **kw: object) -> httpx.Response:
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}
        response = httpx.request(method, url, headers=headers, timeout=HTTP_TIMEOUT_S, **kw)  # type: ignore[arg-type]
        for raw in response.headers.get_list("set-cookie"):
            cookie = SimpleCookie(raw)
            self.set_cookies.append(cookie)
            for name, morsel in cookie.items():
                if morsel.value in ("", "null") or morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def follow(self, url: str, method: str = "GET", **kw: object) -> httpx.Response:
        """Request, then follow redirects (a 303 or 302 after a POST becomes a GET) until a page answers."""
        response = self.request(method, url, **kw)
        for _ in range(10):
            if response.status_code not in (302, 303, 307):
                return response
            url = urljoin(url, response.headers["location"])
            response = self.request("GET", url)
        raise AssertionError(f"more than 10 redirects, the last to {url}")

    def sign_in(self, app_url: str, login: str, next_path: str = "/dashboard") -> httpx.Response:
        """/login, GitHub's authorisation page (the simulator's), its form as ``login``, back to the app."""
        page = self.follow(f"{app_url}/login?next={next_path}")
        assert page.status_code == 200 and 'id="authorize"' in page.text, page.text
        hidden = hidden_fields(page.text)
        return self.follow(str(page.url), "POST", data={**hidden, "login": login})


@pytest.fixture
def simulator(github_app_keys: tuple[str, str]) -> Iterator[GitHubSimulator]:
    """The installation of ``tests.e2e``, with a private repository beside the public one."""
    from tests.conftest_github import GITHUB_APP_ID

    sim = GitHubSimulator(GITHUB_APP_ID, github_app_keys[1])
    sim.add_installation(INSTALLATION, "octo-org", [REPO, PRIVATE], account_type="Organization")
    sim.set_private(PRIVATE)
    sim.set_permission(PRIVATE, MAINTAINER, "write")
    sim.set_permission(REPO, OUTSIDER, "read")  # a collaborator elsewhere in the installation
    for repo, title in ((REPO, PUBLIC_TITLE), (PRIVATE, PRIVATE_TITLE)):
        sim.add_issue(repo, title, "the model crashes", state="closed", created_at=days_ago(9), closed_at=days_ago(2))
        sim.add_issue(repo, f"{title} (again)", "still", created_at=days_ago(1))
    with serve(sim.app) as url:
        sim.api_url = url
        yield sim


@pytest.fixture
def access_settings(settings_for: Callable[..., Settings], simulator: GitHubSimulator) -> Callable[..., Settings]:
    def build(**fields: object) -> Settings:
        fields = {"model_kind": "baseline", "github_client_id": simulator.client_id,
                  "github_client_secret": simulator.client_secret, "github_web_url": simulator.api_url,
                  "session_secret": SESSION_SECRET, **fields}
        return settings_for(**fields)

    return build


def start(settings: Settings, simulator: GitHubSimulator) -> Iterator[Stack]:
    with serve(create_app(settings)) as url:
        stack = Stack(simulator, url)
        assert stack.send("installation", simulator.installation_payload("created", INSTALLATION)).status_code == 202
        stack.settle()
        yield stack


@pytest.fixture
def stack(access_settings: Callable[..., Settings], simulator: GitHubSimulator) -> Iterator[Stack]:
    yield from start(access_settings(), simulator)


def outcome(stack: Stack, route: str, headers: dict[str, str], repo: str, title: str) -> str:
    """SHOWN when the answer tells of the repository; HIDDEN when it is left out of a list, or answered
    exactly as a repository that does not exist (and then nothing of it is in the answer)."""
    response = httpx.get(stack.url + route.format(repo=repo), headers=headers, timeout=HTTP_TIMEOUT_S)
    told = repo in response.text or title in response.text
    if "{repo}" in route:
        if response.status_code == 307 or (response.status_code == 200 and told):
            return SHOWN
        absent = httpx.get(stack.url + route.format(repo=NO_SUCH), headers=headers, timeout=HTTP_TIMEOUT_S)
        assert (response.status_code, response.text) == (404, absent.text.replace(NO_SUCH, repo)), route
        assert title not in response.text
        return HIDDEN
    assert response.status_code == 200, (route, response.status_code, response.text[:300])
    return SHOWN if told else HIDDEN


def observe(stack: Stack, headers: dict[str, str]) -> dict[str, tuple[str, str]]:
    """route -> (outcome for the public repository, for the private one)."""
    return {route: (outcome(stack, route, headers, REPO, PUBLIC_TITLE),
                    outcome(stack, route, headers, PRIVATE, PRIVATE_TITLE)) for route in ROUTES}


def cookie_header(browser: Browser) -> dict[str, str]:
    return {"cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items())}


def create_token(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: Settings,
                 name: str) -> str:
    monkeypatch.setenv("DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("PTM_TRIAGE_DATA_DIR", str(settings.data_dir))
    capsys.readouterr()
    assert main(["token", "create", "--name", name]) == 0
    return capsys.readouterr().out.strip()


def test_every_read_route_answers_each_viewer_as_the_table_says(
    stack: Stack, access_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    maintainer, outsider = Browser(), Browser()
    assert maintainer.sign_in(stack.url, MAINTAINER).status_code == 200
    assert outsider.sign_in(stack.url, OUTSIDER).status_code == 200
    token = create_token(monkeypatch, capsys, access_settings(), "ci")
    viewers = {
        "anonymous": {},
        "signed in without access": cookie_header(outsider),
        "signed in with access": cookie_header(maintainer),
        "API token": {"authorization": f"Bearer {token}"},
    }
    observed = {viewer: observe(stack, headers) for viewer, headers in viewers.items()}
    assert observed == {viewer: dict.fromkeys(ROUTES, pair) for viewer, pair in OUTCOMES.items()}
    assert stack.sim.signed_in == [MAINTAINER, OUTSIDER]


def test_the_session_cookie_is_signed_httponly_secure_and_samesite(stack: Stack) -> None:
    browser = Browser()
    landed = browser.sign_in(stack.url, MAINTAINER, next_path=f"/dashboard/{PRIVATE}")
    assert landed.status_code == 200 and PRIVATE_TITLE in landed.text
    assert f"Signed in as <strong>{MAINTAINER}</strong>" in landed.text
    sessions = [c["ptm_triage_session"] for c in browser.set_cookies if "ptm_triage_session" in c]
    assert sessions
    for morsel in sessions:
        assert morsel["httponly"] and morsel["secure"] and morsel["samesite"].lower() == "lax", morsel.OutputString()
    forged = {"cookie": "ptm_triage_session=" + browser.cookies["ptm_triage_session"][:-4] + "AAAA"}
    answer = httpx.get(f"{stack.url}/dashboard/{PRIVATE}", headers=forged, timeout=HTTP_TIMEOUT_S)
    assert answer.status_code == 404 and PRIVATE_TITLE not in answer.text
    assert browser.follow(f"{stack.url}/logout").status_code == 200
    after = httpx.get(f"{stack.url}/dashboard/{PRIVATE}", headers=cookie_header(browser), timeout=HTTP_TIMEOUT_S)
    assert after.status_code == 404


def test_a_revoked_or_wrong_token_is_refused_and_the_token_list_shows_it(
    stack: Stack, access_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = create_token(monkeypatch, capsys, access_settings(), "dashboard-export")
    assert token.startswith("ptmt_")
    bearer = {"authorization": f"Bearer {token}"}
    assert httpx.get(f"{stack.url}/api/issues?repo={PRIVATE}", headers=bearer, timeout=HTTP_TIMEOUT_S).is_success
    capsys.readouterr()
    assert main(["token", "create", "--name", "dashboard-export"]) == 1
    assert "a token named 'dashboard-export' exists" in capsys.readouterr().err
    assert main(["token", "revoke", "dashboard-export"]) == 0
    assert main(["token", "list"]) == 0
    listed = capsys.readouterr().out
    assert "dashboard-export" in listed and "revoked" in listed and token not in listed
    for headers in (bearer, {"authorization": "Bearer ptmt_not-a-token"}, {"authorization": "Basic abc"}):
        refused = httpx.get(f"{stack.url}/api/stats", headers=headers, timeout=HTTP_TIMEOUT_S)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer", refused.text
        assert "token" in refused.json()["detail"]


def test_with_public_repositories_off_anonymous_callers_see_nothing(
    access_settings: Callable[..., Settings], simulator: GitHubSimulator,
) -> None:
    for stack in start(access_settings(public_repositories=False), simulator):
        observed = observe(stack, {})
        assert observed == dict.fromkeys(ROUTES, (HIDDEN, HIDDEN))
        page = httpx.get(f"{stack.url}/dashboard", timeout=HTTP_TIMEOUT_S).text
        assert "Sign in with GitHub" in page


def test_sign_in_refusals_are_clear_and_next_stays_on_this_site(
    stack: Stack, access_settings: Callable[..., Settings], simulator: GitHubSimulator,
) -> None:
    browser = Browser()
    away = browser.request("GET", f"{stack.url}/login?next=//evil.example/steal")
    authorize = browser.request("GET", away.headers["location"])
    hidden = hidden_fields(authorize.text)
    back = browser.request("POST", str(authorize.url), data={**hidden, "login": MAINTAINER})
    callback = urlsplit(back.headers["location"])
    assert browser.request("GET", back.headers["location"]).headers["location"] == "/dashboard"
    code = parse_qs(callback.query)["code"][0]
    replayed = browser.request("GET", f"{stack.url}/login/callback?code={code}&state={hidden['state']}")
    assert replayed.status_code == 400 and "GitHub did not sign you in" in replayed.text
    for stack_ in start(access_settings(github_client_id=None, github_client_secret=None), simulator):
        refused = httpx.get(f"{stack_.url}/login", timeout=HTTP_TIMEOUT_S)
        assert refused.status_code == 503 and "GITHUB_CLIENT_ID" in refused.json()["detail"]


def test_a_repository_made_private_is_hidden_at_once_and_shown_again_when_public(stack: Stack) -> None:
    def anonymous_sees() -> bool:
        return REPO in httpx.get(f"{stack.url}/dashboard", timeout=HTTP_TIMEOUT_S).text

    assert anonymous_sees()
    for private, action in ((True, "privatized"), (False, "publicized")):
        stack.sim.set_private(REPO, private)
        assert stack.send("repository", stack.sim.repository_payload(action, REPO, INSTALLATION)).status_code == 202
        stack.settle()
        assert anonymous_sees() is not private
        found = httpx.get(f"{stack.url}/api/stats?repo={REPO}", timeout=HTTP_TIMEOUT_S)
        assert found.status_code == (404 if private else 200)
