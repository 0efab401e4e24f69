"""The shape the handlers rely on, checked once before any of them runs (``app.queue.dispatch``).

GitHub's payloads carry far more than the app reads; these models name only what it reads, with
the types it needs (ids GitHub could have made, an issue number, strings where text is), and let
the rest be. A payload that differs is no use to the handlers: its delivery ends ``skipped``
with the field and the problem named, instead of failing somewhere inside a handler or storing a
value of the wrong type.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from app.events.tracking import MissingField

GitHubId = Annotated[StrictInt, Field(gt=0, lt=2**63)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


class Account(_Part):
    login: StrictStr | None = None
    type: StrictStr | None = None


class RepositoryPart(_Part):
    id: GitHubId
    full_name: Annotated[StrictStr, Field(pattern=r"^[^/\s]+/[^/\s]+$", max_length=200)]
    private: StrictBool | None = None
    owner: Account | None = None


class LabelPart(_Part):
    name: Annotated[StrictStr, Field(max_length=100)]


class IssuePart(_Part):
    id: GitHubId | None = None
    number: Annotated[StrictInt, Field(gt=0, lt=2**31)]
    title: StrictStr | None = None
    body: StrictStr | None = None
    state: StrictStr | None = None
    state_reason: StrictStr | None = None
    created_at: StrictStr | None = None
    updated_at: StrictStr | None = None
    closed_at: StrictStr | None = None
    user: Account | None = None
    labels: list[LabelPart | StrictStr] = []
    pull_request: dict[str, Any] | None = None


class CommentPart(_Part):
    id: GitHubId
    body: StrictStr | None = None
    user: Account | None = None


class InstallationPart(_Part):
    id: GitHubId
    account: Account | None = None


class Payload(_Part):
    action: StrictStr | None = None
    repository: RepositoryPart | None = None
    issue: IssuePart | None = None
    comment: CommentPart | None = None
    label: LabelPart | None = None
    installation: InstallationPart | None = None
    sender: Account | None = None
    repositories: list[RepositoryPart] | None = None
    repositories_added: list[RepositoryPart] | None = None
    repositories_removed: list[RepositoryPart] | None = None
    changes: dict[str, Any] | None = None


def check(data: dict[str, Any]) -> None:
    """Raise ``MissingField`` naming the first field that is not as the handlers need it."""
    try:
        Payload.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MissingField(f"payload's {where}: {first['msg']}") from None
