"""Parse every held-out example with one trained model and write the predictions as JSON.

Runs under the Rasa environment (``.venv-rasa/bin/python bench/nlu/predict.py ...``), because Rasa
cannot be imported next to the rest of Kopa; ``python -m bench.nlu`` calls it once per pipeline so
both pipelines are parsed by the same code and scored by the same metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.disable(logging.WARNING)


def _gold_examples(held_out: Path, synonyms: dict[str, str]) -> list[dict[str, Any]]:
    from rasa.shared.nlu.training_data.loading import load_data

    examples = []
    for path in sorted(held_out.glob("*.yml")):
        for message in load_data(str(path)).training_examples:
            languages = [
                synonyms.get(str(e["value"]).lower(), str(e["value"]))
                for e in message.get("entities") or []
                if e["entity"] == "language"
            ]
            examples.append(
                {
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
    rows = []
    for example in examples:
        parsed = await agent.parse_message(example["text"])
        languages = [e["value"] for e in parsed.get("entities", []) if e["entity"] == "language"]
        rows.append(
            {
                **example,
                "predicted": parsed["intent"]["name"],
                "confidence": round(float(parsed["intent"]["confidence"]), 4),
                "predicted_language_entity": languages[0] if languages else None,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--held-out", type=Path, required=True, help="directory of <lang>.yml")
    parser.add_argument("--synonyms", type=Path, required=True, help="Rasa NLU file of synonyms")
    # A file, not stdout: Rasa's structlog debug lines go to stdout.
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from rasa.shared.nlu.training_data.loading import load_data

    synonyms = {k.lower(): v for k, v in load_data(str(args.synonyms)).entity_synonyms.items()}
    examples = _gold_examples(args.held_out, synonyms)
    started = time.perf_counter()
    rows = asyncio.run(_predict(args.model, examples))
    elapsed = time.perf_counter() - started
    result = {"predictions": rows, "parse_seconds": round(elapsed, 2)}
    args.out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
