"""``python -m bench.chat``: a full chat turn through the gateway vs. a bare Rasa REST turn.

Gateway turn: POST a Telegram update to the gateway's webhook (with the secret header) and stop
the clock when the fake Bot API has received every reply of that turn (sendMessage through
python-telegram-bot). Bare turn: POST the same text to Rasa's REST channel and read the answer.
Both run in one process against the same Rasa server, action server, loan API and model, at 1 and
32 concurrent conversations (each conversation sends its turns one after another). Results go to
a rich table and to the "Chat" section of ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from api.core.migrate import upgrade
from bot.app import create_app
from bot.config import BotSettings, TelegramSettings, WhatsAppSettings
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram, text_update
from kopa.i18n import render
from kopa.stack import running_stack

README = Path(__file__).resolve().parents[1] / "README.md"
TOKEN = "5151:bench-token"  # noqa: S105 - only ever shown to the local fake
SECRET = "bench-secret"  # noqa: S105
MESSAGE = "hello"


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

    start = time.perf_counter()
    results = await asyncio.gather(*(conversation(i) for i in range(conversations)))
    elapsed = time.perf_counter() - start
    return [t for r in results for t in r], elapsed


async def bench(
    rasa_url: str, api_url: str, levels: list[int], turns_each: int
) -> list[dict[str, Any]]:
    fake = FakeTelegram()
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
    settings = BotSettings(
        env="test",
        telegram=TelegramSettings(
            token=SecretStr(TOKEN), webhook_secret=SecretStr(SECRET), api_base_url="x"
        ),
        whatsapp=WhatsAppSettings(enabled=False),
        rasa_url=rasa_url,
        api_url=api_url,
        reply_deadline_seconds=30.0,
    )
    rows: list[dict[str, Any]] = []
    with ServerThread(fake.app) as fake_server:
        settings.telegram.api_base_url = f"{fake_server.url}/bot"
        with ServerThread(create_app(settings)) as gateway:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
            async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                # How many messages Rasa answers MESSAGE with: a gateway turn ends at the last.
                probe = await client.post(
                    f"{rasa_url}/webhooks/rest/webhook",
                    json={"sender": "bench-probe", "message": MESSAGE},
                )
                expected = max(1, len(probe.json()))
                update_ids = iter(range(1, 10**9))

                async def gateway_turn(conversation: int, n: int) -> tuple[float, bool]:
                    chat = str(10_000_000 + conversation * 1000 + run_id[0])
                    future: asyncio.Future[float] = loop.create_future()
                    counts[chat] = 0
                    failed.discard(chat)
                    waiting[chat] = (expected, future)
                    update = {"update_id": next(update_ids), **text_update(int(chat), MESSAGE)}
                    start = time.perf_counter()
                    response = await client.post(
                        f"{gateway.url}/telegram/webhook",
                        json=update,
                        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                    )
                    response.raise_for_status()
                    arrived = await asyncio.wait_for(future, 60)
                    del waiting[chat]
                    return (arrived - start) * 1000, chat not in failed

                async def rasa_turn(conversation: int, n: int) -> tuple[float, bool]:
                    start = time.perf_counter()
                    response = await client.post(
                        f"{rasa_url}/webhooks/rest/webhook",
                        json={"sender": f"bench-{run_id[0]}-{conversation}", "message": MESSAGE},
                    )
                    ok = response.status_code == 200 and bool(response.json())
                    return (time.perf_counter() - start) * 1000, ok

                run_id = [0]
                # Warm-up: model caches, connection pools, PTB's bot.
                await run_level(rasa_turn, 4, 2)
                run_id[0] = 1
                await run_level(gateway_turn, 4, 2)
                for level in levels:
                    for name, turn in (
                        ("Rasa REST (bare)", rasa_turn),
                        ("Gateway, full turn", gateway_turn),
                    ):
                        run_id[0] += 1
                        results, elapsed = await run_level(turn, level, turns_each)
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
                            }
                        )
    return rows


def render_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"Chat turn latency ('{MESSAGE}', replies: all of the turn)")
    columns = ("Path", "Concurrent conversations", "Turns", "Failed", "p50 ms", "p95 ms", "ok/s")
    for column in columns:
        table.add_column(column, justify="right" if column != "Path" else "left")
    for row in rows:
        table.add_row(
            row["path"],
            str(row["concurrency"]),
            str(row["turns"]),
            str(row["failed"]),
            f"{row['p50']:.0f}",
            f"{row['p95']:.0f}",
            f"{row['throughput']:.1f}",
        )
    return table


def ratios(rows: list[dict[str, Any]]) -> dict[int, tuple[float, float]]:
    out = {}
    for level in sorted({r["concurrency"] for r in rows}):
        bare = next(r for r in rows if r["concurrency"] == level and r["path"].startswith("Rasa"))
        full = next(r for r in rows if r["concurrency"] == level and r["path"].startswith("Gate"))
        out[level] = (full["p50"] / bare["p50"], full["p95"] / bare["p95"])
    return out


def write_readme(rows: list[dict[str, Any]], when: str, load: str) -> None:
    lines = [
        "## Chat",
        "",
        "`python -m bench.chat` — a full chat turn through the gateway (Telegram update POSTed to",
        "`/telegram/webhook` → python-telegram-bot → ConversationService → Rasa REST (+ action",
        "server + loan API) → rendering → `sendMessage` received by the fake Bot API) side by side",
        f"with bare Rasa REST turns on the same model and servers, message `{MESSAGE}`. Each",
        "conversation sends its turns one after another; gateway, fake server and load client",
        "share one Python process.",
        "",
        f"Machine: {machine()}. Run: {when}; load average before the run {load}.",
        'A failed turn is one where the borrower got "try again shortly" (Rasa slower than',
        "the gateway's 8 s Rasa timeout) or Rasa answered nothing; latencies are of ok turns.",
        "",
        "| Path | Concurrent conversations | Turns | Failed | p50 ms | p95 ms | ok turns/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['path']} | {row['concurrency']} | {row['turns']} | {row['failed']} | "
            f"{row['p50']:.0f} | "
            f"{row['p95']:.0f} | {row['throughput']:.1f} |"
        )
    lines.append("")
    for level, (p50, p95) in ratios(rows).items():
        lines.append(
            f"- Overhead ratio at {level} conversation(s): p50 ×{p50:.2f}, p95 ×{p95:.2f} "
            "(gateway turn / bare Rasa turn)."
        )
    lines.append("")
    section = "\n".join(lines)
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Chat\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    README.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=5, help="turns per conversation per level")
    parser.add_argument("--levels", default="1,32", help="concurrent conversations")
    parser.add_argument("--no-readme", action="store_true", help="do not update bench/README.md")
    args = parser.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    console = Console()
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        database = f"sqlite:///{tmp}/bench-chat.db"
        upgrade(database)
        with running_stack(database, log_dir=Path(tmp) / "logs", rasa_timeout=600) as stack:
            assert stack.rasa_url is not None and stack.api_url is not None
            rows = asyncio.run(bench(stack.rasa_url, stack.api_url, levels, args.turns))
    console.print(render_table(rows))
    for level, (p50, p95) in ratios(rows).items():
        console.print(f"overhead at {level}: p50 ×{p50:.2f}, p95 ×{p95:.2f}")
    if not args.no_readme:
        write_readme(rows, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load)
        console.print(f"wrote the Chat section of {README}")


if __name__ == "__main__":
    main()
