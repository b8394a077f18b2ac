"""Edit a `models.yaml` the way a person would: every comment, quote and key order kept.

The document is ruamel.yaml's round-trip tree; the edits change it in memory (no I/O) and
`write_config` is the only function that touches the disk: it refuses a text that
`load_config` would not load, and replaces the file atomically after keeping a backup.
"""

from __future__ import annotations

import copy
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter

from config.loader import ConfigError, load_config
from providers.ollama_http import canonical

Change = Literal["model", "alternate", "task", "none"]


class EditError(ValueError):
    """An edit the document cannot take (unknown or duplicate task, odd shape); says why."""


@dataclass(frozen=True)
class Edit:
    """What one edit did to one task."""

    task: str
    change: Change
    model: str
    """The task's model after the edit."""
    previous: str | None
    """The task's model before the edit (None for a new task)."""
    alternates: tuple[str, ...]


def _represent_null(representer: RoundTripRepresenter, _: None) -> ScalarNode:
    # ruamel writes None as nothing at all; the shipped file spells it `null`.
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _yaml() -> YAML:
    yaml = YAML()  # round-trip mode
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long keyword list or comment line
    yaml.indent(mapping=2, sequence=4, offset=2)  # the shipped file's layout
    yaml.representer.add_representer(type(None), _represent_null)
    return yaml


def load_document(text: str) -> CommentedMap:
    """The round-trip tree of a config text (EditError when it is not a YAML mapping)."""
    try:
        doc = _yaml().load(text)
    except YAMLError as exc:
        raise EditError(f"not valid YAML: {exc}") from None
    if not isinstance(doc, CommentedMap):
        raise EditError("expected a mapping at the top level")
    return doc


def dump_document(doc: CommentedMap) -> str:
    """The text of a round-trip tree."""
    out = io.StringIO()
    _yaml().dump(doc, out)
    return out.getvalue()


def same_model(a: str, b: str) -> bool:
    """Whether two names are one Ollama model: "mistral" is "mistral:latest", in any case."""
    return canonical(a.strip()).casefold() == canonical(b.strip()).casefold()


def task_names(doc: CommentedMap) -> list[str]:
    """The task types of `routing.tasks`, in file order."""
    return [str(name) for name in _tasks(doc)]


def set_model(doc: CommentedMap, task: str, model: str) -> Edit:
    """Route `task` to `model`; the previous model becomes its first alternate."""
    route = _route(doc, task)
    previous = str(route["model"])
    if same_model(previous, model):
        return Edit(task, "none", previous, previous, _alternates_of(route))
    alternates = _alternates_seq(route)

    def reorder() -> None:
        # The new model is no longer an alternate, and the previous one leads them, once.
        for i in reversed(range(len(alternates))):
            if same_model(str(alternates[i]), model) or same_model(str(alternates[i]), previous):
                del alternates[i]
        alternates.insert(0, previous)

    _keeping_trailer(alternates, reorder)
    route["model"] = model
    return Edit(task, "model", model, previous, _alternates_of(route))


def add_alternate(doc: CommentedMap, task: str, model: str) -> Edit:
    """Append `model` to `task`'s alternates (nothing when it already serves the task)."""
    route = _route(doc, task)
    current = str(route["model"])
    if same_model(current, model) or any(same_model(a, model) for a in _alternates_of(route)):
        return Edit(task, "none", current, current, _alternates_of(route))
    alternates = _alternates_seq(route)
    _keeping_trailer(alternates, lambda: alternates.append(model))
    return Edit(task, "alternate", current, current, _alternates_of(route))


def add_task(
    doc: CommentedMap,
    task: str,
    model: str,
    *,
    validator: str,
    examples: Sequence[str] = (),
    keywords: Sequence[str] = (),
) -> Edit:
    """Append a new task type served by `model`, checked by `validator`."""
    tasks = _tasks(doc)
    if task in tasks:
        raise EditError(f"task type {task!r} exists already")
    route = CommentedMap()
    route["model"] = model
    route["validator"] = validator
    route["keywords"] = _flow(keywords)
    # Examples one per line like the shipped tasks; `[]` says where they go when there are none.
    route["examples"] = CommentedSeq(examples) if examples else _flow(())
    _keeping_trailer(tasks, lambda: tasks.__setitem__(task, route))
    return Edit(task, "task", model, None, ())


