"""Routing that knows what is loaded: the task's model, an alternate or the cloud, within a latency budget.

The cost of a local option is what the user would wait before its first token: nothing for a
warm model, its median measured load time here for a cold one. A cold model never measured on
this machine cannot be promised within a budget (the seed's "30-60 s" is a guess, not a
measurement). In order of preference:

1. the task's model, warm;
2. the task's model, cold, when its measured load fits the budget (or there is no budget);
3. an alternate, warm;
4. an alternate, cold, when its measured load fits (fastest first);
5. the cloud, unless local only;
6. local only: the cheapest local option anyway, said to be over the budget.

A model cooling down (lifecycle.health) is never chosen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from providers.ollama_budget import display

Option = Literal["warm", "cold", "alternate_warm", "alternate_cold", "cloud", "over_budget"]


@dataclass(frozen=True)
class Candidate:
    """One local model that serves the task, and what is known of it right now."""

    model: str
    alternate: bool
    warm: bool
    cooling: bool
    load_s: float | None
    """Median measured load time on this machine (None: never measured)."""

    @property
    def cost_s(self) -> float:
        """Seconds before it could start answering: 0 warm, its load time cold (inf: unknown)."""
        if self.warm:
            return 0.0
        return math.inf if self.load_s is None else self.load_s

    def describe(self) -> str:
        """What the choice says of it: "llama3 (alternate) is warm", "m is cold (~45 s to load here)"."""
        name = f"{display(self.model)} (alternate)" if self.alternate else display(self.model)
        if self.cooling:
            return f"{name} is cooling down"
        if self.warm:
            return f"{name} is warm"
        if self.load_s is None:
            return f"{name} is cold, with no measured load time here"
        return f"{name} is cold (~{self.load_s:.0f} s to load here)"


@dataclass(frozen=True)
class Choice:
    """The model chosen (None: the cloud), which option it was, and why."""

    model: str | None
    option: Option
    reason: str
    budget_s: float | None

    def to_state(self) -> dict[str, object]:
        """Plain JSON for the graph's state."""
        return {"model": self.model, "option": self.option, "reason": self.reason, "budget_s": self.budget_s}


def choose(candidates: Sequence[Candidate], budget_s: float | None, cloud_allowed: bool) -> Choice:
    """Pick one option for this request; `candidates[0]` is the task's own model."""
    primary, alternates = candidates[0], [c for c in candidates[1:] if not c.cooling]
    limit = math.inf if budget_s is None else budget_s
    within = "" if budget_s is None else f", within the {budget_s:g} s budget"
    over = "" if budget_s is None else f" over the {budget_s:g} s budget"

    if not primary.cooling:
        if primary.warm:
            return Choice(primary.model, "warm", primary.describe(), budget_s)
        if primary.cost_s <= limit:  # always without a budget: inf <= inf
            return Choice(primary.model, "cold", f"{primary.describe()}{within}", budget_s)
    why_not = primary.describe() + ("" if primary.cooling else over)
    for alternate in alternates:
        if alternate.warm:
            return Choice(alternate.model, "alternate_warm", f"{why_not}; {alternate.describe()}", budget_s)
    fitting = sorted((a for a in alternates if a.cost_s <= limit), key=lambda a: a.cost_s)
    if fitting:
        best = fitting[0]
        return Choice(best.model, "alternate_cold", f"{why_not}; {best.describe()}{within}", budget_s)
    if primary.cooling and not alternates:
        return Choice(primary.model, "cold", why_not, budget_s)  # ensure_model says it is skipped
    if cloud_allowed and budget_s is not None:
        return Choice(None, "cloud", f"{why_not}; no local model fits: the cloud", budget_s)
    usable = [c for c in candidates if not c.cooling]
    best = min(usable, key=lambda c: (c.cost_s, c.alternate))
    return Choice(
        best.model, "over_budget", f"{best.describe()}{over}; local only, so it is used anyway", budget_s
    )
