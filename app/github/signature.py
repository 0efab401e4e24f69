"""GitHub's webhook signature: ``X-Hub-Signature-256``, an HMAC-SHA256 of the body with the secret."""

from __future__ import annotations

import hashlib
import hmac
import uuid


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.encode("utf-8", "replace"))


def delivery_headers(secret: str, event: str, body: bytes, delivery: str | None = None) -> dict[str, str]:
    """The headers GitHub sends with a delivery of ``body`` (``ptm-triage receive`` and ``demo`` send these)."""
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret, body),
        "User-Agent": "GitHub-Hookshot/ptm-triage",
    }
