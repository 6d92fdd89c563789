"""``python -m bench.chat``: a full chat turn through the gateway vs. a bare Rasa REST turn.

At each level the paths run in the order bare, gateway, gateway, bare, and each path's row
pools its two runs, so that drift during the level weighs on both alike.

Gateway turn: POST a Telegram update to a gateway's webhook (with the secret header) and stop
the clock when the fake Bot API has received every reply of that turn (sendMessage through
python-telegram-bot). Bare turn: POST the same text to Rasa's REST channel of the replica the
gateway would choose, and read the answer. Both run against the same Rasa replicas, action
server, loan API and model, at each level of concurrent conversations (each conversation sends
its turns one after another), for each replica count of ``--replicas``.

The gateways run as production runs them: ``--gateways`` processes of ``kopa serve bot`` of
their own, conversations spread over them as a load balancer would, sharing the durable inbox
(and the Redis de-duplication when the stores are shared). The fake Bot API stays in this
process with the load client: it only records ``sendMessage``, and recording it here keeps the
clock (start: the POST; end: the last reply received) on one process. More than one replica or
gateway needs a shared SQL store on PostgreSQL and Redis, from ``KOPA_BENCH_DATABASE_URL`` and
``KOPA_BENCH_REDIS_URL``. ``--rasa-concurrency`` is each gateway's cap on the turns it has in
flight at one replica (``bot/rasa_pool.py``).

Results go to a rich table, a chart of the scaling (``bench/chat/scaling.png``) and the "Chat"
section of ``bench/README.md`` (the run it replaces moves under "Earlier runs"); the run exits 1
when the gateway's p95 exceeds 1.2 × the bare turn's or a turn fails at 200 conversations.

The issue's full run: ``python -m bench.chat --levels 64,200 --turns 5 --replicas 1,2,3
--gateways 2`` (two gateways, as ``tests/reliability`` and a production deployment run them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console
from rich.progress import Progress

from api.core.migrate import upgrade
from bench.chat.report import (
    CHART,
    MAX_P95_RATIO,
    MESSAGE,
    draw_chart,
    missed_targets,
    ratios,
    render_table,
    results_markdown,
    write_readme,
)
from bot.conversation import message_key, sender_id
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram, text_update
from bot.rasa_client import TURN_SECONDS
from bot.rasa_pool import CONCURRENCY, QUEUE_SECONDS, rank
from i18n import render
from kopa.stack import (
    RasaStores,
    Service,
    Stack,
    rasa_tracker_database_url,
    running_stack,
    start_gateway,
)

TOKEN = "5151:bench-token"  # noqa: S105 - only ever shown to the local fake
SECRET = "bench-secret"  # noqa: S105
# How long the gateway waits for Rasa before the borrower hears "try again shortly" (a failed
# turn); the bench's bound since its first run, kept so that runs stay comparable.
REPLY_DEADLINE_SECONDS = 30.0


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{mem_kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        ram = "RAM unknown"
    return f"{cpu}, {os.cpu_count()} cores, {ram}, Python {platform.python_version()}"


def _resolve(future: asyncio.Future[float], value: float) -> None:
    if not future.done():
        future.set_result(value)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def run_level(
    turn: Callable[[int, int], Awaitable[tuple[float, bool]]], conversations: int, turns_each: int
) -> tuple[list[tuple[float, bool]], float]:
    async def conversation(index: int) -> list[tuple[float, bool]]:
        return [await turn(index, n) for n in range(turns_each)]

    # Conversation-major order: result i is turn i % turns_each of conversation i // turns_each.

    start = time.perf_counter()
    results = await asyncio.gather(*(conversation(i) for i in range(conversations)))
    elapsed = time.perf_counter() - start
    return [t for r in results for t in r], elapsed


def cpu_seconds(services: list[Service]) -> dict[str, float]:
    """CPU time used so far by each part (its process and children; Rasa replicas summed, and
    gateways summed), and by this process (load client and fake Bot API)."""
    used: dict[str, float] = {}
    for service in services:
        part = service.name.split("-", 1)[0]  # rasa-1 -> rasa, gateway-0 -> gateway
        try:
            root = psutil.Process(service.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        total = 0.0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        used[part] = used.get(part, 0.0) + total
    own = psutil.Process().cpu_times()
    used["client+fake"] = own.user + own.system
    return used


def host_busy(before: Any, after: Any) -> tuple[float, float]:
    """CPU seconds the host's cores were busy between two ``psutil.cpu_times()``, and in all."""
    total = sum(after) - sum(before)
    idle = (after.idle - before.idle) + (
        getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0)
    )
    return total - idle, total


