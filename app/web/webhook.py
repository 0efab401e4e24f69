"""POST /webhook: verify, store, acknowledge. Nothing slow happens here."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from app.github.signature import signature_ok
from app.queue.ordering import ordering_key
from app.store.queries import store_delivery

log = logging.getLogger(__name__)
router = APIRouter()


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"payload larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"payload larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_payload(content_type: str, body: bytes) -> tuple[dict[str, Any], str]:
    """The payload and its JSON text: GitHub sends JSON, or a form field ``payload`` holding JSON."""
    kind = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(400, f"payload is not valid UTF-8 (byte {exc.start})") from None
    if kind == "application/x-www-form-urlencoded":
        fields = parse_qs(text)
        if "payload" not in fields:
            raise HTTPException(400, "form body has no 'payload' field")
        text = fields["payload"][0]
    elif kind != "application/json":
        raise HTTPException(415, f"content type must be application/json, got {kind or 'none'!r}")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise HTTPException(400, f"payload is not valid JSON: {exc}") from None
    except RecursionError:
        raise HTTPException(400, "payload is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "payload must be a JSON object")
    return data, text


@router.post("/webhook", status_code=202)
async def receive(request: Request) -> JSONResponse:
    services = request.app.state.services
    settings = services.settings
    body = await read_body(request, settings.max_body_bytes)
    if not signature_ok(settings.webhook_secret, body, request.headers.get("x-hub-signature-256")):
        raise HTTPException(401, "missing or wrong X-Hub-Signature-256")
    event = request.headers.get("x-github-event")
    delivery_id = request.headers.get("x-github-delivery")
    if not event or not delivery_id:
        raise HTTPException(400, "missing X-GitHub-Event or X-GitHub-Delivery header")
    if len(delivery_id) > 64 or len(event) > 64:
        raise HTTPException(400, "X-GitHub-Delivery or X-GitHub-Event longer than 64 characters")
    data, text = decode_payload(request.headers.get("content-type", ""), body)
    is_ping = event == "ping"

    def store() -> str:
        with services.db.session() as session:
            return store_delivery(
                session, delivery_id=delivery_id, event=event, action=_action(data),
                installation_id=_installation_id(data), payload=text, status="done" if is_ping else "pending",
                ordering_key=ordering_key(event, data),
            )

    try:
        stored = await run_in_threadpool(store)
    except DBAPIError:  # the database is away (restarting, failing over): nothing was acknowledged
        log.warning("delivery %s (%s) not stored: the database is unavailable", delivery_id, event, exc_info=True)
        raise HTTPException(503, "the database is unavailable, so the delivery was not stored; redeliver it",
                            headers={"Retry-After": "30"}) from None
    if stored == "duplicate":
        log.info("delivery %s (%s) received again; already stored, nothing to do", delivery_id, event)
        return JSONResponse({"delivery": delivery_id, "status": "duplicate"}, status_code=200)
    if is_ping:
        return JSONResponse({"msg": "pong", "zen": data.get("zen")}, status_code=200)
    if stored == "again":
        log.info("delivery %s (%s) received again after it ended skipped or failed; queued again", delivery_id, event)
    await request.app.state.queue.submit(delivery_id)
    return JSONResponse({"delivery": delivery_id, "status": "queued"}, status_code=202)


def _action(data: dict[str, Any]) -> str | None:
    """The payload's action as the deliveries table lists it; what is not a short string is shown as none
    (the handlers read the payload itself, and say what is wrong with it)."""
    action = data.get("action")
    return action if isinstance(action, str) and len(action) <= 64 else None


def _installation_id(data: dict[str, Any]) -> int | None:
    """The installation the payload names, where it is an id GitHub could have made (a positive 64-bit integer)."""
    installation = data.get("installation")
    found = installation.get("id") if isinstance(installation, dict) else None
    return found if isinstance(found, int) and not isinstance(found, bool) and 0 < found < 2**63 else None
