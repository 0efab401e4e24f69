"""The ``ptm-triage`` command: each subcommand is a thin call into the package."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import ConfigError, load_settings
from app.triage.registry import BERT, KINDS

if TYPE_CHECKING:
    from app.store.db import Database
    from app.triage.classifier import Classifier

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _setup_logging(level: str = "INFO") -> None:
    from app import logs

    settings = load_settings()
    logs.setup(level, settings.log_format, settings.secret_values)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.web.main import create_app

    settings = load_settings()
    _setup_logging(settings.log_level)
    # log_config=None: uvicorn's own lines go through the same handler (JSON or text, secrets left out).
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=settings.log_level.lower(),
                log_config=None)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import asyncio

    from app.queue.standalone import run_worker

    settings = load_settings()
    _setup_logging(settings.log_level)
    asyncio.run(run_worker(settings))
    return 0


def _classifier(kind: str | None, model_dir: Path | None) -> Classifier:
    from app.triage.loader import load_classifier

    settings = load_settings()
    return load_classifier(kind or settings.model_kind, model_dir or settings.model_dir, ptm_prior=settings.ptm_share,
                           device=settings.device, runtime=settings.runtime)


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    _setup_logging("WARNING")
    run_demo(args.host, args.port, once=args.once)
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from app.triage.jsonl import classify_file

    count = classify_file(_classifier(args.model, args.model_dir), args.input, args.output, args.batch_size)
    print(f"classified {count} issues -> {args.output}", file=sys.stderr)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from app.triage.registry import model_dir
    from app.triage.train import train

    _setup_logging()
    out = train(args.kind, args.data, args.dev, args.output or model_dir(args.kind))
    print(f"model written to {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from app.triage.data import load_many
    from app.triage.evaluate import evaluate, format_comparison, format_report

    issues = load_many(args.data)
    kinds = args.models or [None]
    if len(kinds) > 1 and args.model_dir:
        raise ValueError("--model-dir names one artifact; compare models from their default directories")
    results = [evaluate(_classifier(kind, args.model_dir), issues) for kind in kinds]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else {"models": results}, indent=2))
        return 0
    print("\n\n".join(format_report(r) for r in results))
    if len(results) > 1:
        print("\n" + format_comparison(results))
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    import asyncio

    from app.workflow.backfill import run_backfill_cli

    settings = load_settings()
    _setup_logging("WARNING")
    result = asyncio.run(run_backfill_cli(settings, args.repo, progress=True))
    print(f"{result['repo']}: {result['status']}, {result['imported']} issues imported, "
          f"{result['labelled']} labelled" + (f"; {result['error']}" if result.get("error") else ""))
    return 0 if result["status"] == "done" else 1


def cmd_study(args: argparse.Namespace) -> int:
    from app.study import run_study

    result = run_study(args.input, args.output, _classifier(args.model, args.model_dir), seed=args.seed)
    print(f"studied {result['issues']} issues ({result['classified']} classified) -> {args.output}/report.md")
    return 0


def cmd_export_feedback(args: argparse.Namespace) -> int:
    from app.services import default_policy
    from app.workflow.feedback_export import export_feedback

    settings = load_settings()
    db = _database()
    count = export_feedback(db, default_policy(settings), args.output, settings.github_api_url, args.repo)
    print(f"exported {count} corrected issues -> {args.output}")
    return 0


def _database() -> Database:
    from app.store.db import Database

    db = Database(load_settings().sqlalchemy_url)
    db.migrate()
    return db


def cmd_deliveries(args: argparse.Namespace) -> int:
    """List stored deliveries with their outcomes (newest first), or queue some again."""
    from app.store.queries import list_deliveries, retry_deliveries

    db = _database()
    with db.session() as session:
        if args.action == "retry":
            if not args.ids and not args.failed:
                raise ValueError("name the deliveries to retry, or --failed for every failed one")
            queued = retry_deliveries(session, args.ids or None)
            print(f"queued again: {len(queued)}" + "".join(f"\n  {delivery_id}" for delivery_id in queued))
            missing = sorted(set(args.ids) - set(queued))
            if missing:
                print(f"not finished or not stored: {', '.join(missing)}", file=sys.stderr)
            return 1 if missing else 0
        for d in list_deliveries(session, args.status, args.limit):
            when = d.received_at.strftime("%Y-%m-%d %H:%M:%S")
            kind = f"{d.event}.{d.action}" if d.action else d.event
            print(f"{d.id}  {when}  {kind:<28} {d.status:<10} attempts {d.attempts}"
                  + (f"  {d.error}" if d.error else "") + ("  (payload dropped)" if d.payload_pruned_at else ""))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Operators' API tokens for the read API (``Authorization: Bearer``): they read every repository."""
    from app.web.access import api_tokens, create_api_token, revoke_api_token

    db = _database()
    with db.session() as session:
        if args.action == "create":
            token = create_api_token(session, args.name)
            print(token)
            print(f"API token {args.name!r} created; it is shown this once (only its digest is stored). "
                  "Send it as `Authorization: Bearer <token>`.", file=sys.stderr)
            return 0
        if args.action == "revoke":
            if not revoke_api_token(session, args.name):
                print(f"no token named {args.name!r} is in use", file=sys.stderr)
                return 1
            print(f"revoked {args.name!r}")
            return 0
        for t in api_tokens(session):
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else (
                f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used")
            print(f"{t.name:<30} created {t.created_at:%Y-%m-%d}  {state}")
    return 0


def cmd_receive(args: argparse.Namespace) -> int:
    """Send a payload file to a running service, signed like GitHub signs it (like ``probot receive``)."""
    import httpx

    from app.github.signature import delivery_headers

    settings = load_settings()
    body = args.payload.read_bytes()
    headers = delivery_headers(settings.webhook_secret, args.event, body, args.delivery)
    response = httpx.post(args.url, content=body, headers=headers, timeout=30)
    print(f"{response.status_code} {response.text}")
    return 0 if response.is_success else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ptm-triage", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the webhook service (and its in-process worker)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=3000)
    s.set_defaults(func=cmd_serve)

    w = sub.add_parser("worker", help="process stored deliveries (and backfills) in this process: from the Redis "
                                      "queue with PTM_TRIAGE_QUEUE=redis, else from the database (start any number)")
    w.set_defaults(func=cmd_worker)

    d = sub.add_parser("demo", help="run the service on a database of its own with example issues sent through "
                                     "its webhook, and print the dashboard's address")
    d.add_argument("--host", default="127.0.0.1")
    d.add_argument("--port", type=int, default=3000, help="0: any free port")
    d.add_argument("--once", action="store_true", help="stop once the examples are processed")
    d.set_defaults(func=cmd_demo)

    def model_options(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--model", choices=KINDS, help="model kind (default: PTM_TRIAGE_MODEL, bert)")
        cmd.add_argument("--model-dir", type=Path, help="directory of the trained model artifact (default: models/<kind>)")

    c = sub.add_parser("classify", help="classify a JSONL file of issues")
    c.add_argument("--input", type=Path, required=True, help='lines of {"id","title","body"}')
    c.add_argument("--output", type=Path, required=True)
    c.add_argument("--batch-size", type=int, default=64)
    model_options(c)
    c.set_defaults(func=cmd_classify)

    t = sub.add_parser("train", help="train a model on annotated issues")
    t.add_argument("--kind", choices=KINDS, default=BERT)
    t.add_argument("--data", type=Path, nargs="+", default=[SHARED_DATA / "train.jsonl"])
    t.add_argument("--dev", type=Path, default=SHARED_DATA / "dev.jsonl")
    t.add_argument("--output", type=Path, help="artifact directory (default: models/<kind>)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="precision, recall and F1 per class on annotated issues")
    e.add_argument("--data", type=Path, nargs="+", required=True)
    e.add_argument("--json", action="store_true", help="print JSON instead of text")
    e.add_argument("--model", dest="models", action="append", choices=KINDS,
                   help="model kind; repeat to compare models on the same issues (default: PTM_TRIAGE_MODEL)")
    e.add_argument("--model-dir", type=Path, help="directory of the trained model artifact (default: models/<kind>)")
    e.set_defaults(func=cmd_evaluate)

    b = sub.add_parser("backfill", help="import a repository's existing issues now, with a progress bar")
    b.add_argument("repo", help="owner/name")
    b.set_defaults(func=cmd_backfill)

    st = sub.add_parser("study", help="the paper's resolution-time analysis on a file of issues, offline")
    st.add_argument("--input", type=Path, required=True,
                    help="JSONL: repo, number, title, body, created, closed, optional ptm/themes/subthemes/type")
    st.add_argument("--output", type=Path, required=True, help="directory for report.md, report.json, figures")
    st.add_argument("--seed", type=int, default=0, help="seed of the balanced sampling")
    model_options(st)
    st.set_defaults(func=cmd_study)

    f = sub.add_parser("export-feedback", help="write maintainers' label corrections as training data")
    f.add_argument("--output", type=Path, required=True, help="JSONL in the format of ../shared/data")
    f.add_argument("--repo", help="only this repository (owner/name)")
    f.set_defaults(func=cmd_export_feedback)

    tk = sub.add_parser("token", help="API tokens for the read API: create, list, revoke")
    tk_sub = tk.add_subparsers(dest="action", required=True)
    tc = tk_sub.add_parser("create", help="make a token and print it (once)")
    tc.add_argument("--name", required=True, help="what the token is for, e.g. grafana")
    tr = tk_sub.add_parser("revoke", help="stop a token from working")
    tr.add_argument("name")
    tk_sub.add_parser("list", help="the tokens, when made and last used")
    tk.set_defaults(func=cmd_token)

    dl = sub.add_parser("deliveries", help="list stored deliveries and their outcomes; `deliveries retry` queues "
                                           "some again")
    dl.add_argument("--status", choices=["pending", "processing", "done", "skipped", "failed"])
    dl.add_argument("--limit", type=int, default=100)
    dl.set_defaults(func=cmd_deliveries, action="list")
    dl_sub = dl.add_subparsers(dest="action")
    dr = dl_sub.add_parser("retry", help="queue finished deliveries again: by id, or --failed for every failed one")
    dr.add_argument("ids", nargs="*", help="delivery ids (X-GitHub-Delivery)")
    dr.add_argument("--failed", action="store_true", help="every delivery that ended failed")

    r = sub.add_parser("receive", help="send a signed webhook payload to a running service")
    r.add_argument("-e", "--event", required=True, help="X-GitHub-Event, e.g. issues")
    r.add_argument("-p", "--payload", type=Path, required=True, help="payload JSON file")
    r.add_argument("--url", default="http://127.0.0.1:3000/webhook")
    r.add_argument("--delivery", help="X-GitHub-Delivery (default: a new UUID)")
    r.set_defaults(func=cmd_receive)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        status: int = args.func(args)
        return status
    except ConfigError as exc:
        print(f"ptm-triage: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, LookupError) as exc:
        print(f"ptm-triage: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
