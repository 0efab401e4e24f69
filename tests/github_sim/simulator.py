"""A local GitHub REST API for tests and demos.

``GitHubSimulator(...).app`` is an ASGI app that answers the endpoints PTM
Triage uses the way api.github.com does: app JWT and installation-token
authentication, GitHub-shaped JSON, ``Link`` pagination, rate-limit headers
and 403s, and injectable failures. The plain-Python methods (``add_issue``,
``issues_payload``, ...) set up state and build webhook payloads.
"""

from __future__ import annotations

import base64
import html
import json
import random
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests import secret_watch
from tests.github_sim.state import (
    APP_EVENTS,
    APP_PERMISSIONS,
    DEFAULT_LABEL_COLOR,
    ROLE_TO_PERMISSION,
    Installation,
    Issue,
    Label,
    Repo,
    SimState,
    Token,
    iso,
    node_id,
    parse_iso,
)

DOCS = "https://docs.github.com/rest"
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
JWT_LEEWAY_S = 30
MAX_JWT_LIFETIME_S = 600
ANONYMOUS_RATE_LIMIT = 60
RATE_WINDOW_S = 3600
BOT_LOGIN = "ptm-triage[bot]"
INVALID_JSON = object()
LABEL_COLOR_CHARS = set("0123456789abcdefABCDEF")

Reply = tuple[int, Any, dict[str, str]]


