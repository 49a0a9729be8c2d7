"""``lanes bench difficulty``: how well the difficulty score orders prompts by outcome.

Rows are per-prompt outcomes of a strong and a weak model: ``{"prompt": str, "strong_ok":
bool|float, "weak_ok": bool|float}`` (0-1; a float is a share of successes). Two measures,
each given for the classifier's difficulty, for the prompt's length and for random order:

- ``auc``: the chance that a prompt where the weak model fails and the strong one succeeds
  scores higher than one where that is not so (0.5 is no better than chance);
- ``gap_recovered``: route the highest-scoring share of prompts to the strong model and the
  rest to the weak one; the share of the strong-weak quality gap recovered, averaged over
  every share from 0 to 1 (0.5 is random order; the area under the routing curve).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from lanes.router.classifier import classify_text

Scorer = Callable[[str], float]


def _outcome(value: Any, where: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and 0.0 <= value <= 1.0:
        return float(value)
    raise ValueError(f"{where}: expected true/false or a number in [0, 1], got {value!r}")


def parse_rows(rows: Sequence[dict[str, Any]], name: str) -> list[tuple[str, float, float]]:
    """``(prompt, strong, weak)`` per row; ValueError naming the row for a bad one."""
    out = []
    for i, row in enumerate(rows, 1):
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise ValueError(f"{name} row {i}: 'prompt' must be a non-empty string")
        strong = _outcome(row.get("strong_ok"), f"{name} row {i} strong_ok")
        weak = _outcome(row.get("weak_ok"), f"{name} row {i} weak_ok")
        out.append((prompt, strong, weak))
    return out


def auc(scores: Sequence[float], positive: Sequence[float]) -> float:
    """Weighted ROC AUC: ``positive`` is each row's weight as a positive (0-1); ties half."""
    order = sorted(range(len(scores)), key=scores.__getitem__)
    pos_total = sum(positive)
    neg_total = len(positive) - pos_total
    if pos_total <= 0 or neg_total <= 0:
        return 0.5
    area = 0.0
    neg_below = 0.0
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and scores[order[j]] == scores[order[i]]:
            j += 1
        pos = sum(positive[k] for k in order[i:j])
        neg = (j - i) - pos
        area += pos * (neg_below + neg / 2)
        neg_below += neg
        i = j
    return area / (pos_total * neg_total)


def gap_recovered(scores: Sequence[float], strong: Sequence[float], weak: Sequence[float]) -> float:
    """Area under the routing curve, normalised: 1 routes exactly the right prompts first."""
    n = len(scores)
    gap = sum(strong) - sum(weak)
    if n == 0 or gap <= 0:
        return 0.5
    order = sorted(range(n), key=lambda k: -scores[k])
    quality = sum(weak)
    area = 0.0
    for k in order:
        quality += strong[k] - weak[k]
        area += (quality - sum(weak)) / gap
    return area / n


def measure(rows: list[tuple[str, float, float]], seed: int = 7) -> dict[str, Any]:
    """Both measures for difficulty, length and a seeded random order."""
    prompts = [p for p, _, _ in rows]
    strong = [s for _, s, _ in rows]
    weak = [w for _, _, w in rows]
    positive = [s * (1 - w) for s, w in zip(strong, weak, strict=True)]
    rng = random.Random(seed)
    scorers: dict[str, list[float]] = {
        "difficulty": [classify_text(p).difficulty for p in prompts],
        "length": [float(len(p)) for p in prompts],
        "random": [rng.random() for _ in prompts],
    }
    return {
        "prompts": len(rows),
        "strong_ok": round(sum(strong) / len(rows), 4) if rows else 0.0,
        "weak_ok": round(sum(weak) / len(rows), 4) if rows else 0.0,
        **{
            name: {
                "auc": round(auc(values, positive), 4),
                "gap_recovered": round(gap_recovered(values, strong, weak), 4),
            }
            for name, values in scorers.items()
        },
    }
