"""Classification and the conditional edges: pure functions of config and state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config import load_config
from graph.edges import route_after_cloud, route_after_ensure, route_after_generate, route_after_validate
from nodes.classify_task import classify, cloud_policy
from nodes.classify_task import keyword_scores as node_keyword_scores
from nodes.state import State
from understanding import keyword_scores
from understanding.keywords import keyword_guess


@pytest.fixture
def config(tmp_path: Path) -> Any:
    return load_config(env={"MODELYARD_DATA_DIR": str(tmp_path)})


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("Draw the ERD of a blog", "erd"),
        ("entity relationship diagram for a shop", "erd"),
        ("HTML landing page for a bakery", "html"),
        ("JIRA tickets for password reset", "jira"),
        ("a flowchart of the login process", "mermaid"),
        ("write a python function that parses dates", "code"),
        ("README for this project", "documentation"),
    ],
)
def test_keywords_pick_the_task(config: Any, prompt: str, task: str) -> None:
    assert classify(config, State(prompt=prompt))[:2] == (task, "keywords")


@pytest.mark.parametrize(
    "prompt",
    [
        "Draw the ERD of a blog",
        "entity relationship diagram for a shop",
        "a flowchart of how the login function works",
        "JIRA tickets and user stories for the backlog",
        "hello there",
    ],
)
def test_keyword_scores_moved_to_understanding_unchanged(config: Any, prompt: str) -> None:
    assert keyword_scores(config, prompt) == node_keyword_scores(config, prompt)
    best = classify(config, State(prompt=prompt))
    guess = keyword_guess(config, prompt)
    if guess is None:
        assert best[1] == "default"
    else:
        assert (guess.task, guess.layer, guess.confidence) == best


def test_explicit_wins_then_carry_over_then_default(config: Any) -> None:
    assert classify(config, State(prompt="HTML page", task_type="erd")) == ("erd", "explicit", 1.0)
    assert classify(config, State(prompt="now add a TAGS table", last_task="erd"))[:2] == (
        "erd",
        "carried_over",
    )
    assert classify(config, State(prompt="hello there"))[:2] == ("documentation", "default")
    # An unknown explicit type is ignored, not trusted.
    assert classify(config, State(prompt="ERD please", task_type="poem"))[:2] == ("erd", "keywords")


def test_cloud_policy_explains_why_not(config: Any) -> None:
    assert (
        cloud_policy(config, True, ("openai",), "X") == "force local only is on, so no cloud model was tried"
    )
    assert (
        cloud_policy(config, False, (), "GOOGLE_API_KEY")
        == "no cloud provider is configured (set GOOGLE_API_KEY)"
    )
    assert cloud_policy(config, False, ("openai",), "X") is None
    disabled = config.model_copy(update={"fallback": config.fallback.model_copy(update={"enabled": False})})
    assert "fallback.enabled" in (cloud_policy(disabled, False, ("openai",), "X") or "")


def state(**fields: Any) -> State:
    return State(prompt="p", **fields)  # type: ignore[typeddict-item]


def test_edges() -> None:
    cloud = {"cloud_providers": ["gemini", "openai"], "cloud_tried": []}
    assert route_after_ensure(state(model_status="ready")) == "local_generate"
    assert route_after_ensure(state(model_status="error", **cloud)) == "cloud_fallback"
    assert route_after_ensure(state(model_status="error", cloud_providers=[])) == "finalize"
    assert route_after_generate(state(reply="x")) == "validate_output"
    assert route_after_generate(state(reply=None, **cloud)) == "cloud_fallback"
    valid, invalid = {"valid": True}, {"valid": False, "error": "e"}
    assert route_after_validate(state(validation=valid)) == "finalize"
    assert (
        route_after_validate(state(validation=invalid, reply_source="local", repairs_left=1))
        == "local_generate"
    )
    assert route_after_validate(state(validation=invalid, reply_source="local", repairs_left=0, **cloud)) == (
        "cloud_fallback"
    )
    tried_one = {"cloud_providers": ["gemini", "openai"], "cloud_tried": ["gemini"]}
    assert (
        route_after_validate(state(validation=invalid, reply_source="cloud", **tried_one)) == "cloud_fallback"
    )
    tried_all = {"cloud_providers": ["gemini"], "cloud_tried": ["gemini"]}
    assert route_after_validate(state(validation=invalid, reply_source="cloud", **tried_all)) == "finalize"
    assert route_after_cloud(state(reply="x")) == "validate_output"
    assert route_after_cloud(state(reply=None)) == "finalize"
    with pytest.raises(ValueError, match="without a validation verdict"):
        route_after_validate(state())
