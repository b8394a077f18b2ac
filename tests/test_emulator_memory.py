"""The Ollama emulator's memory limit: evictions as Ollama's scheduler makes them (server/sched.go)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulators._ollama_models import GIB
from tests.emulators.ollama import NO_SYSTEM_MEMORY, PROXY_502, ModelSpec, OllamaEmulator

REPO = Path(__file__).resolve().parents[1]
SMALL = 3 * GIB // 2  # two fit in LIMIT, three do not
LIMIT = 4 * GIB
REPLY = "one two three four five six seven eight"  # 8 tokens: a stream takes 7 token delays


def models() -> dict[str, ModelSpec]:
    small = {name: ModelSpec(reply=REPLY, size=SMALL) for name in ("a", "b", "c", "d")}
    return small | {"mid": ModelSpec(size=3 * GIB), "huge": ModelSpec(size=16 * GIB)}


@pytest.fixture
def emu() -> Iterator[OllamaEmulator]:
    with OllamaEmulator(models(), memory_limit=LIMIT) as emulator:
        yield emulator


def load(http: httpx.Client, name: str, keep_alive: Any = None) -> httpx.Response:
    """An empty generate: Ollama's load shortcut. One Client reuses one connection, so the server
    thread releases each model before it reads the next request: no busy runner left behind."""
    body = {"model": name} if keep_alive is None else {"model": name, "keep_alive": keep_alive}
    reply = http.post("/api/generate", json=body)
    assert reply.status_code == 200, reply.text
    return reply


def resident(http: httpx.Client | OllamaEmulator) -> set[str]:
    if isinstance(http, OllamaEmulator):
        return {str(m["name"]) for m in http.ps_json()}
    return {m["name"] for m in http.get("/api/ps").json()["models"]}


def ask(http: httpx.AsyncClient, name: str, keep_alive: str = "5m") -> Coroutine[Any, Any, httpx.Response]:
    body = {"model": name, "prompt": "x", "stream": False, "keep_alive": keep_alive}
    return http.post("/api/generate", json=body)


async def stream(http: httpx.AsyncClient, name: str, keep_alive: str, first: asyncio.Event) -> str:
    """Stream a reply to its end, setting `first` once the model is loaded and busy."""
    parts = []
    body = {"model": name, "prompt": "x", "keep_alive": keep_alive}
    async with http.stream("POST", "/api/generate", json=body) as reply:
        async for line in reply.aiter_lines():
            if line:
                parts.append(json.loads(line)["response"])
                first.set()
    return "".join(parts)


# -- which model goes ------------------------------------------------------------------


def test_third_model_evicts_the_idle_one_with_the_shortest_keep_alive(emu: OllamaEmulator) -> None:
    with httpx.Client(base_url=emu.url) as http:
        load(http, "a", -1)
        load(http, "b", "5m")
        assert resident(http) == {"a:latest", "b:latest"}  # 3 GiB of 4
        assert load(http, "c", "10m").json()["done_reason"] == "load"
        # b (5 min) goes, not a: forever sorts last (Go's unsigned cast), before names count.
        assert resident(http) == {"a:latest", "c:latest"}
        load(http, "a", "10m")  # loaded already: no load, but now a ties with c on keep_alive
        load(http, "b", "1h")
        assert resident(http) == {"b:latest", "c:latest"}  # the tie goes by name: a before c
        state = http.get("/_emulator/state").json()
    assert state["evictions"] == {"a:latest": 1, "b:latest": 1}
    assert state["load_counts"] == {"a:latest": 1, "b:latest": 2, "c:latest": 1}
    assert state["memory_limit"] == LIMIT and state["max_loaded"] is None


def test_a_load_evicts_as_many_models_as_it_needs(emu: OllamaEmulator) -> None:
    with httpx.Client(base_url=emu.url) as http:
        load(http, "a")
        load(http, "b")
        load(http, "mid")  # 3 GiB: one small model gone still leaves 4.5 GiB
        assert resident(http) == {"mid:latest"}
    assert (emu.eviction_count("a"), emu.eviction_count("b"), emu.eviction_count("mid")) == (1, 1, 0)


async def test_an_idle_model_goes_before_a_busy_one_with_a_shorter_keep_alive(emu: OllamaEmulator) -> None:
    emu.update_model("a", token_delay=0.06)  # a 0.42 s stream
    async with httpx.AsyncClient(base_url=emu.url) as http:
        assert (await http.post("/api/generate", json={"model": "b", "keep_alive": "1h"})).status_code == 200
        busy = asyncio.Event()
        a = asyncio.create_task(stream(http, "a", "1m", busy))
        await busy.wait()
        reply = await ask(http, "c")
        assert reply.status_code == 200 and reply.json()["response"] == REPLY
        assert not a.done()  # c did not wait for a's stream
        assert resident(emu) == {"a:latest", "c:latest"}
        assert await a == REPLY  # and a's stream was never cut
    assert (emu.eviction_count("a"), emu.eviction_count("b")) == (0, 1)


async def test_a_busy_model_is_evicted_only_once_its_stream_ends(emu: OllamaEmulator) -> None:
    emu.update_model("a", token_delay=0.05)  # 0.35 s stream, shortest keep_alive: the one to wait for
    emu.update_model("b", token_delay=0.1)  # 0.7 s stream
    async with httpx.AsyncClient(base_url=emu.url) as http:
        a_busy, b_busy = asyncio.Event(), asyncio.Event()
        a = asyncio.create_task(stream(http, "a", "1m", a_busy))
        b = asyncio.create_task(stream(http, "b", "1h", b_busy))
        await asyncio.gather(a_busy.wait(), b_busy.wait())
        c = asyncio.create_task(ask(http, "c"))
        await asyncio.sleep(0.1)
        # Nothing idle: the load waits, neither stream is touched.
        assert not c.done() and not a.done()
        assert resident(emu) == {"a:latest", "b:latest"} and emu.load_count("c") == 0
        reply = await c
        assert reply.status_code == 200 and reply.json()["response"] == REPLY
        assert not b.done()  # it waited for a, the shortest keep_alive, not for b
        assert resident(emu) == {"b:latest", "c:latest"}
        assert await a == REPLY and await b == REPLY  # both streams complete
    assert (emu.eviction_count("a"), emu.eviction_count("b")) == (1, 0)


# -- what does not fit -----------------------------------------------------------------


def test_a_model_larger_than_the_limit_fails_and_evicts_nothing(emu: OllamaEmulator) -> None:
    with httpx.Client(base_url=emu.url) as http:
        load(http, "a")
        for stream_it in (False, True):  # a scheduler error is a 500 before any stream starts
            reply = http.post("/api/generate", json={"model": "huge", "prompt": "x", "stream": stream_it})
            assert (reply.status_code, reply.json()) == (500, {"error": NO_SYSTEM_MEMORY})
        assert resident(http) == {"a:latest"}
        emu.set_memory_limit(5 * GIB + GIB // 2)
        reply = http.post("/api/chat", json={"model": "huge", "messages": [{"role": "user", "content": "x"}]})
        assert reply.json() == {
            "error": "model requires more system memory (16.0 GiB) than is available (5.5 GiB)"
        }
        assert resident(http) == {"a:latest"} and emu.load_count("huge") == 0
        emu.set_memory_limit(16 * GIB)  # exactly the limit fits, once a is gone
        load(http, "huge")
        assert resident(http) == {"huge:latest"}
    assert emu.state()["evictions"] == {"a:latest": 1}


def test_ps_shows_partial_offload_and_the_limit_counts_whole_sizes() -> None:
    specs = {"part": ModelSpec(size=6 * GIB, size_vram=2 * GIB), "full": ModelSpec(size=3 * GIB)}
    with OllamaEmulator(specs) as emu, httpx.Client(base_url=emu.url) as http:
        load(http, "part")
        load(http, "full")
        sizes = {m["name"]: (m["size"], m["size_vram"]) for m in http.get("/api/ps").json()["models"]}
        assert sizes == {"part:latest": (6 * GIB, 2 * GIB), "full:latest": (3 * GIB, 3 * GIB)}
        tags = {m["name"]: m["size"] for m in http.get("/api/tags").json()["models"]}
        assert tags == {"part:latest": 6 * GIB, "full:latest": 3 * GIB}
        emu.set_memory_limit(8 * GIB)  # 5 GiB on the GPU would fit; 9 GiB in all does not
        assert len(resident(http)) == 2  # a lower limit unloads nothing until a load needs room
        emu.expire("full")
        load(http, "full", "1m")
        assert resident(http) == {"full:latest"}
    assert emu.eviction_count("part") == 1


# -- concurrency -----------------------------------------------------------------------


async def test_concurrent_requests_during_an_eviction_share_one_load(emu: OllamaEmulator) -> None:
    emu.update_model("c", load_delay=0.2)
    async with httpx.AsyncClient(base_url=emu.url) as http:
        for name in ("a", "b"):
            assert (await http.post("/api/generate", json={"model": name})).status_code == 200
        started = time.monotonic()
        replies = await asyncio.gather(*(ask(http, "c") for _ in range(5)))
        elapsed = time.monotonic() - started
    assert [r.json()["response"] for r in replies] == [REPLY] * 5
    assert emu.load_count("c") == 1 and 0.2 <= elapsed < 0.8
    assert emu.state()["evictions"] == {"a:latest": 1}  # one eviction, not one per request
    assert resident(emu) == {"b:latest", "c:latest"}


async def test_two_models_needing_room_at_once_load_one_after_the_other(emu: OllamaEmulator) -> None:
    # Room for three: loading c and d side by side would each see room and overcommit.
    emu.set_memory_limit(3 * SMALL)
    for name in ("c", "d"):
        emu.update_model(name, load_delay=0.15)
    async with httpx.AsyncClient(base_url=emu.url) as http:
        for name, keep_alive in (("a", "1m"), ("b", "2m")):
            assert (
                await http.post("/api/generate", json={"model": name, "keep_alive": keep_alive})
            ).is_success
        started = time.monotonic()
        replies = await asyncio.gather(ask(http, "c", "1h"), ask(http, "d", "1h"))
        elapsed = time.monotonic() - started
    assert [r.status_code for r in replies] == [200, 200]
    assert elapsed >= 0.3  # Ollama loads one model at a time
    assert resident(emu) == {"b:latest", "c:latest", "d:latest"}
    assert emu.state()["evictions"] == {"a:latest": 1}
    assert (emu.load_count("c"), emu.load_count("d")) == (1, 1)


async def test_stop_wakes_a_load_waiting_for_a_busy_model(emu: OllamaEmulator) -> None:
    emu.set_max_loaded(1)
    emu.update_model("a", stall_after=0)  # busy until the client leaves or the server stops
    async with httpx.AsyncClient(base_url=emu.url, timeout=5) as http:
        a = asyncio.create_task(http.post("/api/generate", json={"model": "a", "prompt": "x"}))
        for _ in range(100):
            if resident(emu):
                break
            await asyncio.sleep(0.01)
        c = asyncio.create_task(ask(http, "c"))
        await asyncio.sleep(0.1)
        assert not c.done() and resident(emu) == {"a:latest"}
        stopping = time.monotonic()
        await asyncio.to_thread(emu.stop)
        assert time.monotonic() - stopping < 0.5  # the waiting load gave up; nothing hung
        outcomes = await asyncio.gather(a, c, return_exceptions=True)
    for outcome in outcomes:  # cut off, or told it is shutting down
        assert isinstance(outcome, httpx.HTTPError | httpx.Response), outcome
        assert not isinstance(outcome, httpx.Response) or outcome.status_code == 500, outcome.text
    assert emu.load_count("c") == 0


# -- max_loaded and the control surfaces -----------------------------------------------


def test_max_loaded_counts_models_not_bytes() -> None:
    with OllamaEmulator(models(), max_loaded=2) as emu, httpx.Client(base_url=emu.url) as http:
        load(http, "huge", "1m")  # no memory limit: 16 GiB loads
        load(http, "a")
        load(http, "b")
        assert resident(http) == {"a:latest", "b:latest"}  # huge had the shortest keep_alive
        load(http, "c")  # a and b tie on the default 5 min: a goes by name
        assert resident(http) == {"b:latest", "c:latest"}
    assert emu.state()["evictions"] == {"huge:latest": 1, "a:latest": 1}


def test_http_control_surface_sets_limits_and_reset_restores_them(emu: OllamaEmulator) -> None:
    with httpx.Client(base_url=emu.url) as http:
        server = "/_emulator/server"
        assert http.post(server, json={"proxy_error": list(PROXY_502)}).status_code == 200
        reply = http.post(server, json={"max_loaded": 1})
        assert reply.json() == {"proxy_error": list(PROXY_502), "memory_limit": LIMIT, "max_loaded": 1}
        for bad in ({"max_loaded": 0}, {"memory_limit": -1}, {"memory_limit": "4GiB"}, {"max_loaded": True}):
            assert http.post(server, json=bad).status_code == 400, bad
        assert http.post(server, json={"proxy_error": None, "memory_limit": None}).json() == {
            "proxy_error": None,
            "memory_limit": None,
            "max_loaded": 1,
        }
        load(http, "huge")
        load(http, "a")
        state = http.get("/_emulator/state").json()
        assert (state["loaded"], state["evictions"]) == (["a:latest"], {"huge:latest": 1})
        assert (state["memory_limit"], state["max_loaded"]) == (None, 1)
        assert state["models"]["a:latest"]["size_vram"] is None
        http.post("/_emulator/reset")
        state = http.get("/_emulator/state").json()
        assert (state["memory_limit"], state["max_loaded"], state["evictions"]) == (LIMIT, None, {})


def test_standalone_process_takes_the_limits() -> None:
    command = [sys.executable, "-m", "tests.emulators.ollama", "--port", "0"]
    limits = ["--memory-limit", str(LIMIT), "--max-loaded", "2"]
    with subprocess.Popen([*command, *limits], cwd=REPO, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip().rsplit(" ", 1)[1]
            state = httpx.get(f"{url}/_emulator/state").json()
            assert (state["memory_limit"], state["max_loaded"]) == (LIMIT, 2)
        finally:
            proc.terminate()
        assert proc.wait(5) == 0
