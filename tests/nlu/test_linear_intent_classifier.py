"""The intent classifier (nlu/components/linear_intent_classifier.py): trained through Rasa's own
model storage and loaded back, it reads messages typed without accents or in capitals like the
accented training text, ranks every intent, and gives the same model from the same data.
Runs in Rasa's environment."""

from __future__ import annotations

from tests.nlu.rasa_probe import run_in_rasa

PROBE = """
import json, sys, tempfile
from pathlib import Path
from components.linear_intent_classifier import LinearIntentClassifier
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

EXAMPLES = {
    "ask_balance": [
        "cuánto debo", "¿cuál es mi saldo?", "quiero saber mi deuda", "mi saldo por favor"
    ],
    "how_to_pay": ["¿cómo pago?", "dónde puedo pagar", "cómo hago el depósito", "medios de pago"],
    "greet": ["hola", "buenos días", "buenas tardes", "qué tal"],
}

def trained_then_loaded(directory):
    storage = LocalModelStorage(Path(directory))
    context = ExecutionContext(GraphSchema({}), "probe")
    config = LinearIntentClassifier.get_default_config()
    resource = Resource("linear")
    data = TrainingData([
        Message(data={"text": text, "intent": intent})
        for intent, texts in EXAMPLES.items() for text in texts
    ])
    LinearIntentClassifier.create(config, storage, resource, context).train(data)
    return LinearIntentClassifier.load(config, storage, resource, context)

def rankings(classifier, texts):
    messages = [Message(data={"text": text}) for text in texts]
    classifier.process(messages)
    return {m.get("text"): m.get("intent_ranking") for m in messages}

texts = json.loads(sys.argv[1])
with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
    first = rankings(trained_then_loaded(one), texts)
    second = rankings(trained_then_loaded(two), texts)
print(json.dumps({"first": first, "second": second}))
"""

MESSAGES = ["CUANTO DEBO", "como pago", "holaa buenos dias", "donde pago mi deuda"]


def test_the_model_reads_unaccented_text_ranks_every_intent_and_is_reproducible() -> None:
    seen = run_in_rasa(PROBE, MESSAGES, timeout=180)
    first = seen["first"]

    def top(text: str) -> str:
        return str(first[text][0]["name"])

    assert top("CUANTO DEBO") == "ask_balance"
    assert top("como pago") == "how_to_pay"
    assert top("holaa buenos dias") == "greet"
    # The ranking names every intent once, likeliest first, as the dialogue's "Did you mean" and
    # hardship checks read it.
    for ranking in first.values():
        assert sorted(r["name"] for r in ranking) == ["ask_balance", "greet", "how_to_pay"]
        confidences = [r["confidence"] for r in ranking]
        assert confidences == sorted(confidences, reverse=True)
        assert abs(sum(confidences) - 1.0) < 1e-6
    # Trained twice on the same data: the same model (DIET was not).
    assert seen["second"] == first


CROSS_LINGUAL_PROBE = """
import json, sys
from components.linear_intent_classifier import IntentModel, LinearIntentClassifier

EXAMPLES = {
    "ask_balance": [
        "how much do I owe", "what is my balance", "my outstanding amount please",
        "tell me my debt", "balance check",
    ],
    "how_to_pay": [
        "how do I pay", "where can I make a payment", "payment methods",
        "how to send the money", "which number do I pay to",
    ],
    "greet": ["hello", "good morning", "hi there", "hey", "good evening"],
}
texts = [t for examples in EXAMPLES.values() for t in examples]
intents = [intent for intent, examples in EXAMPLES.items() for _ in examples]
messages = json.loads(sys.argv[1])
seen = {}
for weight in (0.0, 2.0):
    config = {
        **LinearIntentClassifier.get_default_config(), "embedding_weight": weight, "min_char_df": 1
    }
    model = IntentModel(config).fit(texts, intents)
    seen[str(weight)] = dict(zip(messages, model.predict(messages).tolist()))
print(json.dumps(seen))
"""


