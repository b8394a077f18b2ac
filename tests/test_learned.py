"""The learned layers' parts: hashed words, the ridge classifier, their training data and cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from config import AppConfig, TaskRoute, load_config
from understanding.embedding import Embedder
from understanding.features import BUCKETS, lexical_vector, words
from understanding.fitted import Fitted, cache_dir, fit_key, fitted_layers, save
from understanding.linear import RidgeClassifier
from understanding.semantic import SemanticIndex
from understanding.training import TRAIN_PATH, load_followups, training_examples, training_followups
from understanding.turn_model import TurnModel

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def config() -> AppConfig:
    return load_config(env={})


def test_words_are_lowercased_and_lightly_stemmed() -> None:
    assert words("JIRA Tickets, tickets and a ticket") == ["jira", "ticket", "ticket", "and", "a", "ticket"]
    assert words("ERD: users") == ["erd", "user"]  # short words keep their ending


def test_lexical_vectors_are_unit_length_and_the_same_in_every_process() -> None:
    vector = lexical_vector("ERD for a blog")
    assert vector.shape == (BUCKETS,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-6
    # Python's own hash() is salted per process; the buckets must not be.
    code = "from understanding.features import lexical_vector; print(lexical_vector('ERD for a blog').nonzero()[0].tolist())"
    runs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    }
    assert runs == {str(vector.nonzero()[0].tolist()) + "\n"}
    assert not lexical_vector("!!!").any()


def test_lead_words_count_apart_from_the_same_words_later() -> None:
    assert not np.array_equal(lexical_vector("add a table", lead=True), lexical_vector("add a table"))


def test_a_class_with_few_examples_is_not_drowned_by_a_large_one() -> None:
    rng = np.random.default_rng(0)
    big = rng.normal(0.0, 1.0, (200, 8)) + np.array([3.0, 0, 0, 0, 0, 0, 0, 0])
    small = rng.normal(0.0, 1.0, (4, 8)) + np.array([0, 3.0, 0, 0, 0, 0, 0, 0])
    features = np.vstack([big, small]).astype(np.float32)
    model = RidgeClassifier.fit(features, ["big"] * 200 + ["small"] * 4, penalty=1.0)
    probe = np.array([0, 3.0, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    assert max(model.scores(probe).items(), key=lambda kv: kv[1])[0] == "small"
    ranked = model.ranked(probe, temperature=0.15)
    assert ranked[0][0] == "small" and abs(sum(p for _, p in ranked) - 1.0) < 1e-6


def test_a_classifier_needs_examples() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RidgeClassifier.fit(np.zeros((0, 4), np.float32), [], penalty=1.0)


def test_training_examples_put_the_configs_first_and_skip_unknown_types(
    config: AppConfig, tmp_path: Path
) -> None:
    data = tmp_path / "train.yaml"
    data.write_text(
        "requests:\n"
        '  - {text: "erd for a zoo", task: erd}\n'
        '  - {text: "a haiku", task: poem}\n'
        '  - {text: "' + config.routing.tasks["erd"].examples[0] + '", task: erd}\n',
        encoding="utf-8",
    )
    got = training_examples(config, data)
    assert got["erd"][: len(config.routing.tasks["erd"].examples)] == config.routing.tasks["erd"].examples
    assert got["erd"][-1] == "erd for a zoo" and len(set(got["erd"])) == len(got["erd"])  # no duplicate
    assert "poem" not in got
    # A type the config adds learns from its own examples alone.
    poem = TaskRoute(model="m", validator="documentation", examples=("a haiku about rain",))
    taught = config.model_copy(
        update={
            "routing": config.routing.model_copy(update={"tasks": {**config.routing.tasks, "poem": poem}})
        }
    )
    assert training_examples(taught, data)["poem"] == ("a haiku about rain", "a haiku")


def test_the_shipped_training_set_is_large_and_separate_from_evaluation(config: AppConfig) -> None:
    examples = training_examples(config)
    assert all(len(texts) >= 50 for texts in examples.values()), {t: len(x) for t, x in examples.items()}
    followups = training_followups(config)
    assert len(followups) >= 400 and {c.split for c in followups} == {"train"}
    # No evaluation request or follow-up is trained on.
    evaluation = Path(TRAIN_PATH).with_name("requests.yaml").read_text(encoding="utf-8").lower()
    trained = {t.lower() for texts in examples.values() for t in texts}
    leaked = [t for t in trained if f'"{t}"' in evaluation]
    assert not leaked, leaked[:5]
    heldout = {c.text.lower() for c in load_followups(Path(TRAIN_PATH).with_name("followups.yaml"), "all")}
    assert not heldout & {c.text.lower() for c in followups}


# -- the cache of fits ----------------------------------------------------------------------------


def tiny_embedder() -> Embedder:
    return Embedder(np.eye(16, dtype=np.float32), lambda text: [ord(c) % 16 for c in text[:12]])


def tiny_fit(embedder: Embedder, calls: list[int]) -> Fitted:
    calls.append(1)
    index = SemanticIndex.fit(
        embedder, {"erd": ("erd for a shop", "tables of a zoo"), "code": ("python function",)}
    )
    kinds = RidgeClassifier.fit(np.eye(2, dtype=np.float32), ["new", "revision"], penalty=1.0)
    return Fitted(index, TurnModel(index.vector, ("asks", "edits"), kinds, None))


def test_a_fit_is_made_once_then_loaded_from_disk(config: AppConfig, tmp_path: Path) -> None:
    calls: list[int] = []
    first_embedder, second_embedder = tiny_embedder(), tiny_embedder()
    first = fitted_layers(config, first_embedder, lambda: tiny_fit(first_embedder, calls), directory=tmp_path)
    again = fitted_layers(config, first_embedder, lambda: tiny_fit(first_embedder, calls), directory=tmp_path)
    assert again is first and calls == [1]  # the process's own copy
    (saved,) = tmp_path.glob("understanding-*.npz")
    # Another process (another embedder object) reads the arrays back: same answers, no fit.
    loaded = fitted_layers(
        config, second_embedder, lambda: tiny_fit(second_embedder, calls), directory=tmp_path
    )
    assert calls == [1] and loaded is not first
    assert loaded.index.probabilities("erd for a farm") == pytest.approx(
        first.index.probabilities("erd for a farm")
    )
    assert loaded.turns is not None and loaded.turns.signal_names == ("asks", "edits")
    assert loaded.turns.targets is None
    # A corrupt file is refitted and replaced, not trusted.
    saved.write_bytes(b"not an npz")
    third = tiny_embedder()
    fitted_layers(config, third, lambda: tiny_fit(third, calls), directory=tmp_path)
    assert calls == [1, 1]
    with np.load(saved, allow_pickle=False) as data:
        assert "semantic_weights" in data


def test_an_unwritable_cache_costs_only_a_refit(config: AppConfig, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")
    calls: list[int] = []
    embedder = tiny_embedder()
    got = fitted_layers(config, embedder, lambda: tiny_fit(embedder, calls), directory=blocked / "cache")
    assert calls == [1] and got.index.tasks == ("erd", "code")


def test_a_fit_written_elsewhere_is_loaded_and_a_failed_one_is_made_here(
    config: AppConfig, tmp_path: Path
) -> None:
    calls: list[int] = []
    embedder = tiny_embedder()

    def child(path: Path) -> bool:  # stands in for the child process: writes the file, says so
        save(path, tiny_fit(tiny_embedder(), []))
        return True

    got = fitted_layers(
        config, embedder, lambda: tiny_fit(embedder, calls), directory=tmp_path / "a", elsewhere=child
    )
    assert calls == [] and got.index.tasks == ("erd", "code")
    other = tiny_embedder()  # another process's: the first fit is not in its memory
    got = fitted_layers(
        config,
        other,
        lambda: tiny_fit(other, calls),
        directory=tmp_path / "b",
        elsewhere=lambda _: False,
    )
    assert calls == [1] and got.index.tasks == ("erd", "code")


def test_a_cold_fit_spends_its_cpu_in_a_child_process(tmp_path: Path) -> None:
    """The real fit, from an empty cache: the parent only loads the embedding model and the file."""
    code = """