@contextlib.contextmanager
def running_gateways(
    count: int,
    rasa_concurrency: int,
    stack: Stack,
    database_url: str,
    redis_url: str | None,
    telegram_url: str,
) -> Iterator[list[Service]]:
    """``count`` processes of ``kopa serve bot`` in front of ``stack`` (its replicas and loan
    API), as ``kopa stack up --gateways`` starts them, stopped (with their process
    groups) on exit, also after an error."""
    assert stack.api_url is not None
    log_dir = stack.services[0].log_path.parent
    env = {
        "KOPA_ENV": "test",
        "KOPA_TELEGRAM__TOKEN": TOKEN,
        "KOPA_TELEGRAM__WEBHOOK_SECRET": SECRET,
        "KOPA_TELEGRAM__API_BASE_URL": f"{telegram_url}/bot",
        "KOPA_WHATSAPP__ENABLED": "false",
        "KOPA_RASA_URL": ",".join(stack.rasa_urls),
        "KOPA_RASA_CONCURRENCY": str(rasa_concurrency),
        "KOPA_API_URL": stack.api_url,
        # The durable inbox lives in the app database, shared by the gateways.
        "KOPA_DATABASE_URL": database_url,
        "KOPA_REPLY_DEADLINE_SECONDS": str(REPLY_DEADLINE_SECONDS),
    }
    if redis_url:
        env["KOPA_REDIS_URL"] = redis_url
    gateways: list[Service] = []
    try:
        for n in range(count):
            gateways.append(start_gateway(f"gateway-{n}", env, log_dir, timeout=120.0))
        yield gateways
    finally:
        for gateway in gateways:
            gateway.stop()


