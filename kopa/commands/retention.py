"""``kopa retention run``: remove what borrowers wrote once it is older than the policy.

Settings (environment, ``KOPA_RETENTION__*``): ``DAYS`` for the app database (case free text,
notes, the gateway's inbox), ``LOGIN_ATTEMPT_DAYS`` for the console's sign-in attempts (its
expired sessions always go), ``TRACKER_DAYS`` for Rasa's conversations, and where Rasa keeps
them: ``TRACKER_STORE_URL`` (its SQL store), ``TRACKER_REDIS_URL`` and ``LOCK_REDIS_URL`` (its
Redis tracker and lock stores). Run it daily (cron, a systemd timer, a Kubernetes CronJob).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import typer

app = typer.Typer(help="Data retention.", no_args_is_help=True)


@app.command("run")
def run(
    at: str | None = typer.Option(None, help="act as if it were this moment (ISO, with offset)"),
) -> None:
    """Anonymise or delete conversations, inbox rows and free text past the policy age."""
    import redis

    from api.core.config import get_settings
    from api.core.db import build_engine, session_scope
    from api.ledger.retention import purge_app_data
    from kopa import retention

    now = datetime.fromisoformat(at) if at else datetime.now(UTC)
    if now.tzinfo is None:
        raise typer.BadParameter("give a UTC offset, e.g. 2026-12-01T09:00:00+03:00")
    settings = get_settings()
    policy = settings.retention
    with session_scope() as session:
        app_data = purge_app_data(session=session, now=now, policy=policy, console=settings.console)
    report: dict[str, object] = {"app_database": asdict(app_data)}

    cutoff = (now - timedelta(days=policy.tracker_days)).timestamp()
    locks: retention.Locks = retention.NoLocks()
    if policy.lock_redis_url:
        locks = retention.ConversationLocks(
            redis.Redis.from_url(policy.lock_redis_url),
            key_prefix=policy.lock_key_prefix,
            wait_seconds=policy.lock_wait_seconds,
        )
    if policy.tracker_redis_url:
        purged = retention.purge_redis_trackers(
            redis.Redis.from_url(policy.tracker_redis_url),
            key_prefix=policy.tracker_key_prefix,
            cutoff=cutoff,
            locks=locks,
        )
        report["redis_tracker_store"] = asdict(purged)
    if policy.tracker_store_url:
        engine = build_engine(policy.tracker_store_url)
        try:
            purged = retention.purge_sql_trackers(engine, cutoff=cutoff, locks=locks)
        finally:
            engine.dispose()
        report["sql_tracker_store"] = asdict(purged)
    typer.echo(json.dumps(report, sort_keys=True))