import resource, sys
from config import load_config
from understanding.classifier import TaskClassifier
def cpu(who): return (lambda u: u.ru_utime + u.ru_stime)(resource.getrusage(who))
classifier = TaskClassifier(load_config(env={"MODELYARD_DATA_DIR": sys.argv[1]}))
assert classifier.wait_ready(170), classifier.load_error
print(cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN), classifier.task_probabilities("ERD for a zoo")["erd"])
"""
    env = {**os.environ, "MODELYARD_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=200,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    own, children, erd = (float(x) for x in run.stdout.split())
    assert children > 2.0 and own < children / 2, (own, children)  # the fit ran in the child
    assert erd > 0.5 and len(list((tmp_path / "cache").glob("understanding-*.npz"))) == 1


def test_the_key_changes_with_what_a_fit_depends_on(config: AppConfig, tmp_path: Path) -> None:
    train = tmp_path / "train.yaml"
    train.write_text("requests: []\n", encoding="utf-8")
    key = fit_key(config, train)
    assert fit_key(config, train) == key
    more = config.model_copy(
        update={"routing": config.routing.model_copy(update={"semantic_min_confidence": 0.5})}
    )
    assert fit_key(more, train) != key
    train.write_text("requests: [{text: a, task: erd}]\n", encoding="utf-8")
    assert fit_key(config, train) != key


def test_the_cache_folder_follows_the_environment() -> None:
    assert cache_dir({"MODELYARD_CACHE_DIR": "/x/y"}) == Path("/x/y")
    assert cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/modelyard")