def test_sentence_embeddings_carry_meaning_no_training_example_spelled() -> None:
    """Trained on English alone, the classifier reads a Swahili balance question and greetings
    in Swahili and French by meaning; on n-grams alone it could only guess from letters."""
    expected = {
        "nadaiwa kiasi gani": "ask_balance",
        "habari za asubuhi": "greet",
        "bonjour": "greet",
    }
    seen = run_in_rasa(CROSS_LINGUAL_PROBE, list(expected), timeout=180)
    assert seen["2.0"] == expected
    assert seen["0.0"] != expected


NEIGHBOUR_PROBE = """
import json, sys
import numpy as np
from components.neighbour_vote import NeighbourVote

def unit(*values):
    v = np.array(values, dtype=float)
    return v / np.linalg.norm(v)

# Four examples of "ask_balance" around one direction, one "how_to_pay" example in another.
examples = np.stack([unit(1, 0.1, 0), unit(1, -0.1, 0), unit(1, 0, 0.1), unit(1, 0, -0.1),
                     unit(0, 1, 0)])
labels = np.array(["ask_balance"] * 4 + ["how_to_pay"])
classes = np.array(["ask_balance", "greet", "how_to_pay"])
vote = NeighbourVote(examples, labels, classes, k=3, temperature=0.02)
messages = np.stack([unit(0.2, 1, 0), unit(1, 0.05, 0.05), unit(1, 1, 0)])
print(json.dumps(vote(messages).round(4).tolist()))
"""


def test_the_nearest_examples_vote_for_their_intent() -> None:
    """A message right next to the lone `how_to_pay` example gets its vote even though
    `ask_balance` has four examples; one among the `ask_balance` examples gets theirs; one
    halfway between leans to the nearest of all. An intent with no near example gets nothing."""
    near_lone, among_many, halfway = run_in_rasa(NEIGHBOUR_PROBE, None, timeout=60)
    balance, greet, pay = 0, 1, 2
    assert near_lone[pay] > 0.99
    assert among_many[balance] > 0.99
    assert 0.5 < halfway[balance] < 1.0 and halfway[pay] > 0
    for row in (near_lone, among_many, halfway):
        assert row[greet] == 0.0
        assert abs(sum(row) - 1.0) < 1e-3


SCORING_PROBE = """
import json, sys
import numpy as np
from components.linear_intent_classifier import IntentModel, LinearIntentClassifier
from components.sentence_embeddings import embed

EXAMPLES = {
    "ask_balance": ["how much do I owe", "what is my balance", "nadaiwa kiasi gani"],
    "how_to_pay": ["how do I pay", "where can I make a payment", "nalipa vipi"],
    "greet": ["hello", "good morning", "habari"],
}
texts = [t for examples in EXAMPLES.values() for t in examples]
intents = [intent for intent, examples in EXAMPLES.items() for _ in examples]
config = {**LinearIntentClassifier.get_default_config(), "min_char_df": 1}
model = IntentModel(config).fit(texts, intents)
messages = json.loads(sys.argv[1])
parsed = model.predict_proba(messages)
embeddings = embed(messages)
# What scikit-learn itself gives for the same features, blended with the same vote.
features = model._with_embeddings(model._ngrams(messages), embeddings)
reference = (1 - model.neighbour_weight) * model.classifier.predict_proba(features)
reference += model.neighbour_weight * model.neighbours(embeddings)
print(json.dumps(float(np.abs(parsed - reference).max())))
"""


def test_scoring_beside_the_embedding_gives_the_logistic_regressions_own_probabilities() -> None:
    """At parse time the n-grams' share of the scores is computed while the embedding runs on
    its own thread (``embed_in_background``), outside scikit-learn's ``predict_proba``: the
    probabilities must still be exactly the model's."""
    messages = ["HOW MUCH DO I OWE", "nalipa wapi", "habari za asubuhi", "je veux payer"]
    assert run_in_rasa(SCORING_PROBE, messages, timeout=180) < 1e-12
