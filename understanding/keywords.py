"""The keyword layer: precise when a request names its artifact, silent when it does not."""

from __future__ import annotations

import re
from functools import lru_cache

from config.schema import AppConfig
from understanding.types import Classification


@lru_cache(maxsize=1024)
def _pattern(keyword: str) -> re.Pattern[str]:
    # Compiled once per keyword: classification runs on every request.
    return re.compile(rf"\b{re.escape(keyword.lower())}\b")


def keyword_scores(config: AppConfig, prompt: str) -> dict[str, int]:
    """Characters of each task's keywords found in the prompt (whole words, any case).

    Longer matches are more specific: "entity relationship diagram" is an ERD even though
    it also says "diagram".
    """
    text = prompt.lower()
    scores: dict[str, int] = {}
    for name, route in config.routing.tasks.items():
        matched = [kw for kw in route.keywords if _pattern(kw).search(text)]
        if matched:
            scores[name] = sum(len(kw) for kw in matched)
    return scores


def keyword_guess(config: AppConfig, prompt: str) -> Classification | None:
    """The best keyword match and how clearly it beats the runner-up; None when nothing matched.

    Confidence is 0.95 for a single matching task and falls towards 0.6 as the runner-up's
    score approaches the winner's (an even split says the keywords cannot tell).
    """
    scores = keyword_scores(config, prompt)
    if not scores:
        return None
    best = max(scores, key=lambda name: scores[name])  # ties: first in config order
    others = {k: v for k, v in scores.items() if k != best}
    runner_up = max(others, key=lambda name: others[name]) if others else None
    second = others[runner_up] if runner_up else 0
    confidence = round(min(0.95, 0.6 + 0.35 * (1 - second / scores[best])), 2)
    return Classification(best, "keywords", confidence, runner_up)
