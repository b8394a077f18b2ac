"""The layered task classifier: each layer, the order between them, and held-out accuracy floors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config import AppConfig, TaskRoute, load_config
from providers.ollama import OllamaClient
from tests.emulators.ollama import ModelSpec, OllamaEmulator
from understanding import TaskClassifier, family
from understanding.embedding import Embedder
from understanding.evaluate import DATA_DIR, evaluate, format_report, load_requests

CLASSIFIER_MODEL = "llama3:8b-instruct-q4_K_M"
# Measured on the blind held-out split (300 requests written from LABELS.md alone, never tuned
# on): see the closing note of issue 9. The floors sit a few requests below the measurement, so
# a regression fails while a one-request wobble from a data edit does not.
HELDOUT_FAMILY_FLOOR = 0.95
HELDOUT_TASK_FLOOR = 0.93


def no_embeddings() -> Embedder:
    raise FileNotFoundError("no weights in this test")


def with_routing(config: AppConfig, **updates: Any) -> AppConfig:
    return config.model_copy(update={"routing": config.routing.model_copy(update=updates)})


@pytest.fixture
def config(tmp_path: Path) -> AppConfig:
    return load_config(env={"MODELYARD_DATA_DIR": str(tmp_path)})


@pytest.fixture(scope="module")
def ready() -> TaskClassifier:
    """One classifier with the real embedding model for the whole module (it loads once)."""
    classifier = TaskClassifier(load_config(env={"MODELYARD_DATA_DIR": "/nonexistent"}))
    assert classifier.wait_ready(60), classifier.load_error
    return classifier


@pytest.fixture
def keywords_only(config: AppConfig) -> TaskClassifier:
    classifier = TaskClassifier(config, loader=no_embeddings)
    assert not classifier.wait_ready(10)
    return classifier


# -- floors -------------------------------------------------------------------------------------


def test_heldout_accuracy_floors(ready: TaskClassifier) -> None:
    config = load_config(env={"MODELYARD_DATA_DIR": "/nonexistent"})
    requests = load_requests(DATA_DIR / "requests.yaml", "heldout")
    assert len(requests) >= 100
    report = evaluate(ready, requests)
    table = format_report(config, report, ready.load_s)
    assert report.accuracy(config, by_family=True) >= HELDOUT_FAMILY_FLOOR, table
    assert report.accuracy(config) >= HELDOUT_TASK_FLOOR, table


def test_every_task_has_enough_examples(config: AppConfig) -> None:
    assert all(len(route.examples) >= 8 for route in config.routing.tasks.values())


# -- explicit and keywords ----------------------------------------------------------------------


def test_explicit_wins_and_an_unknown_one_is_ignored(keywords_only: TaskClassifier) -> None:
    got = keywords_only.classify_fast("HTML landing page", explicit="erd", last_task="code")
    assert (got.task, got.layer, got.confidence) == ("erd", "explicit", 1.0)
    assert keywords_only.classify_fast("ERD please", explicit="poem").layer == "keywords"


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("Draw the ERD of a blog", "erd"),
        ("entity relationship diagram for a shop", "erd"),
        ("HTML landing page for a bakery", "html"),
        ("JIRA tickets for password reset", "jira"),
        ("write a python function that parses dates", "code"),
    ],
)
def test_keywords_decide_a_clear_match(keywords_only: TaskClassifier, prompt: str, task: str) -> None:
    got = keywords_only.classify_fast(prompt)
    assert (got.task, got.layer) == (task, "keywords")
    assert got.confidence >= 0.7


def test_keywords_defer_when_two_tasks_match_about_as_strongly(keywords_only: TaskClassifier) -> None:
    # "flowchart" (mermaid, 9 characters) against "function" (code, 8): confidence 0.64.
    got = keywords_only.classify_fast("a flowchart of how the login function works", last_task="html")
    assert (got.task, got.layer) == ("html", "carried_over")
    assert got.runner_up == "mermaid"  # the unsure guess is kept as the runner-up


# -- semantic -----------------------------------------------------------------------------------


def test_semantic_decides_without_keywords(ready: TaskClassifier) -> None:
    got = ready.classify_fast("the tables and foreign keys a pet clinic needs: owners, pets, visits")
    assert (got.task, got.layer) == ("erd", "semantic")
    assert got.runner_up is not None and 0 < got.confidence <= 1


def test_a_new_task_type_is_taught_by_its_examples_alone(config: AppConfig) -> None:
    poem = TaskRoute(
        model="m",
        validator="documentation",
        examples=(
            "a haiku about autumn leaves",
            "write a sonnet for my wife",
            "a limerick about a cat",
            "poem about the sea at night",
            "rhyming verses for a birthday card",
            "a short poem on loneliness",
            "free verse about the city",
            "an ode to coffee",
        ),
    )
    taught = with_routing(config, tasks={**config.routing.tasks, "poem": poem})
    classifier = TaskClassifier(taught)
    assert classifier.wait_ready(60)
    # Eight examples against the shipped types' hundreds: classes are weighted equally.
    for prompt in ("a limerick about kubernetes", "a poem for my retiring colleague"):
        got = classifier.classify_fast(prompt)
        assert (got.task, got.layer) == ("poem", "semantic"), prompt


def test_a_follow_up_needs_more_confidence_to_leave_the_thread(config: AppConfig) -> None:
    strict = TaskClassifier(
        with_routing(config, semantic_min_confidence=0.2, semantic_min_confidence_in_thread=1.0)
    )
    assert strict.wait_ready(60)
    prompt = "what the tables of a pet clinic look like"
    fresh = strict.classify_fast(prompt)
    assert (fresh.task, fresh.layer) == ("erd", "semantic") and fresh.confidence < 1.0
    in_thread = strict.classify_fast(prompt, last_task="html")
    assert (in_thread.task, in_thread.layer, in_thread.runner_up) == ("html", "carried_over", "erd")


def test_keywords_decide_when_the_learned_layer_agrees(ready: TaskClassifier) -> None:
    got = ready.classify_fast("Draw the ERD of a blog with users and posts")
    assert (got.task, got.layer) == ("erd", "keywords")


def test_the_learned_layer_overrules_keywords_that_point_elsewhere(ready: TaskClassifier) -> None:
    # "JIRA tickets" are keywords of jira; what is asked for is a script.
    got = ready.classify_fast("a python script that creates JIRA tickets from a CSV via the REST API")
    assert (got.task, got.layer) == ("code", "semantic")


def test_before_the_model_is_ready_the_layer_is_skipped_not_awaited(config: AppConfig) -> None:
    release = threading.Event()

    def slow() -> Embedder:
        release.wait(10)
        raise FileNotFoundError("released")

    classifier = TaskClassifier(config, loader=slow)
    try:
        got = classifier.classify_fast("the tables a pet clinic needs")
        assert got.layer == "default"
        assert classifier.similarity("a", "b") == 0.0
        assert not classifier.wait_ready(0.01)
    finally:
        release.set()


def test_similarity_ranks_related_requests_higher(ready: TaskClassifier) -> None:
    near = ready.similarity("ERD for a blog", "entity relationship diagram of a blog with posts")
    far = ready.similarity("ERD for a blog", "a bash script that rotates log files")
    assert near > far


def test_the_embedding_model_loads_with_the_network_unavailable(tmp_path: Path) -> None:
    """No hub, no cache, no socket: the weights and tokenizer come from the wheel itself."""
    script = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network is off in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        import logging
        from understanding.embedding import load_wordllama
        vector = load_wordllama().embed("draw the ERD of a blog")
        # wordllama's import-time logging.basicConfig is undone: logging is the app's to set up.
        print(vector.shape[0], round(float((vector * vector).sum()), 3), len(logging.getLogger().handlers))
        """
    )
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["256", "1.0", "0"]
    assert not (tmp_path / "cache").exists() and not (tmp_path / ".cache").exists()


# -- model --------------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[OllamaEmulator]:
    with OllamaEmulator() as emu:
        emu.set_model(CLASSIFIER_MODEL, ModelSpec(reply=json.dumps({"task": "erd"})))
        yield emu


def emulated(config: AppConfig, emu: OllamaEmulator, **routing: Any) -> tuple[AppConfig, OllamaClient]:
    ollama = config.ollama.model_copy(update={"base_url": emu.url})
    config = config.model_copy(update={"ollama": ollama})
    config = with_routing(config, classifier_model=CLASSIFIER_MODEL, **routing)
    return config, OllamaClient(config.ollama)


UNSURE = "the thing for the parking garage with spots and vehicles"  # no keyword, no embeddings here


async def test_the_model_layer_asks_a_loaded_model_with_a_task_enum(
    config: AppConfig, emulator: OllamaEmulator
) -> None:
    config, client = emulated(config, emulator)
    try:
        await client.load_model(CLASSIFIER_MODEL)
        classifier = TaskClassifier(config, client, loader=no_embeddings)
        got = await classifier.classify(UNSURE, last_task="code")
        assert (got.task, got.layer) == ("erd", "model")
        assert emulator.load_count(CLASSIFIER_MODEL) == 1  # only the test's own load
        chat = [r for r in emulator.requests if r.path == "/api/chat"]
        assert len(chat) == 1
        assert chat[0].body["format"]["properties"]["task"]["enum"] == list(config.routing.tasks)
        # skip_model and a confident earlier layer never ask it.
        assert (await classifier.classify(UNSURE, skip_model=True)).layer == "default"
        assert (await classifier.classify("Draw the ERD of a blog")).layer == "keywords"
        assert len([r for r in emulator.requests if r.path == "/api/chat"]) == 1
    finally:
        await client.aclose()


