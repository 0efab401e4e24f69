"""Classify new and edited issues and label them, humans first."""

from __future__ import annotations

import asyncio
import logging

from gidgethub import routing, sansio

from app.events.tracking import track_issue
from app.github.labeling import add_labels, ensure_labels, remove_label
from app.services import Services
from app.store.models import Issue, LabelChange
from app.store.queries import add_prediction
from app.triage.classifier import IssueText

log = logging.getLogger(__name__)
router = routing.Router()


@router.register("issues", action="opened")
async def issue_opened(event: sansio.Event, services: Services) -> None:
    await triage(event, services)


@router.register("issues", action="edited")
async def issue_edited(event: sansio.Event, services: Services) -> None:
    await triage(event, services)


async def triage(event: sansio.Event, services: Services) -> None:
    policy = services.policy
    with services.db.session() as session:
        repo, issue, _ = track_issue(session, event)
        where = f"{repo.full_name}#{issue.number}"
        current = list(issue.labels)
        ours_now = [name for name in current if policy.is_app_label(name)]
        if issue.labels_locked_by_human:
            log.info("%s: a person changed the app's labels; not relabelling", where)
            return
        if event.data.get("action") == "opened" and ours_now:
            issue.labels_locked_by_human = True
            log.info("%s: opened with the app's labels %s already set; left as it is", where, ours_now)
            return
        issue_id, number, full_name = issue.id, issue.number, repo.full_name
        text = IssueText(title=issue.title, body=event.data["issue"].get("body") or "")

    prediction = (await asyncio.to_thread(services.classifier.predict, [text]))[0]
    wanted = policy.labels_for(prediction)
    have = {name.lower() for name in current}
    to_add = [name for name in wanted if name.lower() not in have]
    to_remove = [name for name in ours_now if name.lower() not in {w.lower() for w in wanted}]

    gh = await services.installation_client(event.data["installation"]["id"]) if not services.dry_run else None
    if gh is not None:
        specs = [spec for spec in policy.all_labels() if spec.name in to_add]
        await ensure_labels(gh, full_name, specs, services.known_labels.setdefault(full_name, set()))
        await add_labels(gh, full_name, number, to_add)
        for name in to_remove:
            await remove_label(gh, full_name, number, name)

    with services.db.session() as session:
        issue = session.get(Issue, issue_id)
        add_prediction(
            session, issue, model_version=prediction.model, ptm=prediction.ptm,
            ptm_score=prediction.ptm_score, themes=list(prediction.themes),
            theme_scores=prediction.theme_scores, subthemes=list(prediction.subthemes),
            subtheme_scores=prediction.subtheme_scores, labels=wanted,
            abstained=policy.decode(wanted)[0] is None, delivery_id=event.delivery_id,
        )
        if gh is not None:
            after = [n for n in current if n not in to_remove] + to_add
            for action, names in (("added", to_add), ("removed", to_remove)):
                for name in names:
                    session.add(LabelChange(
                        issue_id=issue_id, label=name, action=action, actor=services.bot_login,
                        by_app=True, labels_before=current, labels_after=after,
                        delivery_id=event.delivery_id,
                    ))
            issue.labels = after
    log.info(
        "%s: ptm=%.3f labels %s%s", where, prediction.ptm_score, wanted,
        " (dry-run: nothing written)" if gh is None else "",
    )
