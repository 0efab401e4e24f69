"""In-memory GitHub state for the simulator, and its rendering as GitHub JSON.

Shapes follow the schemas in GitHub's OpenAPI description (``issue``,
``label``, ``full-repository``, ...), so code that works here works there.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_LABEL_COLOR = "ededed"
ROLE_TO_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{ident}".encode()).decode()


@dataclass
class Label:
    id: int
    name: str
    color: str = DEFAULT_LABEL_COLOR
    description: str | None = None
    default: bool = False


@dataclass
class Comment:
    id: int
    body: str
    user: str
    created_at: float
    updated_at: float


@dataclass
class Issue:
    id: int
    number: int
    title: str
    body: str | None
    user: str
    user_type: str
    created_at: float
    updated_at: float
    state: str = "open"
    state_reason: str | None = None
    closed_at: float | None = None
    label_ids: list[int] = field(default_factory=list)
    assignees: list[str] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    pull_request: bool = False


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    created_at: float
    labels: dict[int, Label] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    private: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def label_named(self, name: str) -> Label | None:
        wanted = name.casefold()
        return next((lb for lb in self.labels.values() if lb.name.casefold() == wanted), None)


@dataclass
class Installation:
    id: int
    account: str
    account_type: str
    repos: list[str]
    created_at: float


@dataclass(frozen=True)
class Token:
    value: str
    installation_id: int
    expires_at: float


class SimState:
    """Everything the simulated GitHub knows, plus GitHub-shaped JSON views of it."""

    def __init__(self, clock: Callable[[], float] = time.time, api_url: str = "https://api.github.com",
                 html_url: str = "https://github.com") -> None:
        self.clock = clock
        self.api_url = api_url.rstrip("/")
        self.html_url = html_url.rstrip("/")
        self.repos: dict[str, Repo] = {}
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, Token] = {}
        self.user_tokens: dict[str, str] = {}  # user-to-server token -> login
        self._ids = itertools.count(1000)
        self._user_ids: dict[str, int] = {}

    def next_id(self) -> int:
        return next(self._ids)

    # -- mutation ---------------------------------------------------------

    def add_repo(self, full_name: str) -> Repo:
        repo = self.find_repo(full_name)
        if repo is None:
            owner, name = full_name.split("/")
            repo = self.repos[full_name] = Repo(self.next_id(), owner, name, self.clock())
        return repo

    def ensure_labels(self, repo: Repo, names: Iterable[str]) -> list[Label]:
        """The repo's labels with these names, creating missing ones like GitHub does."""
        labels = []
        for name in names:
            label = repo.label_named(name)
            if label is None:
                label = Label(self.next_id(), name)
                repo.labels[label.id] = label
            labels.append(label)
        return labels

    def set_issue_labels(self, repo: Repo, issue: Issue, names: Iterable[str]) -> None:
        issue.label_ids = list(dict.fromkeys(lb.id for lb in self.ensure_labels(repo, names)))
        issue.updated_at = self.clock()

    def add_issue_labels(self, repo: Repo, issue: Issue, names: Iterable[str]) -> None:
        current = [repo.labels[i].name for i in issue.label_ids]
        self.set_issue_labels(repo, issue, [*current, *names])

    def set_state(self, issue: Issue, state: str, reason: str | None = None) -> None:
        if state == issue.state:
            return
        now = self.clock()
        issue.state = state
        issue.closed_at = now if state == "closed" else None
        issue.state_reason = reason or ("completed" if state == "closed" else "reopened")
        issue.updated_at = now

    def add_comment(self, issue: Issue, body: str, user: str) -> Comment:
        now = self.clock()
        comment = Comment(self.next_id(), body, user, now, now)
        issue.comments.append(comment)
        issue.updated_at = now
        return comment

    def role(self, repo: Repo, user: str) -> str:
        return "admin" if user == repo.owner else repo.roles.get(user, "read")

    def has_access(self, repo: Repo, user: str) -> bool:
        """Owner or collaborator: what ``GET /user/installations/{id}/repositories`` lists for a user."""
        return user == repo.owner or user in repo.roles

    def find_repo(self, full_name: str) -> Repo | None:
        """Repository names are case-insensitive on GitHub."""
        wanted = full_name.casefold()
        return next((r for r in self.repos.values() if r.full_name.casefold() == wanted), None)

    # -- rendering --------------------------------------------------------

    def user_json(self, login: str, user_type: str | None = None) -> dict[str, Any]:
        user_type = user_type or ("Bot" if login.endswith("[bot]") else "User")
        uid = self._user_ids.setdefault(login, self.next_id())
        url = f"{self.api_url}/users/{login}"
        return {
            "login": login,
            "id": uid,
            "node_id": node_id("User", uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": url,
            "html_url": f"{self.html_url}/{login}",
            "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events",
            "type": user_type,
            "user_view_type": "public",
            "site_admin": False,
        }

    def profile_json(self, login: str) -> dict[str, Any]:
        """``GET /user`` as a signed-in user sees it (the public profile)."""
        created = iso(0)
        return {**self.user_json(login), "name": None, "company": None, "blog": "", "location": None,
                "email": None, "hireable": None, "bio": None, "public_repos": 0, "public_gists": 0,
                "followers": 0, "following": 0, "created_at": created, "updated_at": created}

    def repo_url(self, repo: Repo) -> str:
        return f"{self.api_url}/repos/{repo.full_name}"

    def repo_json(self, repo: Repo, *, full: bool = False) -> dict[str, Any]:
        url = self.repo_url(repo)
        html = f"{self.html_url}/{repo.full_name}"
        open_issues = sum(1 for i in repo.issues.values() if i.state == "open")
        updated = max([repo.created_at, *(i.updated_at for i in repo.issues.values())])
        data: dict[str, Any] = {
            "id": repo.id,
            "node_id": node_id("Repository", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self.user_json(repo.owner),
            "html_url": html,
            "description": None,
            "fork": False,
            "url": url,
            **{f"{k}_url": f"{url}/{k}" for k in (
                "forks", "teams", "hooks", "events", "tags", "languages", "stargazers",
                "contributors", "subscribers", "subscription", "merges", "downloads", "deployments")},
            **{f"{k}_url": f"{url}/{path}" for k, path in (
                ("keys", "keys{/key_id}"), ("collaborators", "collaborators{/collaborator}"),
                ("issue_events", "issues/events{/number}"), ("assignees", "assignees{/user}"),
                ("branches", "branches{/branch}"), ("blobs", "git/blobs{/sha}"),
                ("git_tags", "git/tags{/sha}"), ("git_refs", "git/refs{/sha}"),
                ("trees", "git/trees{/sha}"), ("statuses", "statuses/{sha}"),
                ("commits", "commits{/sha}"), ("git_commits", "git/commits{/sha}"),
                ("comments", "comments{/number}"), ("issue_comment", "issues/comments{/number}"),
                ("contents", "contents/{+path}"), ("compare", "compare/{base}...{head}"),
                ("archive", "{archive_format}{/ref}"), ("issues", "issues{/number}"),
                ("pulls", "pulls{/number}"), ("milestones", "milestones{/number}"),
                ("notifications", "notifications{?since,all,participating}"),
                ("labels", "labels{/name}"), ("releases", "releases{/id}"))},
            "created_at": iso(repo.created_at),
            "updated_at": iso(updated),
            "pushed_at": iso(repo.created_at),
            "git_url": f"git://{html.split('://', 1)[1]}.git",
            "ssh_url": f"git@{self.html_url.split('://', 1)[1]}:{repo.full_name}.git",
            "clone_url": f"{html}.git",
            "svn_url": html,
            "homepage": None,
            "size": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": None,
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": True,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": 0,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": open_issues,
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [],
            "visibility": "private" if repo.private else "public",
            "forks": 0,
            "open_issues": open_issues,
            "watchers": 0,
            "default_branch": "main",
            "custom_properties": {},
        }
        if full:
            data.update(network_count=0, subscribers_count=0)
        return data

    def label_json(self, repo: Repo, label: Label) -> dict[str, Any]:
        return {
            "id": label.id,
            "node_id": node_id("Label", label.id),
            "url": f"{self.repo_url(repo)}/labels/{urllib.parse.quote(label.name, safe='')}",
            "name": label.name,
            "color": label.color,
            "default": label.default,
            "description": label.description,
        }

    def author_association(self, repo: Repo, user: str) -> str:
        if user == repo.owner:
            return "OWNER"
        return "COLLABORATOR" if user in repo.roles else "NONE"

    def issue_json(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        repo_url = self.repo_url(repo)
        url = f"{repo_url}/issues/{issue.number}"
        kind = "pull" if issue.pull_request else "issues"
        data: dict[str, Any] = {
            "url": url,
            "repository_url": repo_url,
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{self.html_url}/{repo.full_name}/{kind}/{issue.number}",
            "id": issue.id,
            "node_id": node_id("PullRequest" if issue.pull_request else "Issue", issue.id),
            "number": issue.number,
            "title": issue.title,
            "user": self.user_json(issue.user, issue.user_type),
            "labels": [self.label_json(repo, repo.labels[i]) for i in issue.label_ids],
            "state": issue.state,
            "locked": False,
            "assignee": self.user_json(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.user_json(a) for a in issue.assignees],
            "milestone": None,
            "comments": len(issue.comments),
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at) if issue.closed_at is not None else None,
            "author_association": self.author_association(repo, issue.user),
            "active_lock_reason": None,
            "body": issue.body,
            "reactions": self.reactions_json(f"{url}/reactions"),
            "timeline_url": f"{url}/timeline",
            "performed_via_github_app": None,
            "state_reason": issue.state_reason,
        }
        if issue.pull_request:
            pull = f"{repo_url}/pulls/{issue.number}"
            html = data["html_url"]
            data["draft"] = False
            data["pull_request"] = {"url": pull, "html_url": html, "diff_url": f"{html}.diff",
                                    "patch_url": f"{html}.patch", "merged_at": None}
        return data

    @staticmethod
    def reactions_json(url: str) -> dict[str, Any]:
        counts = dict.fromkeys(("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes"), 0)
        return {"url": url, "total_count": 0, **counts}

    def comment_json(self, repo: Repo, issue: Issue, comment: Comment) -> dict[str, Any]:
        url = f"{self.repo_url(repo)}/issues/comments/{comment.id}"
        return {
            "url": url,
            "html_url": f"{self.html_url}/{repo.full_name}/issues/{issue.number}#issuecomment-{comment.id}",
            "issue_url": f"{self.repo_url(repo)}/issues/{issue.number}",
            "id": comment.id,
            "node_id": node_id("IssueComment", comment.id),
            "user": self.user_json(comment.user),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "author_association": self.author_association(repo, comment.user),
            "body": comment.body,
            "reactions": self.reactions_json(f"{url}/reactions"),
            "performed_via_github_app": None,
        }

    def installation_json(self, inst: Installation, app_id: int) -> dict[str, Any]:
        # The spec's GET /app/installations schema has ``account: allOf[simple-user, enterprise]``
        # (elsewhere anyOf), so the account also carries the enterprise-only required fields.
        account = {**self.user_json(inst.account, inst.account_type), "name": inst.account,
                   "slug": inst.account.lower(), "created_at": iso(inst.created_at),
                   "updated_at": iso(inst.created_at)}
        return {
            "id": inst.id,
            "client_id": f"Iv1.{app_id:016x}",
            "account": account,
            "repository_selection": "selected",
            "access_tokens_url": f"{self.api_url}/app/installations/{inst.id}/access_tokens",
            "repositories_url": f"{self.api_url}/installation/repositories",
            "html_url": f"{self.html_url}/settings/installations/{inst.id}",
            "app_id": app_id,
            "app_slug": "ptm-triage",
            "target_id": account["id"],
            "target_type": inst.account_type,
            "permissions": APP_PERMISSIONS,
            "events": list(APP_EVENTS),
            "created_at": iso(inst.created_at),
            "updated_at": iso(inst.created_at),
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def file_json(self, repo: Repo, path: str) -> dict[str, Any]:
        raw = repo.files[path].encode()
        sha = hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()
        encoded = base64.b64encode(raw).decode()
        url = f"{self.repo_url(repo)}/contents/{path}?ref=main"
        git_url = f"{self.repo_url(repo)}/git/blobs/{sha}"
        html = f"{self.html_url}/{repo.full_name}/blob/main/{path}"
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(raw),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": "".join(encoded[i:i + 60] + "\n" for i in range(0, len(encoded), 60)),
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html,
            "download_url": f"https://raw.githubusercontent.com/{repo.full_name}/main/{path}",
            "_links": {"self": url, "git": git_url, "html": html},
        }


APP_PERMISSIONS = {"issues": "write", "metadata": "read", "contents": "read"}
APP_EVENTS = ("issues", "issue_comment", "label", "installation", "installation_repositories")
