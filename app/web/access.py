"""Who is asking, and which repositories' data they may read.

- An operator's API token (``Authorization: Bearer``, ``ptm-triage token create``): every repository.
- A person signed in with GitHub (``app.web.signin``; a session cookie): the public repositories and
  the private ones GitHub said at sign-in that they may read.
- Anyone else: the public repositories while ``PTM_TRIAGE_PUBLIC_REPOSITORIES`` is on (the default),
  none otherwise.

A repository the viewer may not read is answered as if it were not tracked, so that not even its
name is told.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.services import Services
from app.store.models import ApiToken, Repository, WebSession, utcnow
from app.store.queries import Scope, repository_ids
from app.web.deps import ServicesDep, SessionDep

TOKEN_PREFIX = "ptmt_"
SESSION_ID = "sid"  # the key in the signed session cookie that names a WebSession


def digest(secret: str) -> str:
    """How tokens and session ids are stored: their SHA-256, never themselves."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Viewer:
    kind: Literal["anonymous", "user", "token"]
    name: str | None = None  # the GitHub login, or the token's name
    private_ids: frozenset[int] = field(default=frozenset())  # private repositories a user may read
    sees_public: bool = True

    def may_read(self, repository: Repository) -> bool:
        if self.kind == "token":
            return True
        return (self.sees_public and not repository.private) or repository.id in self.private_ids

    def scope(self, session: Session) -> Scope:
        """The repositories this viewer may read (None: every one)."""
        if self.kind == "token":
            return None
        public = repository_ids(session, private=False) if self.sees_public else frozenset()
        return public | (self.private_ids & repository_ids(session, private=True))


def _bearer(request: Request, services: Services, session: Session) -> Viewer | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "the Authorization header must be 'Bearer <API token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    found = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(token.strip())))
    if found is None or found.revoked_at is not None:
        raise HTTPException(401, "unknown or revoked API token", headers={"WWW-Authenticate": "Bearer"})
    # Its use is recorded in a short transaction of its own: the request's session only reads, and a
    # write held open in it for the whole request would keep every other writer (the worker) waiting.
    with services.db.session() as own:
        own.execute(update(ApiToken).where(ApiToken.id == found.id).values(last_used_at=utcnow()))
    return Viewer("token", found.name)


def _signed_in(request: Request, session: Session) -> Viewer | None:
    session_id = request.session.get(SESSION_ID)
    if not isinstance(session_id, str):
        return None
    found = session.get(WebSession, digest(session_id))
    if found is None or found.expires_at <= utcnow():
        request.session.pop(SESSION_ID, None)
        return None
    return Viewer("user", found.login, frozenset(found.repository_ids))


def get_viewer(request: Request, services: ServicesDep, session: SessionDep) -> Viewer:
    """The caller: by API token, else by session cookie, else anonymous. A token that is wrong is a 401."""
    return (_bearer(request, services, session) or _signed_in(request, session)
            or Viewer("anonymous", sees_public=services.settings.public_repositories))


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def create_api_token(session: Session, name: str) -> str:
    """A new token named ``name``: returned once, stored only as its digest."""
    if not 0 < len(name) <= 100:
        raise ValueError("a token's name is 1 to 100 characters")
    if session.scalar(select(ApiToken).where(ApiToken.name == name)) is not None:
        raise ValueError(f"a token named {name!r} exists; revoke it or choose another name")
    token = new_secret(TOKEN_PREFIX)
    session.add(ApiToken(name=name, token_hash=digest(token)))
    return token


def revoke_api_token(session: Session, name: str) -> bool:
    """False when no token of that name is in use."""
    found = session.scalar(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None)))
    if found is None:
        return False
    found.revoked_at = utcnow()
    return True


def api_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)))
