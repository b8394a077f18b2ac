"""The model layer: a local model that is already loaded is asked for the task type.

Only a model Ollama has resident is asked: loading one (seconds to minutes) to save a
misroute would cost more than the misroute. The request asks for the context window the
model was loaded with, since Ollama reloads a runner asked for another one; the reply is
constrained by a JSON schema whose `task` is an enum of the task types, so the only
possible answers are valid ones. Any failure or a reply later than the timeout skips it.
"""

from __future__ import annotations

import asyncio
import json
import logging

from config.schema import AppConfig
from providers.errors import ProviderError
from providers.ollama import OllamaClient
from understanding.types import Classification

log = logging.getLogger(__name__)

MODEL_CONFIDENCE = 0.75
"""What the model's answer is worth: better than an unsure guess, below a clear keyword match."""
EXAMPLES_SHOWN = 2  # per task in the prompt: enough to define a type, short enough to stay fast


def response_schema(tasks: list[str]) -> dict[str, object]:
    """Ollama's `format`: an object whose only field is one of the task types."""
    return {
        "type": "object",
        "properties": {"task": {"type": "string", "enum": tasks}},
        "required": ["task"],
    }


def classifier_messages(config: AppConfig, prompt: str) -> list[dict[str, str]]:
    """A short system prompt naming each task type, its artifact and two examples."""
    lines = []
    for name, route in config.routing.tasks.items():
        shown = "; ".join(route.examples[:EXAMPLES_SHOWN])
        lines.append(
            f"- {name}: produces a {route.validator} artifact" + (f" (e.g. {shown})" if shown else "")
        )
    system = (
        "Classify the user's request into exactly one task type. Task types:\n"
        + "\n".join(lines)
        + '\nAnswer with JSON: {"task": "<task type>"}.'
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": prompt}]


async def ask_model(
    config: AppConfig, ollama: OllamaClient, prompt: str, hint: str | None
) -> Classification | None:
    """The classifier model's answer, or None when it is not configured, not loaded or fails."""
    model = config.routing.classifier_model
    if model is None:
        return None
    tasks = list(config.routing.tasks)
    messages = classifier_messages(config, prompt)
    try:
        async with asyncio.timeout(config.routing.classifier_timeout):
            if not await ollama.is_loaded(model):
                return None
            # Another window than the loaded one would make Ollama reload the model.
            if ollama.chat_options(model, messages)["num_ctx"] != ollama.load_num_ctx(model):
                return None
            reply = await ollama.generate(model, messages, response_format=response_schema(tasks))
        task = json.loads(reply.text).get("task")
    except (ProviderError, TimeoutError, ValueError, AttributeError) as exc:
        log.info("classifier model %s skipped: %s", model, exc)
        return None
    if task not in config.routing.tasks:
        log.info("classifier model %s answered an unknown task %r", model, task)
        return None
    runner_up = hint if hint != task else None
    return Classification(task, "model", MODEL_CONFIDENCE, runner_up)
