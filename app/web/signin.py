"""Sign in with GitHub: the App's own OAuth web flow (authlib), a session kept in the database and
named by a signed, ``HttpOnly``, ``Secure``, ``SameSite=Lax`` cookie (Starlette's ``SessionMiddleware``).

``/login`` sends the person to GitHub; GitHub sends them back to ``/login/callback`` with a code,
which authlib exchanges for a user-to-server token (checking the ``state`` it put in the session).
The token is used once, to ask GitHub which repositories they may read (``app.github.user_access``),
and then dropped: the session holds their login and those repositories' ids until it expires
(``PTM_TRIAGE_SESSION_HOURS``), when signing in again asks GitHub afresh.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from gidgethub import HTTPException as GitHubError
from sqlalchemy import delete

from app.config import Settings
from app.github.user_access import user_access
from app.store.models import WebSession, utcnow
from app.web.access import SESSION_ID, digest, new_secret
from app.web.deps import ServicesDep, SessionDep

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
NEXT = "next"  # where to go after signing in, kept in the session meanwhile


def github_oauth(settings: Settings) -> StarletteOAuth2App | None:
    """The OAuth client of the App (None when GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET are not set)."""
    if settings.github_client_id is None or settings.github_client_secret is None:
        return None
    oauth = OAuth()
    client: StarletteOAuth2App = oauth.register(
        "github", client_id=settings.github_client_id,
        client_secret=settings.github_client_secret.get_secret_value(),
        authorize_url=f"{settings.github_web_url}/login/oauth/authorize",
        access_token_url=f"{settings.github_web_url}/login/oauth/access_token",
        client_kwargs={"timeout": 30},
    )
    return client


def _client(request: Request) -> StarletteOAuth2App:
    client: StarletteOAuth2App | None = request.app.state.oauth
    if client is None:
        raise HTTPException(503, "sign-in with GitHub is not configured: set GITHUB_CLIENT_ID and "
                                 "GITHUB_CLIENT_SECRET (the GitHub App's client id and a client secret)")
    return client


def _local(path: str | None) -> str:
    """A path on this site to return to; anything else (another site, ``//host``) is the dashboard."""
    return path if path and path.startswith("/") and not path.startswith(("//", "/\\")) else "/dashboard"


@router.get("/login")
async def login(request: Request, next: str | None = None) -> RedirectResponse:
    client = _client(request)
    request.session[NEXT] = _local(next)
    response: RedirectResponse = await client.authorize_redirect(request, str(request.url_for("signin_callback")))
    return response


@router.get("/login/callback", name="signin_callback")
async def callback(request: Request, services: ServicesDep, session: SessionDep) -> RedirectResponse:
    client = _client(request)
    try:
        token = await client.authorize_access_token(request)
    except OAuthError as exc:  # a refused authorisation, a code used twice, a state that does not match
        raise HTTPException(400, f"GitHub did not sign you in: {exc.description or exc.error}") from None
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            access = await user_access(http, services.settings.github_api_url, token["access_token"])
    except GitHubError as exc:
        raise HTTPException(502, f"GitHub did not say which repositories you may read ({exc.status_code})") from None
    session_id = new_secret()
    session.execute(delete(WebSession).where(WebSession.expires_at <= utcnow()))
    session.add(WebSession(id=digest(session_id), login=access.login, repository_ids=sorted(access.repository_ids),
                           expires_at=utcnow() + timedelta(hours=services.settings.session_hours)))
    request.session[SESSION_ID] = session_id
    log.info("%s signed in; may read %d repositories of this app's installations", access.login,
             len(access.repository_ids))
    return RedirectResponse(_local(request.session.pop(NEXT, None)), status_code=303)


@router.api_route("/logout", methods=["GET", "POST"])
def logout(request: Request, session: SessionDep) -> RedirectResponse:
    session_id = request.session.pop(SESSION_ID, None)
    if isinstance(session_id, str):
        session.execute(delete(WebSession).where(WebSession.id == digest(session_id)))
    return RedirectResponse("/dashboard", status_code=303)
