"""JIRA task-list check; the pydantic models double as the cloud JSON schema."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from validators.extract import encoding_error, extract_artifact
from validators.verdict import Verdict

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
JIRA_LANGUAGES = ("json",)
_START_RE = re.compile(r"^\s*[\[{]")
_MAX_REPORTED_ERRORS = 5


class JiraTask(BaseModel):
    """One JIRA task as the model must produce it; unknown keys are dropped."""

    model_config = ConfigDict(extra="ignore")

    summary: NonEmptyStr
    description: NonEmptyStr
    acceptance_criteria: list[str] = Field(default_factory=list)
    story_points: int | None = None
    type: str | None = None
    priority: str | None = None

    @field_validator("acceptance_criteria", mode="before")
    @classmethod
    def _single_criterion(cls, value: object) -> object:
        # Models often give one criterion as a bare string; accept it.
        return [value] if isinstance(value, str) else value


class JiraTaskList(BaseModel):
    """Top-level object form ``{"tasks": [...]}``: what structured output asks the models for."""

    tasks: list[JiraTask] = Field(min_length=1)

    @classmethod
    def inline_schema(cls) -> dict[str, Any]:
        """The JSON schema with every ``$ref`` inlined.

        Ollama turns ``format`` into a grammar and providers vary in how they resolve
        ``$defs``; a self-contained schema means the same thing to all of them.
        """
        schema = cls.model_json_schema()
        definitions = schema.pop("$defs", {})

        def resolve(node: Any) -> Any:
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/$defs/"):
                    return resolve(definitions[ref.removeprefix("#/$defs/")])
                return {key: resolve(value) for key, value in node.items()}
            if isinstance(node, list):
                return [resolve(item) for item in node]
            return node

        resolved: dict[str, Any] = resolve(schema)
        return resolved


def _json_error(artifact: str, exc: json.JSONDecodeError) -> str:
    where = f"invalid JSON at line {exc.lineno} column {exc.colno}"
    before = artifact[: exc.pos].rstrip()
    # json's own message for a trailing comma ("Expecting value") is cryptic.
    if exc.pos < len(artifact) and artifact[exc.pos] in "]}" and before.endswith(","):
        return f"{where}: trailing comma before '{artifact[exc.pos]}'"
    return f"{where}: {exc.msg}"


def _task_items(data: object) -> list[object] | str:
    """Return the task list, or an error message for the wrong top-level shape."""
    if isinstance(data, dict):
        tasks = data.get("tasks")
        if not isinstance(tasks, list):
            return 'expected a JSON list of tasks or an object with a "tasks" list'
        data = tasks
    if not isinstance(data, list):
        return f"expected a JSON list of tasks, got {type(data).__name__}"
    if not data:
        return "the task list is empty; expected at least one task"
    return list(data)


def _describe(index: int, exc: ValidationError) -> list[str]:
    messages = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        if error["type"] == "missing":
            detail = f"field '{field}' missing"
        elif error["type"] == "string_too_short":
            detail = f"field '{field}' is empty"
        else:
            detail = f"field '{field}': {error['msg']}"
        messages.append(f"task {index}: {detail}")
    return messages


def _validate_tasks(items: list[object]) -> list[JiraTask] | str:
    tasks: list[JiraTask] = []
    problems: list[str] = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            problems.append(f"task {index}: expected an object, got {type(item).__name__}")
            continue
        try:
            tasks.append(JiraTask.model_validate(item))
        except ValidationError as exc:
            problems.extend(_describe(index, exc))
    if problems:
        shown = problems[:_MAX_REPORTED_ERRORS]
        more = len(problems) - len(shown)
        return "; ".join(shown) + (f"; and {more} more" if more else "")
    return tasks


def check_jira(text: str) -> Verdict:
    """Check a JIRA task list: JSON list (or ``{"tasks": [...]}``) of :class:`JiraTask`.

    Task numbers in errors are 1-based. A valid verdict's artifact is the
    normalised list as JSON (indent 2, None fields omitted).
    """
    artifact = extract_artifact(text, JIRA_LANGUAGES, _START_RE)
    if not artifact:
        return Verdict.fail("", "empty output; expected a JSON list of JIRA tasks")
    unencodable = encoding_error(artifact)
    if unencodable is not None:
        return Verdict.fail(artifact, unencodable[0], line=unencodable[1])
    try:
        data = json.loads(artifact)
    except json.JSONDecodeError as exc:
        return Verdict.fail(artifact, _json_error(artifact, exc))
    except ValueError as exc:  # an integer of over 4300 digits
        return Verdict.fail(artifact, f"invalid JSON: {exc}")
    except RecursionError:
        return Verdict.fail(artifact, "invalid JSON: it is nested too deeply to parse")
    items = _task_items(data)
    if isinstance(items, str):
        return Verdict.fail(artifact, items)
    tasks = _validate_tasks(items)
    if isinstance(tasks, str):
        return Verdict.fail(artifact, tasks)
    normalised = [task.model_dump(mode="json", exclude_none=True) for task in tasks]
    return Verdict.ok(json.dumps(normalised, indent=2, ensure_ascii=False))
