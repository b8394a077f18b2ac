"""TaskClassifier: the task type of a request, from layers that each decide only when confident.

1. explicit: the user chose (CLI --task, the chat's setting, a Studio input);
2. keywords: the request names its artifact clearly ("ERD", "landing page"), and the semantic
   layer agrees or is not ready;
3. semantic: a model fitted to example requests (`routing.tasks.<t>.examples` and the shipped
   training set, `understanding.training`) is confident;
4. model: a local model that Ollama already has loaded says so (async path only);
5. carried_over: the thread's last task; then default: `routing.default_task`.

The embedding model loads and the learned layers are fitted once, in a background thread
started here. Until they are ready, `classify` waits at most `routing.semantic_wait` seconds
(a request in a process's first moments, such as a one-shot CLI run, where a misroute costs far
more than the wait) and `classify_fast` never waits: both skip the layer while it is not there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from config.schema import AppConfig
from providers.ollama import OllamaClient
from understanding.embedding import BackgroundLoad, Embedder, load_wordllama
from understanding.fit_process import fit_in_child
from understanding.fitted import Fitted, fitted_layers
from understanding.keywords import keyword_guess
from understanding.model_layer import ask_model
from understanding.semantic import SemanticIndex
from understanding.training import training_examples, training_followups
from understanding.turn_model import TurnModel, fit_turn_model
from understanding.turns import Signals, TurnClass
from understanding.types import CARRIED_OVER_CONFIDENCE, Classification

DEFAULT_CONFIDENCE = 0.2  # nothing pointed anywhere


class TaskClassifier:
    """Built once per process (per config); every method is safe to call before the model loads."""

    def __init__(
        self,
        config: AppConfig,
        ollama: OllamaClient | None = None,
        *,
        loader: Callable[[], Embedder] = load_wordllama,
        learn: bool = True,
    ) -> None:
        """`learn=False`: the learned layers never load (a command that classifies nothing)."""
        self._config = config
        self._ollama = ollama
        self._index: SemanticIndex | None = None
        self._turns: TurnModel | None = None
        # Only the packaged embedding model can be loaded again in a child process.
        self._fit_in_child = loader is load_wordllama
        self._load = BackgroundLoad(loader, self._prepare, start=learn)

    def _prepare(self, embedder: Embedder) -> None:
        # Runs in the loader thread: the learned layers come from the process's or the
        # machine's cache of an earlier fit, else are fitted in a child process, else here
        # (`understanding.fitted`).
        elsewhere = partial(fit_in_child, self._config) if self._fit_in_child else None
        fitted = fitted_layers(self._config, embedder, lambda: self.fit(embedder), elsewhere=elsewhere)
        self._index, self._turns = fitted.index, fitted.turns

    def fit(self, embedder: Embedder) -> Fitted:
        """Fit the learned layers to the training set (seconds of CPU; `fitted_layers` keeps it)."""
        # The turn model is fitted to follow-ups classified by the semantic layer, as in use.
        index = SemanticIndex.fit(embedder, training_examples(self._config))
        self._index = index
        turns = fit_turn_model(self._config, training_followups(self._config), self, index.vector)
        return Fitted(index, turns)

    @property
    def load_s(self) -> float | None:
        """Seconds the embedding model took to load and embed the examples (None until ready)."""
        return self._load.load_s

    @property
    def load_error(self) -> str | None:
        """Why the embedding model did not load, if it failed (the semantic layer is then off)."""
        return self._load.error

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the embedding model; True when it is ready."""
        return self._load.wait(timeout)

    def similarity(self, a: str, b: str) -> float:
        """Cosine of the two texts' centred embeddings (-1..1); 0.0 while the model is not ready."""
        index = self._ready_index()
        if index is None:
            return 0.0
        return float(np.dot(index.vector(a), index.vector(b)))

    def turn_class(self, text: str, signals: Signals, shape: str = "") -> TurnClass | None:
        """The learned turn model's answer for a follow-up; None while it is not ready."""
        return self._turns.predict(text, signals, shape) if self._turns is not None else None

    def target_probabilities(self, text: str) -> dict[str, float]:
        """How likely a revision or question is about each task type's artifact; {} until ready."""
        return self._turns.target_probabilities(text) if self._turns is not None else {}

    def new_task_probabilities(self, text: str, thread: Sequence[str]) -> dict[str, float]:
        """How likely a new request in a thread of these types asks for each task type; {} until ready."""
        return self._turns.new_task_probabilities(text, thread) if self._turns is not None else {}

    def task_probabilities(self, text: str) -> dict[str, float]:
        """The semantic layer's probability of each task type; {} while it is not ready."""
        index = self._ready_index()
        return index.probabilities(text) if index is not None else {}

    def classify_fast(
        self, prompt: str, *, explicit: str | None = None, last_task: str | None = None
    ) -> Classification:
        """Every layer but the model, without waiting for anything (evaluation, the turn logic)."""
        decided, guesses = self._first_layers(prompt, explicit, last_task, self._ready_index())
        return decided or self._fallback(last_task, guesses)

    async def classify(
        self,
        prompt: str,
        *,
        explicit: str | None = None,
        last_task: str | None = None,
        skip_model: bool = False,
    ) -> Classification:
        """Every layer; the model layer only when the others are unsure and its model is loaded."""
        index = self._ready_index()
        decided, guesses = self._first_layers(prompt, explicit, last_task, index)
        if decided is not None:
            return decided
        wait = self._config.routing.semantic_wait
        if index is None and wait > 0 and await asyncio.to_thread(self._load.wait, wait):
            decided, guesses = self._first_layers(prompt, explicit, last_task, self._ready_index())
            if decided is not None:
                return decided
        if not skip_model and self._ollama is not None:
            hint = guesses[0].task if guesses else None
            answer = await ask_model(self._config, self._ollama, prompt, hint)
            if answer is not None:
                return answer
        return self._fallback(last_task, guesses)

    # -- layers -------------------------------------------------------------------------------

    def _ready_index(self) -> SemanticIndex | None:
        return self._index

    def _first_layers(
        self, prompt: str, explicit: str | None, last_task: str | None, index: SemanticIndex | None
    ) -> tuple[Classification | None, list[Classification]]:
        """The decision of the explicit, keyword or semantic layer, else their unsure guesses.

        The semantic layer needs more confidence to override a thread's last task than to
        beat the default: a follow-up ("now add a tags table") is unlike any example request,
        while a first request the model is unsure of is still more often right than the default.
        """
        routing = self._config.routing
        in_thread = bool(last_task and last_task in routing.tasks)
        semantic_min = (
            routing.semantic_min_confidence_in_thread if in_thread else routing.semantic_min_confidence
        )
        if explicit and explicit in routing.tasks:  # an unknown type is ignored, not trusted
            return Classification(explicit, "explicit", 1.0), []
        by_keywords = keyword_guess(self._config, prompt)
        by_examples = index.guess(prompt) if index is not None else None
        keywords_sure = by_keywords is not None and by_keywords.confidence >= routing.keyword_min_confidence
        # Keywords decide when the learned layer agrees with them, or cannot say: alone they
        # misroute "a script that creates JIRA tickets" (dev split, requests where keywords
        # match: their family accuracy 0.81, the learned layer's 0.90 on the same requests).
        if keywords_sure and by_keywords and (by_examples is None or by_examples.task == by_keywords.task):
            return by_keywords, []
        if by_examples is not None and by_examples.confidence >= semantic_min:
            return by_examples, []
        if keywords_sure and by_keywords:
            return by_keywords, []
        return None, [g for g in (by_keywords, by_examples) if g is not None]

    def _fallback(self, last_task: str | None, guesses: list[Classification]) -> Classification:
        """The thread's last task, else the default; the best unsure guess is the runner-up."""
        if last_task and last_task in self._config.routing.tasks:
            hint = next((g.task for g in guesses if g.task != last_task), None)
            return Classification(last_task, "carried_over", CARRIED_OVER_CONFIDENCE, hint)
        task = self._config.routing.default_task
        hint = next((g.task for g in guesses if g.task != task), None)
        return Classification(task, "default", DEFAULT_CONFIDENCE, hint)
