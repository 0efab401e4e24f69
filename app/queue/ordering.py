"""Which deliveries must take effect in the order they came: those about one issue.

The key is stored with the delivery when it arrives (``deliveries.ordering_key``); a worker
claims a delivery only when no earlier one with its key is unfinished (``queries.claim_delivery``).
"""

from __future__ import annotations

from typing import Any

MAX_LENGTH = 80


def ordering_key(event: str, data: dict[str, Any]) -> str | None:
    """``repository id#issue number`` for a delivery about one issue; None for any other, which waits for nothing."""
    if event not in ("issues", "issue_comment"):
        return None
    repo, issue = data.get("repository"), data.get("issue")
    if not isinstance(repo, dict) or not isinstance(issue, dict):
        return None
    return f"{repo.get('id')}#{issue.get('number')}"[:MAX_LENGTH]
