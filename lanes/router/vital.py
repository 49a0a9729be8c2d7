"""The learned half of the vital judgement: ``p_vital``, the chance a request is costly if
done wrong, read from what it is about rather than from its keywords.

Two readings of the request's vector (``lanes.router.encoder``) are combined by a fitted
logistic link into one calibrated probability:

- a linear model trained (``lanes train``) on real text: security advisories (all vital),
  commit subjects from many repositories labelled by the cue tables, and general
  instructions (none vital); the encoder carries what it learns to requests that share no
  word with its training text;
- the closeness of the request to the vital categories, each described in a few words
  (payments, production incidents, data loss ...), which names the category in the reason.

Cost: one encoding (tens of microseconds) and two small dot products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from lanes.router.encoder import Vector, shipped_encoder

VITAL_FILE = "vital.npz"
FloatArray = npt.NDArray[np.float32]


class Judgement(NamedTuple):
    """What the model makes of one request: ``p_vital``, the closest vital category and how
    close it is (cosine)."""

    p_vital: float
    category: str
    similarity: float


@dataclass(frozen=True)
class VitalModel:
    """Linear weights over the encoder's vector, the categories' vectors and the link."""

    weights: FloatArray
    bias: float
    categories: tuple[str, ...]
    centroids: FloatArray
    """One unit vector per category."""
    link: tuple[float, float, float]
    """``(a, b, c)``: ``p = sigmoid(a * linear + b * closeness + c)``."""

    def parts(self, vec: Vector) -> tuple[float, float, int]:
        """The linear model's score, the closeness to the nearest category and its index."""
        sims = self.centroids @ vec
        best = int(np.argmax(sims))
        return float(self.weights @ vec) + self.bias, float(sims[best]), best

    def judge_vector(self, vec: Vector) -> Judgement:
        linear, close, best = self.parts(vec)
        a, b, c = self.link
        z = a * linear + b * close + c
        p = 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0
        return Judgement(round(p, 4), self.categories[best], round(close, 3))

    def judge(self, text: str) -> Judgement:
        """The judgement of ``text``; a text with no known word gets the model's base rate."""
        return self.judge_vector(shipped_encoder().encode(text))

    def save(self, path: str) -> None:
        np.savez_compressed(
            path,
            weights=self.weights.astype(np.float32),
            bias=np.array([self.bias], dtype=np.float32),
            categories=np.frombuffer("\n".join(self.categories).encode(), dtype=np.uint8),
            centroids=self.centroids.astype(np.float32),
            link=np.array(self.link, dtype=np.float32),
        )

    @classmethod
    def load(cls, path: object) -> VitalModel:
        with np.load(path, allow_pickle=False) as data:  # type: ignore[arg-type]
            a, b, c = (float(v) for v in data["link"])
            return cls(
                weights=data["weights"].astype(np.float32),
                bias=float(data["bias"][0]),
                categories=tuple(bytes(data["categories"]).decode().split("\n")),
                centroids=data["centroids"].astype(np.float32),
                link=(a, b, c),
            )


@lru_cache(maxsize=1)
def shipped_vital_model() -> VitalModel:
    """The model shipped with lanes, loaded once per process."""
    with resources.files("lanes.router.data").joinpath(VITAL_FILE).open("rb") as fh:
        return VitalModel.load(fh)