async def bench(
    fake: FakeTelegram,
    gateway_urls: list[str],
    stack: Stack,
    levels: list[int],
    turns_each: int,
    services: list[Service],
) -> list[dict[str, Any]]:
    rasa_urls = stack.rasa_urls
    rasa_url = rasa_urls[0]
    assert stack.api_url is not None
    registry = f"{stack.api_url}/v1/identities/telegram"
    service_auth = {
        "Authorization": f"Bearer {os.environ.get('KOPA_SERVICE_TOKEN', 'dev-service-token')}"
    }
    senders: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    waiting: dict[str, tuple[int, asyncio.Future[float]]] = {}
    counts: dict[str, int] = {}
    # The gateway answers "try again shortly" when Rasa is too slow: a failed turn, not a fast one.
    try_again = render("common.try_again_shortly", "en")
    failed: set[str] = set()

    def on_record(entry: dict[str, Any]) -> None:
        if entry["method"] != "sendMessage" or entry["recipient"] not in waiting:
            return
        arrived = time.perf_counter()
        chat = entry["recipient"]
        counts[chat] = counts.get(chat, 0) + 1
        expected, future = waiting[chat]
        if entry["payload"].get("text") == try_again:
            failed.add(chat)
            loop.call_soon_threadsafe(_resolve, future, arrived)
        elif counts[chat] >= expected:
            loop.call_soon_threadsafe(_resolve, future, arrived)

    fake.state.listeners.append(on_record)
    # A turn that has not ended by then is lost (longer than the gateway itself waits for it).
    give_up = REPLY_DEADLINE_SECONDS + QUEUE_SECONDS + 30.0
    rows: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=200)
    async with httpx.AsyncClient(timeout=TURN_SECONDS, limits=limits) as client:
        # How many messages Rasa answers MESSAGE with: a gateway turn ends at the last.
        probe = await client.post(
            f"{rasa_url}/webhooks/rest/webhook",
            json={"sender": "bench-probe", "message": MESSAGE},
        )
        expected = max(1, len(probe.json()))
        # Update ids are unique across runs: the gateways' Redis de-duplication remembers them.
        first_id = uuid.uuid4().int % 10**12 * 1000
        update_ids = iter(range(first_id, first_id + 10**9))

        async def gateway_turn(conversation: int, n: int) -> tuple[float, bool]:
            chat = str(10_000_000 + conversation * 1000 + run_id[0])
            future: asyncio.Future[float] = loop.create_future()
            counts[chat] = 0
            failed.discard(chat)
            waiting[chat] = (expected, future)
            update = {"update_id": next(update_ids), **text_update(int(chat), MESSAGE)}
            # A load balancer in front of the gateways: each conversation sticks to one.
            gateway = gateway_urls[conversation % len(gateway_urls)]
            start = time.perf_counter()
            response = await client.post(
                f"{gateway}/telegram/webhook",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            )
            response.raise_for_status()
            try:
                arrived = await asyncio.wait_for(future, give_up)
            except TimeoutError:
                failed.add(chat)
                arrived = time.perf_counter()
            del waiting[chat]
            return (arrived - start) * 1000, chat not in failed

        async def rasa_turn(conversation: int, n: int) -> tuple[float, bool]:
            # The same conversation work as a gateway turn: a chat registered with the loan API
            # (once, before the clock, as a gateway does once per chat) under its pseudonym, and
            # the gateway's metadata, so the actions look the chat up as they do for the gateway.
            chat = str(20_000_000 + conversation * 1000 + run_id[0])
            sender = senders.get(chat)
            if sender is None:
                answer = await client.put(
                    f"{registry}/{chat}/alias", json={"phone": None}, headers=service_auth
                )
                answer.raise_for_status()
                sender = senders[chat] = sender_id("telegram", answer.json()["pseudonym"])
            metadata = {
                "channel": "telegram",
                "locale": "en",
                "phone_proven": False,
                "message_id": message_key(sender, f"{chat}:{n}:{next(update_ids)}"),
            }
            # The replica the gateway would pick for this conversation.
            replica = rank(sender, rasa_urls)[0]
            start = time.perf_counter()
            response = await client.post(
                f"{replica}/webhooks/rest/webhook",
                json={"sender": sender, "message": MESSAGE, "metadata": metadata},
            )
            ok = response.status_code == 200 and bool(response.json())
            return (time.perf_counter() - start) * 1000, ok

        run_id = [0]
        # Warm-up: model caches, connection pools, PTB's bot in every gateway.
        await run_level(rasa_turn, 4, 2)
        run_id[0] = 1
        await run_level(gateway_turn, 4 * len(gateway_urls), 2)
        paths = {"Rasa REST (bare)": rasa_turn, "Gateway, full turn": gateway_turn}
        for level in levels:
            # Each path runs twice, in the order A B B A: drift during the level (the tracker
            # store growing, a neighbour on the host) then weighs on both paths alike.
            runs: dict[str, list[tuple[list[tuple[float, bool]], float, dict[str, float]]]] = {
                name: [] for name in paths
            }
            for name in [*paths, *reversed(paths)]:
                run_id[0] += 1
                before, host_before = cpu_seconds(services), psutil.cpu_times()
                results, elapsed = await run_level(paths[name], level, turns_each)
                after, host_after = cpu_seconds(services), psutil.cpu_times()
                used = {k: after[k] - before.get(k, 0.0) for k in after}
                used["host busy"], used["host total"] = host_busy(host_before, host_after)
                runs[name].append((results, elapsed, used))
            for name, blocks in runs.items():
                results = [turn for block, _, _ in blocks for turn in block]
                elapsed = sum(seconds for _, seconds, _ in blocks)
                ok_ms = [ms for ms, ok in results if ok]
                good = ok_ms or [float("nan")]
                rows.append(
                    {
                        "path": name,
                        "concurrency": level,
                        "turns": len(results),
                        "failed": sum(1 for _, ok in results if not ok),
                        "p50": statistics.median(good),
                        "p95": percentile(good, 0.95),
                        "throughput": len(ok_ms) / elapsed,
                        "replicas": len(rasa_urls),
                        "cpu": {
                            part: sum(used.get(part, 0.0) for _, _, used in blocks)
                            for part in blocks[0][2]
                        },
                        "host_busy": sum(used["host busy"] for _, _, used in blocks)
                        / sum(used["host total"] for _, _, used in blocks),
                        "samples": results,
                        "turns_each": turns_each,
                    }
                )
    return rows


@contextlib.contextmanager
def chat_database(shared: bool) -> Iterator[tuple[str, RasaStores]]:
    """A scratch app database (PostgreSQL with shared Rasa stores, else SQLite in memory)."""
    if not shared:
        with tempfile.TemporaryDirectory() as tmp:
            database = f"sqlite:///{tmp}/bench-chat.db"
            upgrade(database)
            yield database, RasaStores()
        return
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from api.core.db import build_engine

    base = os.environ.get("KOPA_BENCH_DATABASE_URL") or os.environ.get("KOPA_TEST_DATABASE_URL")
    redis = os.environ.get("KOPA_BENCH_REDIS_URL") or os.environ.get("KOPA_TEST_REDIS_URL")
    if not base or not redis:
        raise SystemExit(
            "several replicas need KOPA_BENCH_DATABASE_URL (PostgreSQL) and KOPA_BENCH_REDIS_URL"
        )
    name = f"bench_chat_{uuid.uuid4().hex[:8]}"
    admin = build_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(database)
        yield (
            database,
            RasaStores(
                tracker_database_url=rasa_tracker_database_url(database),
                lock_redis_url=redis,
                lock_key_prefix=f"bench{uuid.uuid4().hex[:8]}",
            ),
        )
    finally:
        with admin.connect() as conn:
            for db in (name, f"{name}_rasa"):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


INTRO = [
    "`python -m bench.chat` — a full chat turn through the gateway (Telegram update POSTed to",
    "`/telegram/webhook` → python-telegram-bot → ConversationService → the conversation's Rasa",
    "replica (+ action server + loan API) → rendering → `sendMessage` received by the fake Bot",
    "API) side by side with bare Rasa REST turns sent to the same replica, message",
    f"`{MESSAGE}`. Each conversation sends its turns one after another. At each level the two",
    "paths run twice, in the order bare, gateway, gateway, bare (since 2026-12-07 04:40 UTC;",
    "each row pools its path's two runs): run one after the other, the second path met a bigger",
    "tracker store and whatever else had changed on the host, and the ratio of one run swung",
    "from ×1.12 to ×1.56 between two runs of the same configuration. Since 2026-12-06 23:00",
    "UTC the bare turn does the same conversation work as the gateway's: its chat is registered",
    "with the loan API first (outside the clock) and it carries the gateway's metadata, so the",
    "actions look the chat up for both; before, the bare turn skipped that lookup and was",
    "cheaper than the turn it was compared with. With more than one",
    "replica or gateway the replicas share a SQL tracker store on PostgreSQL and the Redis lock",
    "store, and the gateways the durable inbox (PostgreSQL) and the Redis de-duplication.",
    "",
    "The gateways run as processes of their own (`kopa serve bot`, as `kopa stack up",
    "--gateways M` and production run them), the load client spreading the conversations over",
    "them as a load balancer would; the fake Bot API and the load client share the benchmark's",
    "process. Runs before 2026-12-06 ran the gateway inside the benchmark's process, where its",
    "turns waited for the Python lock held by the load client and the fake: those figures",
    "are not directly comparable with these. Each gateway has at most `--rasa-concurrency`",
    f"turns in flight at one replica (default {CONCURRENCY}, `bot/rasa_pool.py`) and queues",
    f"the rest; a turn Rasa has not answered in {REPLY_DEADLINE_SECONDS:.0f} s is a failed one.",
]