async def test_the_model_layer_never_loads_a_model(config: AppConfig, emulator: OllamaEmulator) -> None:
    config, client = emulated(config, emulator)
    try:
        classifier = TaskClassifier(config, client, loader=no_embeddings)
        got = await classifier.classify(UNSURE)
        assert (got.task, got.layer) == (config.routing.default_task, "default")
        assert emulator.load_count(CLASSIFIER_MODEL) == 0
        assert not [r for r in emulator.requests if r.path in ("/api/chat", "/api/generate")]
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec(reply="not json at all"),
        ModelSpec(reply=json.dumps({"task": "poem"})),
        ModelSpec(reply=json.dumps({"task": "erd"}), first_token_delay=2.0),
        ModelSpec(status_code_error=(500, "boom")),
    ],
    ids=["garbled", "unknown-task", "too-slow", "error"],
)
async def test_a_failing_model_layer_is_skipped(
    config: AppConfig, emulator: OllamaEmulator, spec: ModelSpec
) -> None:
    config, client = emulated(config, emulator, classifier_timeout=0.5)
    try:
        await client.load_model(CLASSIFIER_MODEL)
        emulator.set_model(CLASSIFIER_MODEL, spec)
        classifier = TaskClassifier(config, client, loader=no_embeddings)
        got = await classifier.classify(UNSURE, last_task="jira")
        assert (got.task, got.layer) == ("jira", "carried_over")
    finally:
        await client.aclose()


# -- carried over, default, family -------------------------------------------------------------


def test_carried_over_then_default(keywords_only: TaskClassifier, config: AppConfig) -> None:
    carried = keywords_only.classify_fast("now make it bigger", last_task="html")
    assert (carried.task, carried.layer) == ("html", "carried_over")
    assert keywords_only.classify_fast("now make it bigger", last_task="poem").layer == "default"
    default = keywords_only.classify_fast("hello there")
    assert (default.task, default.layer) == (config.routing.default_task, "default")
    assert default.confidence < carried.confidence


def test_family_is_the_validator(config: AppConfig) -> None:
    assert {family(config, t) for t in ("mermaid", "diagram", "erd", "architecture")} == {"mermaid"}
    assert family(config, "planning") == family(config, "tasks") == "jira"
