"""The graph as LangGraph Studio sees it: a real `langgraph dev` server on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import MERMAID, OPENAI_KEY, free_port
from tests.emulators.ollama import OllamaEmulator
from tests.emulators.openai_compat import OpenAIEmulator

ROOT = Path(__file__).resolve().parent.parent
NODES = ["classify_task", "ensure_model", "local_generate", "validate_output", "finalize"]


@pytest.fixture
def studio(tmp_path: Path, ollama: OllamaEmulator, cloud: OpenAIEmulator) -> Iterator[httpx.Client]:
    port = free_port()
    env = os.environ | {
        "OLLAMA_HOST": ollama.url,
        "MODELYARD_DATA_DIR": str(tmp_path / "data"),
        "OPENAI_BASE_URL": cloud.url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "LANGSMITH_TRACING": "false",  # no test reaches the internet
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }
    langgraph = Path(sys.executable).with_name("langgraph")
    log = (tmp_path / "langgraph-dev.log").open("w")
    server = subprocess.Popen(
        [str(langgraph), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        _wait_ready(client, server, tmp_path / "langgraph-dev.log")
        yield client
    finally:
        client.close()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
        log.close()


def _wait_ready(client: httpx.Client, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"langgraph dev exited:\n{log.read_text()[-3000:]}")
        try:
            if client.get("/ok").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"langgraph dev did not start:\n{log.read_text()[-3000:]}")


def _run(client: httpx.Client, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    thread_id = client.post("/threads", json={}).json()["thread_id"]
    final = client.post(
        f"/threads/{thread_id}/runs/wait", json={"assistant_id": "modelyard", "input": request}
    ).json()
    assert "__error__" not in final, final
    return thread_id, final


def _node_sequence(client: httpx.Client, thread_id: str) -> list[str]:
    history = client.post(f"/threads/{thread_id}/history", json={"limit": 50}).json()
    # Newest first; each checkpoint's `next` names the node that ran after it.
    return [c["next"][0] for c in reversed(history) if c["next"] and c["next"][0] != "__start__"]


def test_schemas_are_narrow_and_documented(studio: httpx.Client) -> None:
    (assistant,) = studio.post("/assistants/search", json={"graph_id": "modelyard"}).json()
    schemas = studio.get(f"/assistants/{assistant['assistant_id']}/schemas").json()
    assert set(schemas["input_schema"]["properties"]) == {
        "prompt",
        "task_type",
        "force_local",
        "latency_budget_s",
    }
    assert schemas["input_schema"]["required"] == ["prompt"]
    assert "empty means classify" in schemas["input_schema"]["properties"]["task_type"]["description"]
    assert (
        "cold model's load counts" in schemas["input_schema"]["properties"]["latency_budget_s"]["description"]
    )
    assert {"config_path", "data_dir"} <= set(schemas["context_schema"]["properties"])
    assert "run" in schemas["state_schema"]["properties"]  # the run's fields in one channel
    run = schemas["state_schema"]["$defs"]["Run"]["properties"]
    assert "The final ModelResponse" in run["response"]["description"]


def test_studio_draws_every_edge_of_the_graph(studio: httpx.Client) -> None:
    # The conditional edges' targets come from their Literal return types (graph/builder.py).
    (assistant,) = studio.post("/assistants/search", json={"graph_id": "modelyard"}).json()
    drawn = studio.get(f"/assistants/{assistant['assistant_id']}/graph").json()
    edges = {(e["source"], e["target"]) for e in drawn["edges"]}
    assert edges == {
        ("__start__", "classify_task"),
        ("classify_task", "ensure_model"),
        ("ensure_model", "local_generate"),
        ("ensure_model", "cloud_fallback"),
        ("ensure_model", "finalize"),
        ("local_generate", "validate_output"),
        ("local_generate", "cloud_fallback"),
        ("local_generate", "finalize"),
        ("validate_output", "finalize"),
        ("validate_output", "local_generate"),
        ("validate_output", "cloud_fallback"),
        ("cloud_fallback", "validate_output"),
        ("cloud_fallback", "finalize"),
        ("finalize", "__end__"),
    }


def test_mermaid_request_runs_to_the_end_with_one_checkpoint_per_node(studio: httpx.Client) -> None:
    thread_id, final = _run(studio, {"prompt": "ERD for a blog", "task_type": "erd"})
    response = final["run"]["response"]
    assert response["content"].startswith("erDiagram") and response["valid"]
    assert (response["model_used"], response["is_fallback"], response["fallback_reason"]) == (
        MERMAID,
        False,
        None,
    )
    assert final["run"]["artifact"] == response["content"] == final["last_artifact"]
    assert _node_sequence(studio, thread_id) == NODES


def test_status_events_reach_studios_stream(studio: httpx.Client) -> None:
    thread_id = studio.post("/threads", json={}).json()["thread_id"]
    body = {"assistant_id": "modelyard", "input": {"prompt": "ERD for a blog"}, "stream_mode": ["custom"]}
    with studio.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as resp:
        lines = [line for line in resp.iter_lines() if line.startswith("data: ")]
    events = [json.loads(line[6:]) for line in lines]
    messages = [e["message"] for e in events if isinstance(e, dict) and e.get("kind") == "status"]
    assert any(m.startswith(f"Loading {MERMAID}") for m in messages)
    assert "Validating Mermaid syntax" in messages
    assert any(m.startswith(f"Generated using {MERMAID} (local)") for m in messages)


def test_ollama_stopped_ends_in_the_cloud_with_the_reason_in_state(
    studio: httpx.Client, ollama: OllamaEmulator
) -> None:
    ollama.stop()
    thread_id, final = _run(studio, {"prompt": "ERD for a blog", "task_type": "erd"})
    run = final["run"]
    assert run["fallback_reason"] == "server_down"
    assert run["response"]["is_fallback"] and run["response"]["model_used"] == "gpt-4o-mini"
    assert run["response"]["content"].startswith("erDiagram")
    assert _node_sequence(studio, thread_id) == [
        "classify_task",
        "ensure_model",
        "cloud_fallback",
        "validate_output",
        "finalize",
    ]


def test_no_key_in_studio_thread_state_or_server_log(
    studio: httpx.Client, ollama: OllamaEmulator, cloud: OpenAIEmulator, tmp_path: Path
) -> None:
    cloud.configure(status_error=(401, f"Incorrect API key provided: {OPENAI_KEY}"))  # echoes the key
    ollama.stop()
    thread_id, final = _run(studio, {"prompt": "ERD for a blog", "task_type": "erd"})
    response = final["run"]["response"]
    assert response["content"] == "" and "rejected the API key" in response["error_message"]
    state = studio.get(f"/threads/{thread_id}/state").text
    history = studio.post(f"/threads/{thread_id}/history", json={"limit": 50}).text
    log = (tmp_path / "langgraph-dev.log").read_text(errors="replace")
    for text in (json.dumps(final), state, history, log):
        assert OPENAI_KEY not in text and OPENAI_KEY[: len(OPENAI_KEY) // 2] not in text