def write_samples(rows: list[dict[str, Any]], path: Path) -> None:
    """Every turn's latency (a run kept with ``--log-dir``): where the tail comes from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["replicas", "path", "conversations", "block", "conversation", "turn", "ms", "ok"]
        )
        for row in rows:
            per_block = row["concurrency"] * row["turns_each"]
            for i, (ms, ok) in enumerate(row["samples"]):
                block, within = divmod(i, per_block)
                conversation, turn = divmod(within, row["turns_each"])
                writer.writerow(
                    [
                        row["replicas"],
                        row["path"],
                        row["concurrency"],
                        block,
                        conversation,
                        turn,
                        f"{ms:.1f}",
                        int(ok),
                    ]
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=5, help="turns per conversation per level")
    parser.add_argument("--levels", default="1,32", help="concurrent conversations")
    parser.add_argument(
        "--replicas", default="1", help="Rasa replica counts to compare, e.g. 1,2,3"
    )
    parser.add_argument(
        "--gateways", type=int, default=1, help="gateway processes (more than 1: PostgreSQL)"
    )
    parser.add_argument(
        "--rasa-concurrency",
        type=int,
        default=CONCURRENCY,
        help="turns each gateway has in flight at one replica (KOPA_RASA_CONCURRENCY)",
    )
    parser.add_argument("--no-readme", action="store_true", help="do not update bench/README.md")
    parser.add_argument(
        "--log-dir", type=Path, help="keep each part's log here (else a scratch directory)"
    )
    args = parser.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    replica_counts = [int(v) for v in args.replicas.split(",")]
    console = Console()
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    # Production's stores whenever they are given, also for one replica and one gateway: the
    # rows of every configuration then differ only in what the run compares. (On SQLite, shared
    # by the loan API and a gateway process, some chat registry writes fail and turns with them.)
    given = all(os.environ.get(f"KOPA_BENCH_{v}_URL") for v in ("DATABASE", "REDIS"))
    shared = max(replica_counts) > 1 or args.gateways > 1 or given
    rows: list[dict[str, Any]] = []
    with Progress(console=console) as progress:
        task = progress.add_task("replica configurations", total=len(replica_counts))
        for count in replica_counts:
            with (
                chat_database(shared) as (database, stores),
                tempfile.TemporaryDirectory() as tmp,
                running_stack(
                    database,
                    log_dir=(args.log_dir or Path(tmp)) / f"replicas-{count}",
                    rasa_timeout=900,
                    rasa_replicas=count,
                    rasa_stores=stores,
                ) as stack,
            ):
                assert stack.api_url is not None
                fake = FakeTelegram()
                with (
                    ServerThread(fake.app) as fake_server,
                    running_gateways(
                        args.gateways,
                        args.rasa_concurrency,
                        stack,
                        database,
                        stores.lock_redis_url,
                        fake_server.url,
                    ) as gateways,
                ):
                    rows += asyncio.run(
                        bench(
                            fake,
                            [g.url for g in gateways],
                            stack,
                            levels,
                            args.turns,
                            [*stack.services, *gateways],
                        )
                    )
            progress.advance(task)
    console.print(render_table(rows))
    if args.log_dir:
        write_samples(rows, args.log_dir / "turns.csv")
    for (replicas, level), (p50, p95) in ratios(rows).items():
        console.print(f"{replicas} replica(s), {level} conv.: p50 ×{p50:.2f}, p95 ×{p95:.2f}")
    if len(replica_counts) > 1 and not args.no_readme:
        draw_chart(rows, CHART)
    elif len(replica_counts) > 1 and args.log_dir:
        draw_chart(rows, args.log_dir / CHART.name)  # the committed chart stays the README's
    if not args.no_readme:
        command = "python -m bench.chat " + " ".join(
            f"--{k} {v}"
            for k, v in (
                ("levels", args.levels),
                ("turns", args.turns),
                ("replicas", args.replicas),
                ("gateways", args.gateways),
                ("rasa-concurrency", args.rasa_concurrency),
            )
        )
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        results = results_markdown(rows, machine=machine(), when=when, load=load, command=command)
        write_readme(rows, INTRO, results)
        console.print("wrote the Chat section of bench/README.md")
    missed = missed_targets(rows)
    if missed:
        console.print(
            f"[red]targets missed (p95 ≤ ×{MAX_P95_RATIO}, no failed turn):[/red] "
            + "; ".join(missed)
        )
        raise SystemExit(1)


if __name__ == "__main__":
    main()
