"""Parse every example of the test splits with one trained model and write the predictions as JSON.

Runs under the Rasa environment (``.venv-rasa/bin/python bench/nlu/predict.py ...``), because Rasa
cannot be imported next to the rest of Kopa; ``python -m bench.nlu`` calls it once per pipeline so
every pipeline is parsed by the same code and scored by the same metrics. Each parse is timed
(wall clock and this thread's CPU time); progress goes to stderr as ``PROGRESS <done> <total>``
lines, which ``bench.nlu`` turns into a progress bar.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.disable(logging.WARNING)
# Enough of the ranking for the dialogue's "Did you mean" (three suggestible intents, which
# greetings and the like may push down): bench.nlu.scoring.bare_fallback.
RANKING_KEPT = 8


def _gold_examples(split: str, path: Path, synonyms: dict[str, str]) -> list[dict[str, Any]]:
    from rasa.shared.nlu.training_data.loading import load_data

    examples = []
    for message in load_data(str(path)).training_examples:
        languages = [
            synonyms.get(str(e["value"]).lower(), str(e["value"]))
            for e in message.get("entities") or []
            if e["entity"] == "language"
        ]
        examples.append(
            {
                "split": split,
                "lang": path.stem,
                "text": message.get("text"),
                "intent": message.get("intent"),
                "language_entity": languages[0] if languages else None,
            }
        )
    return examples


async def _predict(model: Path, examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    # The first parse builds TensorFlow's graph: keep it out of the latency figures.
    await agent.parse_message("hello")
    rows = []
    step = max(1, len(examples) // 100)
    for done, example in enumerate(examples, start=1):
        # The process's CPU, not this thread's: the sentence embedding runs on a thread of
        # its own (until 2026-12-08 this was thread_time, which would now miss most of it).
        wall, cpu = time.perf_counter(), time.process_time()
        parsed = await agent.parse_message(example["text"])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        languages = [e["value"] for e in parsed.get("entities", []) if e["entity"] == "language"]
        ranking = parsed.get("intent_ranking") or []
        rows.append(
            {
                **example,
                "predicted": parsed["intent"]["name"],
                "confidence": round(float(parsed["intent"]["confidence"]), 4),
                "runner_up": ranking[1]["name"] if len(ranking) > 1 else None,
                # The classifier's own top intents (without the fallback), so that thresholds
                # can be studied on the old split without training again.
                "ranking": [
                    [r["name"], round(float(r["confidence"]), 4)]
                    for r in ranking
                    if r["name"] != "nlu_fallback"
                ][:RANKING_KEPT],
                "predicted_language_entity": languages[0] if languages else None,
                "parse_ms": round(1000 * wall, 2),
                "parse_cpu_ms": round(1000 * cpu, 2),
            }
        )
        if done % step == 0 or done == len(examples):
            print(f"PROGRESS {done} {len(examples)}", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument(
        "--split",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a directory of <lang>.yml files to parse, under a name (repeatable)",
    )
    parser.add_argument("--synonyms", type=Path, required=True, help="Rasa NLU file of synonyms")
    # A file, not stdout: Rasa's structlog debug lines go to stdout.
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from rasa.shared.nlu.training_data.loading import load_data

    synonyms = {k.lower(): v for k, v in load_data(str(args.synonyms)).entity_synonyms.items()}
    examples = []
    for spec in args.split:
        name, directory = spec.split("=", 1)
        for path in sorted(Path(directory).glob("*.yml")):
            examples += _gold_examples(name, path, synonyms)
    started = time.perf_counter()
    rows = asyncio.run(_predict(args.model, examples))
    elapsed = time.perf_counter() - started
    result = {"predictions": rows, "parse_seconds": round(elapsed, 2)}
    args.out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