def generate_app_keypair() -> tuple[str, str]:
    """A fresh RSA key pair as (private PEM, public PEM), like a GitHub App's."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private.decode(), public.decode()


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, errors: list[dict[str, Any]] | None = None,
                 docs: str = DOCS) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "documentation_url": docs}
        if errors is not None:
            self.body["errors"] = errors


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def bad_credentials() -> ApiError:
    return ApiError(401, "Bad credentials")


def validation_failed(field: str, code: str) -> ApiError:
    return ApiError(422, "Validation Failed",
                    errors=[{"resource": "Label", "code": code, "field": field}],
                    docs=f"{DOCS}/issues/labels#create-a-label")


@dataclass
class Exchange:
    """One request the simulator answered, as seen on the wire."""

    method: str
    path: str
    query: dict[str, str]
    request_headers: dict[str, str]
    request_json: Any
    status: int
    response_headers: dict[str, str]
    response_json: Any
    route: str | None


@dataclass
class Failure:
    method: str
    path_prefix: str
    status: int
    times: int
    headers: dict[str, str]
    message: str


@dataclass
class Bucket:
    limit: int
    reset: float
    used: int = 0


@dataclass(frozen=True)
class Principal:
    kind: str  # "app", "installation", "user" or "anonymous"
    bucket: str
    installation_id: int | None = None
    login: str | None = None  # a user's


@dataclass
class Call:
    request: Request
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    principal: Principal


Handler = Callable[[Call], Reply]


class GitHubSimulator:
    def __init__(self, app_id: int, public_key_pem: str, *, token_ttl_s: int = 3600,
                 rate_limit: int = 5000, rate_limit_window_s: int = RATE_WINDOW_S,
                 max_per_page: int = 100, clock: Callable[[], float] = time.time,
                 api_url: str = "https://api.github.com") -> None:
        self.app_id = app_id
        self.token_ttl_s = token_ttl_s
        self.rate_limit = rate_limit
        self.rate_limit_window_s = rate_limit_window_s  # a bucket's life, from its first request
        self.max_per_page = max_per_page
        self.clock = clock
        self.state = SimState(clock, api_url)
        self.exchanges: list[Exchange] = []
        self.on_exchange: Callable[[Exchange], None] | None = None  # called once GitHub's state changed, before answering
        self._public_key = serialization.load_pem_public_key(public_key_pem.encode())
        self._failures: list[Failure] = []
        self._random: tuple[float, random.Random] = (0.0, random.Random())
        self.random_failures: dict[str, int] = {}
        self.label_events: list[tuple[str, int, str, str]] = []
        self.deleted_issues: dict[str, set[int]] = {}  # (repo, issue number, labeled|unlabeled, label)
        self._buckets: dict[str, Bucket] = {}
        self._created_at = clock()
        self._routes = self._route_table()
        self.client_id = f"Iv1.{app_id:016x}"  # the App's OAuth client (GET /app says the same)
        self.client_secret = secrets.token_hex(20)
        secret_watch.register(self.client_secret)
        self.signed_in: list[str] = []  # logins that authorised the App through the OAuth web flow
        self._codes: dict[str, tuple[str, str]] = {}  # OAuth code -> (login, redirect_uri)
        self.app = Starlette(routes=[
            # github.com's OAuth web flow: web pages, not REST endpoints (not in the OpenAPI description).
            Route("/login/oauth/authorize", self._authorize_page, methods=["GET"]),
            Route("/login/oauth/authorize", self._authorize, methods=["POST"]),
            Route("/login/oauth/access_token", self._access_token, methods=["POST"]),
            *(Route(_starlette_path(t), self._endpoint(t, auth, h), methods=[m])
              for m, t, auth, h in self._routes),
            Route("/{rest:path}", self._endpoint(None, "none", self._unknown_route),
                  methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ])

    @property
    def api_url(self) -> str:
        """Base of the URLs inside JSON bodies; point it at the server the app talks to."""
        return self.state.api_url

    @api_url.setter
    def api_url(self, value: str) -> None:
        self.state.api_url = value.rstrip("/")

    def routes(self) -> set[tuple[str, str]]:
        """(method, OpenAPI path template) of every endpoint served."""
        return {(m, t) for m, t, _, _ in self._routes}

    # -- state API for tests and demos -----------------------------------

    def add_repo(self, full_name: str) -> dict[str, Any]:
        return self.state.repo_json(self.state.add_repo(full_name), full=True)

    def add_installation(self, installation_id: int, account: str, repos: list[str], *,
                         account_type: str = "User") -> dict[str, Any]:
        names = [self.state.add_repo(full_name).full_name for full_name in repos]
        inst = Installation(installation_id, account, account_type, names, self.clock())
        self.state.installations[installation_id] = inst
        return self.state.installation_json(inst, self.app_id)

    def add_issue(self, full_name: str, title: str, body: str | None = None, *,
                  labels: tuple[str, ...] | list[str] = (), state: str = "open",
                  created_at: float | str | None = None, closed_at: float | str | None = None,
                  user: str = "octocat", user_type: str = "User",
                  pull_request: bool = False) -> dict[str, Any]:
        repo = self._state_repo(full_name)
        created = _epoch(created_at) if created_at is not None else self.clock()
        closed = None
        if state == "closed":
            closed = _epoch(closed_at) if closed_at is not None else max(created, self.clock())
        number = max(repo.issues, default=0) + 1
        issue = Issue(self.state.next_id(), number, title, body, user, user_type, created,
                      max(created, closed or created), state=state, closed_at=closed,
                      state_reason="completed" if closed else None, pull_request=pull_request)
        issue.label_ids = [lb.id for lb in self.state.ensure_labels(repo, labels)]
        repo.issues[number] = issue
        return self.state.issue_json(repo, issue)

    def set_file(self, full_name: str, path: str, text: str) -> None:
        self._state_repo(full_name).files[path.strip("/")] = text

    def delete_issue(self, full_name: str, number: int) -> None:
        """From now on GitHub answers 410 Gone for the issue, as it does for a deleted one."""
        self.deleted_issues.setdefault(self._state_repo(full_name).full_name, set()).add(number)

    def set_private(self, full_name: str, private: bool = True) -> None:
        self._state_repo(full_name).private = private

    def set_permission(self, full_name: str, user: str, permission: str) -> None:
        if permission not in ROLE_TO_PERMISSION:
            raise ValueError(f"unknown permission {permission!r}; one of {sorted(ROLE_TO_PERMISSION)}")
        self._state_repo(full_name).roles[user] = permission

    def issue(self, full_name: str, number: int) -> dict[str, Any]:
        repo = self._state_repo(full_name)
        return self.state.issue_json(repo, repo.issues[number])

    def set_issue_state(self, full_name: str, number: int, state: str, reason: str | None = None) -> dict[str, Any]:
        """Close or reopen an issue now, as a person on github.com would."""
        repo = self._state_repo(full_name)
        self.state.set_state(repo.issues[number], state, reason)
        return self.state.issue_json(repo, repo.issues[number])

    def set_issue_labels(self, full_name: str, number: int, names: list[str]) -> dict[str, Any]:
        """Replace an issue's labels, as a person on github.com would."""
        repo = self._state_repo(full_name)
        self.state.set_issue_labels(repo, repo.issues[number], names)
        return self.state.issue_json(repo, repo.issues[number])

    def add_comment(self, full_name: str, number: int, body: str, user: str = "octocat") -> dict[str, Any]:
        repo = self._state_repo(full_name)
        issue = repo.issues[number]
        return self.state.comment_json(repo, issue, self.state.add_comment(issue, body, user))

    def add_labels(self, full_name: str, names: list[str]) -> None:
        """Create repository labels, as a maintainer (or an earlier installation) would."""
        self.state.ensure_labels(self._state_repo(full_name), names)

    def rename_label(self, full_name: str, old: str, new: str) -> None:
        label = self._state_repo(full_name).label_named(old)
        if label is None:
            raise KeyError(f"no label {old!r} in {full_name}")
        label.name = new

    def repo_labels(self, full_name: str) -> list[dict[str, Any]]:
        repo = self._state_repo(full_name)
        return [self.state.label_json(repo, lb) for lb in repo.labels.values()]

    def revoke_tokens(self, installation_id: int) -> None:
        """Revoke every token of an installation, as when GitHub invalidates them early."""
        for value, token in list(self.state.tokens.items()):
            if token.installation_id == installation_id:
                del self.state.tokens[value]

    def fail_next(self, method: str, path_prefix: str, status: int, times: int = 1,
                  headers: dict[str, str] | None = None, message: str | None = None) -> None:
        """Answer the next ``times`` matching requests with ``status`` (method ``*`` matches any)."""
        self._failures.append(Failure(method.upper(), path_prefix, status, times, headers or {},
                                      message or HTTPStatus(status).phrase))

    def fail_randomly(self, share: float, seed: int = 0) -> None:
        """From now on fail ``share`` of all API calls (drawn with ``seed``) with GitHub's passing failures:
        500, 502, 503, a primary rate limit (403, ``x-ratelimit-remaining: 0``, reset a second ahead) and
        secondary ones (403 or 429 with ``Retry-After: 1``). ``random_failures`` counts them by status."""
        self._random = (share, random.Random(seed))

    def _random_failure(self) -> Failure | None:
        share, rng = self._random
        if not share or rng.random() >= share:
            return None
        kind = rng.choice(["500", "502", "503", "primary", "secondary-403", "secondary-429"])
        self.random_failures[kind] = self.random_failures.get(kind, 0) + 1
        if kind == "primary":
            headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(self.clock()) + 1)}
            return Failure("*", "/", 403, 1, headers, "API rate limit exceeded for installation.")
        if kind.startswith("secondary"):
            return Failure("*", "/", int(kind[-3:]), 1, {"retry-after": "1"}, SECONDARY_LIMIT_MESSAGE)
        return Failure("*", "/", int(kind), 1, {}, HTTPStatus(int(kind)).phrase)

    def _state_repo(self, full_name: str) -> Repo:
        repo = self.state.find_repo(full_name)
        if repo is None:
            raise KeyError(f"no repository {full_name!r}; add it with add_repo or add_installation")
        return repo

    # -- webhook payloads --------------------------------------------------

    def issues_payload(self, action: str, full_name: str, number: int, installation_id: int,
                       sender: str = "octocat", *, label: str | None = None,
                       changes: dict[str, Any] | None = None) -> dict[str, Any]:
        """An ``issues`` event; ``label`` defaults to the issue's last label for ``labeled``."""
        repo = self._state_repo(full_name)
        issue = repo.issues[number]
        payload: dict[str, Any] = {"action": action, "issue": self.state.issue_json(repo, issue)}
        if action in ("labeled", "unlabeled"):
            payload["label"] = self._payload_label(repo, issue, action, label)
        if action == "edited":
            payload["changes"] = changes or {}
        return {**payload, **self._payload_context(repo, sender, installation_id)}

    def issue_comment_payload(self, action: str, full_name: str, number: int, comment_id: int,
                              installation_id: int) -> dict[str, Any]:
        repo = self._state_repo(full_name)
        issue = repo.issues[number]
        comment = next(c for c in issue.comments if c.id == comment_id)
        return {"action": action, "issue": self.state.issue_json(repo, issue),
                "comment": self.state.comment_json(repo, issue, comment),
                **self._payload_context(repo, comment.user, installation_id)}

    def push_payload(self, full_name: str, installation_id: int, changed: list[str],
                     ref: str | None = None) -> dict[str, Any]:
        """A ``push`` to the default branch (or ``ref``) whose one commit modified ``changed``."""
        repo = self._state_repo(full_name)
        commit = {"id": "0" * 40, "message": "update", "added": [], "removed": [], "modified": changed}
        context = self._payload_context(repo, "octocat", installation_id)
        context["repository"] = {**context["repository"], "default_branch": "main"}
        return {"ref": ref or "refs/heads/main", "before": "1" * 40, "after": "0" * 40,
                "commits": [commit], "head_commit": commit, **context}

    def repository_payload(self, action: str, full_name: str, installation_id: int) -> dict[str, Any]:
        """A ``repository`` event (``privatized``, ``publicized``, ``renamed`` …) as the repository is now."""
        return {"action": action, **self._payload_context(self._state_repo(full_name), "octocat", installation_id)}

    def label_payload(self, action: str, full_name: str, name: str, installation_id: int,
                      changes: dict[str, Any] | None = None) -> dict[str, Any]:
        """A ``label`` event (``edited`` with ``changes`` like ``{"name": {"from": old}}``)."""
        repo = self._state_repo(full_name)
        label = repo.label_named(name)
        if label is None:
            raise KeyError(f"no label {name!r} in {full_name}")
        payload = {"action": action, "label": self.state.label_json(repo, label),
                   **self._payload_context(repo, "octocat", installation_id)}
        if changes is not None:
            payload["changes"] = changes
        return payload

    def installation_payload(self, action: str, installation_id: int) -> dict[str, Any]:
        inst = self.state.installations[installation_id]
        repos = [self._state_repo(name) for name in inst.repos]
        return {
            "action": action,
            "installation": self.state.installation_json(inst, self.app_id),
            "repositories": [{"id": r.id, "node_id": node_id("Repository", r.id), "name": r.name,
                              "full_name": r.full_name, "private": r.private} for r in repos],
            "requester": None,
            "sender": self.state.user_json(inst.account, inst.account_type),
        }

    def _payload_label(self, repo: Repo, issue: Issue, action: str, name: str | None) -> dict[str, Any]:
        if name is None:
            if action == "unlabeled" or not issue.label_ids:
                raise ValueError(f"an {action!r} payload needs label=<name>")
            found = repo.labels[issue.label_ids[-1]]
        else:
            found = repo.label_named(name)
            if found is None:
                raise ValueError(f"no label {name!r} in {repo.full_name}")
        return self.state.label_json(repo, found)

    def _payload_context(self, repo: Repo, sender: str, installation_id: int) -> dict[str, Any]:
        return {
            "repository": self.state.repo_json(repo),
            "sender": self.state.user_json(sender),
            "installation": {"id": installation_id,
                             "node_id": node_id("IntegrationInstallation", installation_id)},
        }

    # -- HTTP plumbing -----------------------------------------------------

    def _endpoint(self, template: str | None, auth: str,
                  handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = INVALID_JSON
            status, payload, headers = self._answer(request, template, auth, handler, body)
            if payload is not None:
                headers["content-type"] = "application/json; charset=utf-8"
            exchange = Exchange(request.method, request.url.path, dict(request.query_params), dict(request.headers),
                                None if body is INVALID_JSON else body, status, headers, payload, template)
            self.exchanges.append(exchange)
            if self.on_exchange is not None:
                self.on_exchange(exchange)
            content = b"" if payload is None else json.dumps(payload).encode()
            return Response(content, status, headers)

        return endpoint

    def _answer(self, request: Request, template: str | None, auth: str, handler: Handler,
                body: Any) -> Reply:
        principal = Principal("anonymous", "anonymous")
        try:
            principal = self._authenticate(request, auth)
            if template != "/rate_limit":
                self._spend(principal)
            failure = self._take_failure(request)
            if failure is not None:
                error = {"message": failure.message, "documentation_url": DOCS}
                return failure.status, error, {**self._rate_headers(principal), **failure.headers}
            if body is INVALID_JSON:
                raise ApiError(400, "Problems parsing JSON")
            call = Call(request, dict(request.path_params), dict(request.query_params), body, principal)
            status, payload, headers = handler(call)
        except ApiError as err:
            status, payload, headers = err.status, err.body, {}
        return status, payload, {**self._rate_headers(principal), **headers}

    def _take_failure(self, request: Request) -> Failure | None:
        for failure in self._failures:
            if failure.method in ("*", request.method) and request.url.path.startswith(failure.path_prefix):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return self._random_failure()

    # -- authentication and rate limits -----------------------------------

    def _authenticate(self, request: Request, auth: str) -> Principal:
        if auth == "none":
            return Principal("anonymous", "anonymous")
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if not credential:
            raise ApiError(401, "Requires authentication")
        is_token = scheme.lower() == "token" or credential.startswith(("ghs_", "ghu_"))
        if auth == "user":
            login = self.state.user_tokens.get(credential) if is_token or scheme.lower() == "bearer" else None
            if login is None:
                raise bad_credentials()
            return Principal("user", f"user:{login}", login=login)
        if auth == "jwt":
            if is_token or scheme.lower() != "bearer":
                raise ApiError(401, "A JSON web token could not be decoded")
            self._verify_jwt(credential)
            return Principal("app", "app")
        token = self.state.tokens.get(credential) if is_token else None
        if token is None or token.expires_at <= self.clock():
            raise bad_credentials()
        return Principal("installation", f"token:{token.value}", token.installation_id)

    def _verify_jwt(self, credential: str) -> None:
        try:
            claims = jwt.decode(credential, self._public_key, algorithms=["RS256"],
                                options={"verify_exp": False, "verify_iat": False,
                                         "verify_nbf": False, "verify_iss": False})
        except jwt.InvalidTokenError:
            raise ApiError(401, "A JSON web token could not be decoded") from None
        now = self.clock()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not _is_number(iat) or iat > now + JWT_LEEWAY_S:
            raise ApiError(401, "'Issued at' claim ('iat') must be an Integer representing the time "
                                "that the assertion was issued")
        if not _is_number(exp) or exp <= now:
            raise ApiError(401, "'Expiration time' claim ('exp') must be a numeric value representing "
                                "the future time at which the assertion expires")
        if exp - iat > MAX_JWT_LIFETIME_S + JWT_LEEWAY_S:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        if str(claims.get("iss")) != str(self.app_id):
            raise ApiError(401, "'Issuer' claim ('iss') must be the ID of this GitHub App")

    def _bucket(self, principal: Principal) -> Bucket:
        now = self.clock()
        limit = ANONYMOUS_RATE_LIMIT if principal.kind == "anonymous" else self.rate_limit
        bucket = self._buckets.get(principal.bucket)
        if bucket is None or now >= bucket.reset:
            bucket = self._buckets[principal.bucket] = Bucket(limit, int(now) + self.rate_limit_window_s)
        bucket.limit = limit
        return bucket

    def _spend(self, principal: Principal) -> None:
        bucket = self._bucket(principal)
        if bucket.used >= bucket.limit:
            who = {"app": f"app ID {self.app_id}",
                   "installation": f"installation ID {principal.installation_id}"}.get(
                       principal.kind, "this client")
            raise ApiError(403, f"API rate limit exceeded for {who}. If you reach out to GitHub "
                                "Support for help, please include the request ID.", docs=RATE_DOCS)
        bucket.used += 1

    def _rate_headers(self, principal: Principal) -> dict[str, str]:
        bucket = self._bucket(principal)
        return {
            "x-ratelimit-limit": str(bucket.limit),
            "x-ratelimit-remaining": str(max(bucket.limit - bucket.used, 0)),
            "x-ratelimit-reset": str(int(bucket.reset)),
            "x-ratelimit-used": str(bucket.used),
            "x-ratelimit-resource": "core",
        }

    def _rate_json(self, principal: Principal) -> dict[str, Any]:
        bucket = self._bucket(principal)
        return {"limit": bucket.limit, "remaining": max(bucket.limit - bucket.used, 0),
                "reset": int(bucket.reset), "used": bucket.used, "resource": "core"}

    # -- helpers for handlers ----------------------------------------------

    def _repo(self, call: Call) -> Repo:
        full_name = f"{call.params['owner']}/{call.params['repo']}"
        inst = self.state.installations.get(call.principal.installation_id or -1)
        repo = self.state.find_repo(full_name)
        if inst is None or repo is None or repo.full_name not in inst.repos:
            raise not_found()
        return repo

    def _issue(self, call: Call) -> tuple[Repo, Issue]:
        repo = self._repo(call)
        number = call.params["issue_number"]
        issue = repo.issues.get(int(number)) if number.isdigit() else None
        if issue is None:
            raise not_found()
        if int(number) in self.deleted_issues.get(repo.full_name, set()):
            raise ApiError(410, "This issue was deleted")
        return repo, issue

    def _label(self, repo: Repo, name: str) -> Label:
        label = repo.label_named(name)
        if label is None:
            raise not_found()
        return label

    def _page(self, call: Call, items: list[Any], wrap: Callable[[list[Any]], Any] = list) -> Reply:
        per_page = min(max(_int(call.query.get("per_page"), 30), 1), self.max_per_page)
        page = max(_int(call.query.get("page"), 1), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page: page * per_page]
        links = self._links(call.request, page, last, per_page)
        return 200, wrap(chunk), {"link": links} if links else {}

    @staticmethod
    def _links(request: Request, page: int, last: int, per_page: int) -> str:
        others = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "per_page")]

        def url(p: int) -> str:
            query = urllib.parse.urlencode([("page", p), ("per_page", per_page), *others])
            return str(request.url.replace(query=query))

        rels = []
        if page > 1:
            rels.append(("prev", min(page - 1, last)))
        if page < last:
            rels += [("next", page + 1), ("last", last)]
        if page > 1:
            rels.append(("first", 1))
        return ", ".join(f'<{url(p)}>; rel="{rel}"' for rel, p in rels)

    def _label_names(self, body: Any) -> list[str]:
        """Label names from ``{"labels": [...]}`` or a bare list, items strings or ``{"name"}``."""
        raw = body.get("labels") if isinstance(body, dict) else body
        if not isinstance(raw, list):
            raise ApiError(422, "Invalid request.\n\n\"labels\" wasn't supplied.")
        return [item["name"] if isinstance(item, dict) else str(item) for item in raw]

    def _issue_labels(self, repo: Repo, issue: Issue) -> list[dict[str, Any]]:
        return [self.state.label_json(repo, repo.labels[i]) for i in issue.label_ids]

    # -- route table ----------------------------------------------------------

    def _route_table(self) -> list[tuple[str, str, str, Handler]]:
        r = "/repos/{owner}/{repo}"
        i = f"{r}/issues/{{issue_number}}"
        return [
            ("GET", "/app", "jwt", self._get_app),
            ("GET", "/app/installations", "jwt", self._list_installations),
            ("GET", "/app/installations/{installation_id}", "jwt", self._get_installation),
            ("POST", "/app/installations/{installation_id}/access_tokens", "jwt", self._create_token),
            ("GET", "/installation/repositories", "token", self._installation_repos),
            ("GET", "/rate_limit", "token", self._get_rate_limit),
            ("GET", r, "token", self._get_repo),
            ("GET", f"{r}/issues", "token", self._list_issues),
            ("GET", i, "token", self._get_issue),
            ("PATCH", i, "token", self._update_issue),
            ("GET", f"{i}/labels", "token", self._list_issue_labels),
            ("POST", f"{i}/labels", "token", self._add_issue_labels),
            ("PUT", f"{i}/labels", "token", self._set_issue_labels),
            ("DELETE", f"{i}/labels", "token", self._remove_all_issue_labels),
            ("DELETE", f"{i}/labels/{{name}}", "token", self._remove_issue_label),
            ("GET", f"{i}/comments", "token", self._list_comments),
            ("POST", f"{i}/comments", "token", self._create_comment),
            ("GET", f"{r}/labels", "token", self._list_labels),
            ("POST", f"{r}/labels", "token", self._create_label),
            ("GET", f"{r}/labels/{{name}}", "token", self._get_label),
            ("PATCH", f"{r}/labels/{{name}}", "token", self._update_label),
            ("DELETE", f"{r}/labels/{{name}}", "token", self._delete_label),
            ("GET", f"{r}/contents/{{path}}", "token", self._get_content),
            ("GET", f"{r}/collaborators/{{username}}/permission", "token", self._get_permission),
            ("GET", "/user", "user", self._get_user),
            ("GET", "/user/installations", "user", self._user_installations),
            ("GET", "/user/installations/{installation_id}/repositories", "user", self._user_installation_repos),
        ]

    # -- handlers: app ----------------------------------------------------------

    def _unknown_route(self, call: Call) -> Reply:
        raise not_found()

    def _get_app(self, call: Call) -> Reply:
        created = iso(self._created_at)
        return 200, {
            "id": self.app_id,
            "slug": "ptm-triage",
            "node_id": node_id("Integration", self.app_id),
            "client_id": f"Iv1.{self.app_id:016x}",
            "owner": self.state.user_json("ptm-triage", "Organization"),
            "name": "PTM Triage",
            "description": "Labels issues about reusing pre-trained AI models",
            "external_url": "https://github.com/apps/ptm-triage",
            "html_url": f"{self.state.html_url}/apps/ptm-triage",
            "created_at": created,
            "updated_at": created,
            "permissions": APP_PERMISSIONS,
            "events": list(APP_EVENTS),
            "installations_count": len(self.state.installations),
        }, {}

    def _installation(self, call: Call) -> Installation:
        raw = call.params["installation_id"]
        inst = self.state.installations.get(int(raw)) if raw.isdigit() else None
        if inst is None:
            raise ApiError(404, "Not Found", docs=f"{DOCS}/apps/apps#get-an-installation-for-the-authenticated-app")
        return inst

    def _list_installations(self, call: Call) -> Reply:
        items = [self.state.installation_json(inst, self.app_id)
                 for inst in sorted(self.state.installations.values(), key=lambda x: x.id)]
        return self._page(call, items)

    def _get_installation(self, call: Call) -> Reply:
        return 200, self.state.installation_json(self._installation(call), self.app_id), {}

    def _create_token(self, call: Call) -> Reply:
        inst = self._installation(call)
        token = Token(f"ghs_{secrets.token_hex(18)}", inst.id, self.clock() + self.token_ttl_s)
        self.state.tokens[token.value] = token
        return 201, {"token": token.value, "expires_at": iso(token.expires_at),
                     "permissions": APP_PERMISSIONS, "repository_selection": "selected"}, {}

    # -- handlers: installation -------------------------------------------------

    def _installation_repos(self, call: Call) -> Reply:
        inst = self.state.installations[call.principal.installation_id or -1]
        repos = [self.state.repo_json(self._state_repo(name)) for name in inst.repos]
        return self._page(call, repos, lambda chunk: {
            "total_count": len(repos), "repository_selection": "selected", "repositories": chunk})

    def _get_rate_limit(self, call: Call) -> Reply:
        core = self._rate_json(call.principal)
        search = {"limit": 30, "remaining": 30, "reset": int(self.clock()) + 60, "used": 0,
                  "resource": "search"}
        return 200, {"resources": {"core": core, "search": search}, "rate": core}, {}

    def _get_repo(self, call: Call) -> Reply:
        return 200, self.state.repo_json(self._repo(call), full=True), {}

    # -- handlers: issues -------------------------------------------------------

    def _list_issues(self, call: Call) -> Reply:
        repo = self._repo(call)
        q = call.query
        state = q.get("state", "open")
        wanted = {n.strip().casefold() for n in q.get("labels", "").split(",") if n.strip()}
        since = parse_iso(q["since"]) if "since" in q else None
        issues = [
            issue for issue in repo.issues.values()
            if state in ("all", issue.state)
            and (since is None or issue.updated_at >= since)
            and wanted <= {repo.labels[i].name.casefold() for i in issue.label_ids}
        ]
        sort = q.get("sort", "created")
        key: Callable[[Issue], Any] = {
            "updated": lambda x: (x.updated_at, x.number),
            "comments": lambda x: (len(x.comments), x.number),
        }.get(sort, lambda x: (x.created_at, x.number))
        issues.sort(key=key, reverse=q.get("direction", "desc") != "asc")
        return self._page(call, [self.state.issue_json(repo, x) for x in issues])

    def _get_issue(self, call: Call) -> Reply:
        repo, issue = self._issue(call)
        return 200, self.state.issue_json(repo, issue), {}

    def _update_issue(self, call: Call) -> Reply:
        repo, issue = self._issue(call)
        body = call.json or {}
        if "title" in body and body["title"] is not None:
            issue.title = str(body["title"])
        if "body" in body:
            issue.body = body["body"]
        if body.get("state") in ("open", "closed"):
            self.state.set_state(issue, body["state"], body.get("state_reason"))
        if "labels" in body:
            self.state.set_issue_labels(repo, issue, self._label_names(body))
        if "assignees" in body:
            issue.assignees = [a["login"] if isinstance(a, dict) else a for a in body["assignees"]]
        issue.updated_at = self.clock()
        return 200, self.state.issue_json(repo, issue), {}

    def _list_issue_labels(self, call: Call) -> Reply:
        repo, issue = self._issue(call)
        return self._page(call, self._issue_labels(repo, issue))

    def _label_events(self, repo: Repo, issue: Issue, before: list[int]) -> None:
        """What GitHub's timeline would show: a ``labeled`` or ``unlabeled`` event per label that changed."""
        for action, ids in (("labeled", [i for i in issue.label_ids if i not in before]),
                            ("unlabeled", [i for i in before if i not in issue.label_ids])):
            self.label_events.extend((repo.full_name, issue.number, action, repo.labels[i].name) for i in ids)

    def _add_issue_labels(self, call: Call) -> Reply:
        repo, issue = self._issue(call)
        before = list(issue.label_ids)
        self.state.add_issue_labels(repo, issue, self._label_names(call.json))
        self._label_events(repo, issue, before)
        return 200, self._issue_labels(repo, issue), {}

    def _set_issue_labels(self, call: Call) -> Reply:
        repo, issue = self._issue(call)
        before = list(issue.label_ids)
        self.state.set_issue_labels(repo, issue, self._label_names(call.json or []))
        self._label_events(repo, issue, before)
        return 200, self._issue_labels(repo, issue), {}

    def _remove_all_issue_labels(self, call: Call) -> Reply:
        repo, issue = self._issue(call)
        before = list(issue.label_ids)
        self.state.set_issue_labels(repo, issue, [])
        self._label_events(repo, issue, before)
        return 204, None, {}

    def _remove_issue_label(self, call: Call) -> Reply:
        repo, issue = self._issue(call)
        label = repo.label_named(call.params["name"])
        if label is None or label.id not in issue.label_ids:
            raise ApiError(404, "Label does not exist",
                           docs=f"{DOCS}/issues/labels#remove-a-label-from-an-issue")
        issue.label_ids.remove(label.id)
        self.label_events.append((repo.full_name, issue.number, "unlabeled", label.name))
        issue.updated_at = self.clock()
        return 200, self._issue_labels(repo, issue), {}

    def _list_comments(self, call: Call) -> Reply:
        repo, issue = self._issue(call)
        since = parse_iso(call.query["since"]) if "since" in call.query else None
        comments = [self.state.comment_json(repo, issue, c) for c in issue.comments
                    if since is None or c.updated_at >= since]
        return self._page(call, comments)

    def _create_comment(self, call: Call) -> Reply:
        repo, issue = self._issue(call)
        body = call.json if isinstance(call.json, dict) else {}
        if not isinstance(body.get("body"), str):
            raise ApiError(422, "Invalid request.\n\n\"body\" wasn't supplied.")
        comment = self.state.add_comment(issue, body["body"], BOT_LOGIN)
        return 201, self.state.comment_json(repo, issue, comment), {}

    # -- handlers: labels -------------------------------------------------------

    def _list_labels(self, call: Call) -> Reply:
        repo = self._repo(call)
        return self._page(call, [self.state.label_json(repo, lb) for lb in repo.labels.values()])

    def _create_label(self, call: Call) -> Reply:
        repo = self._repo(call)
        body = call.json if isinstance(call.json, dict) else {}
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise validation_failed("name", "missing_field")
        if repo.label_named(name) is not None:
            raise validation_failed("name", "already_exists")
        color = _check_label(name, body.get("color", DEFAULT_LABEL_COLOR))
        (label,) = self.state.ensure_labels(repo, [name])
        label.color, label.description = color, body.get("description")
        return 201, self.state.label_json(repo, label), {}

    def _get_label(self, call: Call) -> Reply:
        repo = self._repo(call)
        return 200, self.state.label_json(repo, self._label(repo, call.params["name"])), {}

    def _update_label(self, call: Call) -> Reply:
        repo = self._repo(call)
        label = self._label(repo, call.params["name"])
        body = call.json if isinstance(call.json, dict) else {}
        new_name = body.get("new_name", label.name)
        if repo.label_named(new_name) not in (None, label):
            raise validation_failed("name", "already_exists")
        label.color = _check_label(new_name, body.get("color", label.color))
        label.name = new_name
        if "description" in body:
            label.description = body["description"]
        return 200, self.state.label_json(repo, label), {}

    def _delete_label(self, call: Call) -> Reply:
        repo = self._repo(call)
        label = self._label(repo, call.params["name"])
        del repo.labels[label.id]
        for issue in repo.issues.values():
            if label.id in issue.label_ids:
                issue.label_ids.remove(label.id)
        return 204, None, {}

    # -- handlers: contents and permissions -----------------------------------

    def _get_content(self, call: Call) -> Reply:
        repo = self._repo(call)
        path = call.params["path"].strip("/")
        if path not in repo.files:
            raise ApiError(404, "Not Found", docs=f"{DOCS}/repos/contents#get-repository-content")
        return 200, self.state.file_json(repo, path), {}

    def _get_permission(self, call: Call) -> Reply:
        repo = self._repo(call)
        login = call.params["username"]
        role = self.state.role(repo, login)
        user = {**self.state.user_json(login), "role_name": role}
        return 200, {"permission": ROLE_TO_PERMISSION[role], "role_name": role, "user": user}, {}


    # -- handlers: a signed-in user (user-to-server token) -------------------------

    def _user_repos(self, inst: Installation, login: str) -> list[Repo]:
        return [repo for name in inst.repos if self.state.has_access(repo := self._state_repo(name), login)]

    def _get_user(self, call: Call) -> Reply:
        assert call.principal.login is not None
        return 200, self.state.profile_json(call.principal.login), {}

    def _user_installations(self, call: Call) -> Reply:
        login = call.principal.login or ""
        items = [self.state.installation_json(inst, self.app_id)
                 for inst in sorted(self.state.installations.values(), key=lambda x: x.id)
                 if self._user_repos(inst, login)]
        return self._page(call, items, lambda chunk: {"total_count": len(items), "installations": chunk})

    def _user_installation_repos(self, call: Call) -> Reply:
        inst = self._installation(call)
        repos = [self.state.repo_json(repo) for repo in self._user_repos(inst, call.principal.login or "")]
        if not repos:
            raise not_found()
        return self._page(call, repos, lambda chunk: {
            "total_count": len(repos), "repository_selection": "selected", "repositories": chunk})

    # -- github.com's OAuth web flow ----------------------------------------------

    async def _authorize_page(self, request: Request) -> Response:
        """The page GitHub shows a person asked to authorise the App: here, a form that asks who they are."""
        q = request.query_params
        if q.get("client_id") != self.client_id:
            return Response("unknown client_id", 404)
        hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(q.get(k, ""))}">'
                         for k in ("redirect_uri", "state"))
        return Response(f'<!doctype html><title>Authorize PTM Triage</title><form method="post">{hidden}'
                        '<label>Username <input name="login" id="login"></label>'
                        '<button id="authorize">Authorize PTM Triage</button></form>', 200,
                        media_type="text/html")

    async def _authorize(self, request: Request) -> Response:
        form = await _form(request)
        login, redirect_uri = str(form.get("login", "")), str(form.get("redirect_uri", ""))
        if not login or not redirect_uri.startswith(("http://", "https://")):
            return Response("login and redirect_uri are required", 422)
        code = secrets.token_hex(10)
        self._codes[code] = (login, redirect_uri)
        query = urllib.parse.urlencode({"code": code, "state": str(form.get("state", ""))})
        return Response(status_code=302, headers={"location": f"{redirect_uri}?{query}"})

    async def _access_token(self, request: Request) -> Response:
        """GitHub answers 200 with an ``error`` for a bad exchange, JSON when asked for it."""
        form = await _form(request)
        client = (form.get("client_id"), form.get("client_secret"))
        scheme, _, basic = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":  # client_secret_basic, which GitHub accepts as well as the form's fields
            user, _, password = base64.b64decode(basic).decode().partition(":")
            client = (urllib.parse.unquote(user), urllib.parse.unquote(password))
        if client != (self.client_id, self.client_secret):
            body: dict[str, Any] = {"error": "incorrect_client_credentials",
                                    "error_description": "The client_id and/or client_secret passed are incorrect."}
        elif (found := self._codes.pop(str(form.get("code", "")), None)) is None or \
                form.get("redirect_uri") not in (None, found[1]):
            body = {"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}
        else:
            token = f"ghu_{secrets.token_hex(18)}"
            self.state.user_tokens[token] = found[0]
            self.signed_in.append(found[0])
            body = {"access_token": token, "token_type": "bearer", "scope": ""}
        return Response(json.dumps(body), 200, media_type="application/json")


async def _form(request: Request) -> dict[str, str]:
    """A url-encoded form's fields (what browsers and OAuth clients send here), without python-multipart."""
    return {k: v[0] for k, v in urllib.parse.parse_qs((await request.body()).decode()).items()}


SECONDARY_LIMIT_MESSAGE = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."


def _check_label(name: str, color: Any) -> str:
    """The normalised colour, once name and colour pass GitHub's checks."""
    if len(name) > 50:
        raise validation_failed("name", "invalid")
    color = str(color).removeprefix("#")
    if len(color) != 6 or not set(color) <= LABEL_COLOR_CHARS:
        raise validation_failed("color", "invalid")
    return color.lower()


def _starlette_path(template: str) -> str:
    """Starlette path for an OpenAPI template; the last ``{path}``/``{name}`` may hold slashes."""
    for param in ("{path}", "{name}"):
        if template.endswith(param):
            return template.removesuffix(param) + param[:-1] + ":path}"
    return template


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _epoch(value: float | str) -> float:
    return parse_iso(value) if isinstance(value, str) else float(value)
