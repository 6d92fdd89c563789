"""Train the language gate, load it back, and print what it decides for each message, as JSON.

Runs under ``.venv-rasa`` with ``nlu/`` on ``PYTHONPATH``:
``gate_check.py <storage dir> <training dir> <file>...``. The gate is trained and loaded through
Rasa's own model storage, as ``rasa train`` and ``rasa run`` do.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from components.language_gate import LanguageGate
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


def main() -> None:
    storage_dir, training_dir, *files = sys.argv[1:]
    storage = LocalModelStorage(Path(storage_dir))
    context = ExecutionContext(GraphSchema({}), "gate-check")
    resource = Resource("language_gate")
    config = LanguageGate.get_default_config()
    training = TrainingData().merge(
        *(load_data(str(path)) for path in sorted(Path(training_dir).glob("*.yml")))
    )
    LanguageGate.create(config, storage, resource, context).train(training)
    gate = LanguageGate.load(config, storage, resource, context)
    out = []
    for path in files:
        for example in load_data(path).training_examples:
            before = {"name": "ask_balance", "confidence": 0.9}
            message = Message({TEXT: example.get(TEXT), INTENT: before})
            message.set(INTENT_RANKING_KEY, [before])
            gate.process([message])
            out.append(
                {
                    "file": Path(path).name,
                    "text": example.get(TEXT),
                    "intent": message.get(INTENT)["name"],
                    "ranking": [r["name"] for r in message.get(INTENT_RANKING_KEY)],
                    "written_in": message.get("written_in"),
                }
            )
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