def write_config(path: Path, text: str, *, backup: bool = True) -> Path | None:
    """Replace `path` with `text` atomically; return the backup of its previous content.

    The text is written to a temporary file beside the target and loaded with `load_config`
    first: a text that would not load raises ConfigError and nothing is written. A symlinked
    config (a dotfiles checkout) is written through, not replaced by a plain file.
    """
    target = path.resolve() if path.exists() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        try:
            load_config(tmp, env={})  # env={}: only the file itself is judged
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(str(tmp), str(path))) from None
        saved = None
        if target.exists():
            shutil.copymode(target, tmp)  # mkstemp made it 0600
            if backup:
                saved = target.with_name(target.name + ".bak")
                shutil.copy2(target, saved)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return saved


# -- helpers ------------------------------------------------------------------------------------


def _tasks(doc: CommentedMap) -> CommentedMap:
    routing = doc.get("routing")
    tasks = routing.get("tasks") if isinstance(routing, CommentedMap) else None
    if not isinstance(tasks, CommentedMap):
        raise EditError("routing.tasks: expected a mapping of task types")
    return tasks


def _route(doc: CommentedMap, task: str) -> CommentedMap:
    tasks = _tasks(doc)
    route = tasks.get(task)
    if route is None:
        raise EditError(f"unknown task type {task!r}; expected one of: {', '.join(task_names(doc))}")
    if not isinstance(route, CommentedMap) or "model" not in route:
        raise EditError(f"routing.tasks.{task}: expected a mapping with a model")
    return route


def _alternates_of(route: CommentedMap) -> tuple[str, ...]:
    value = route.get("alternates") or ()
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


def _alternates_seq(route: CommentedMap) -> CommentedSeq:
    """The task's `alternates:` list, created right after `model:` when it has none."""
    value = route.get("alternates")
    if isinstance(value, CommentedSeq):
        return value
    if value is not None:
        raise EditError(f"alternates: expected a list of models, got {value!r}")
    seq = _flow(())
    at = list(route).index("model") + 1
    _keeping_trailer(route, lambda: route.insert(at, "alternates", seq))
    return seq


def _flow(items: Iterable[str]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


# ruamel keeps whatever follows a block's last line (blank lines, the comments before the next
# key) in the comment slot of its deepest last entry; an entry added at the end must take it
# over, or it would land between the old last entry and the new one.


def _keeping_trailer(node: CommentedMap | CommentedSeq, change: Callable[[], object]) -> None:
    """Run `change` on `node` with the lines after its end kept after its (new) end."""
    trailer = _take_trailer(node)
    change()
    slot = _last_slot(node)
    if trailer is None or slot is None:
        return
    own = slot[0][slot[1]]
    if own is None:
        slot[0][slot[1]] = trailer
    else:  # the new last line has an end-of-line comment of its own: the trailer follows it
        own.value = str(own.value).rstrip("\n") + trailer.value


def _last_slot(node: Any) -> tuple[list[Any], int] | None:
    """The comment list and index that hold the text after `node`'s last line."""
    if isinstance(node, CommentedMap) and node and not node.fa.flow_style():
        key = list(node)[-1]
        if (inner := _last_slot(node[key])) is not None:
            return inner
        return node.ca.items.setdefault(key, [None, None, None, None]), 2
    if isinstance(node, CommentedSeq) and node and not node.fa.flow_style():
        if (inner := _last_slot(node[-1])) is not None:
            return inner
        return node.ca.items.setdefault(len(node) - 1, [None, None, None, None]), 0
    return None


def _take_trailer(node: CommentedMap | CommentedSeq) -> Any | None:
    """Detach the lines after `node`'s last line, leaving that line's own end-of-line comment."""
    slot = _last_slot(node)
    token = slot[0][slot[1]] if slot is not None else None
    if slot is None or token is None:
        return None
    own, _, rest = str(token.value).partition("\n")
    if not rest:
        return None
    trailer = copy.copy(token)
    trailer.value = "\n" + rest
    if own.strip():
        token.value = own + "\n"
    else:
        slot[0][slot[1]] = None
    return trailer
