"""Words of a request as a fixed-length vector: what the learned layers read besides embeddings.

Averaged word embeddings blur the one word that decides a request ("tickets", "ERD", "page");
hashed unigrams and bigrams keep it. Words are lower-cased and lightly stemmed ("tickets" and
"ticket" are one feature) and hashed with CRC32, which is stable across processes and Python
versions (the built-in `hash` is salted per process).
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import numpy.typing as npt

BUCKETS = 4096  # collisions are rare at the ~5,000 distinct words and bigrams of the training set
_WORD = re.compile(r"[a-z0-9]+")
_SUFFIXES = ("ing", "es", "s", "ed")


def stem(word: str) -> str:
    """The word without a common inflection, when enough is left to stay distinct."""
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def words(text: str) -> list[str]:
    """Stemmed lower-case words, in order."""
    return [stem(w) for w in _WORD.findall(text.lower())]


def lexical_vector(text: str, *, lead: bool = False) -> npt.NDArray[np.float32]:
    """Unit vector with a 1 in the bucket of each word and each pair of adjacent words.

    With `lead`, the first word and the first two also count apart from the same words later
    ("add ..." opens an edit; "... and add" need not).
    """
    tokens = words(text)
    grams = tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
    if lead and tokens:
        grams += [f"^{tokens[0]}", "^" + " ".join(tokens[:2])]
    vector = np.zeros(BUCKETS, dtype=np.float32)
    for gram in grams:
        vector[zlib.crc32(gram.encode()) % BUCKETS] = 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector
