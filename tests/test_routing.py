"""Keyword scores, the cloud policy and the conditional edges: pure functions of config and state.

The layered classifier itself is tested in test_classifier.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config import load_config
from graph.edges import route_after_cloud, route_after_ensure, route_after_generate, route_after_validate
from nodes.classify_task import cloud_policy
from nodes.state import State
from understanding import keyword_scores
from understanding.keywords import keyword_guess


@pytest.fixture
def config(tmp_path: Path) -> Any:
    return load_config(env={"MODELYARD_DATA_DIR": str(tmp_path)})


@pytest.mark.parametrize(
    ("prompt", "scores"),
    [
        ("Draw the ERD of a blog", {"erd": 3}),
        ("entity relationship diagram for a shop", {"mermaid": 7, "erd": 19}),
        ("hello there", {}),
    ],
)
def test_keyword_scores_count_characters_of_whole_word_matches(config: Any, prompt: str, scores: Any) -> None:
    # Longer matches are more specific: "entity relationship diagram" is an ERD although it says "diagram".
    assert keyword_scores(config, prompt) == scores
    guess = keyword_guess(config, prompt)
    assert (guess.task if guess else None) == (max(scores, key=scores.__getitem__) if scores else None)


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
