"""Artifact validators: extract the artifact from a model answer and judge it."""

from config.schema import ValidatorName
from validators.code import check_code
from validators.documentation import check_documentation
from validators.extract import FencedBlock, extract_artifact, find_fences
from validators.html import check_html
from validators.jira import JiraTask, JiraTaskList, check_jira
from validators.mermaid import check_mermaid
from validators.registry import VALIDATOR_NAMES, Validators
from validators.verdict import Verdict

__all__ = [
    "VALIDATOR_NAMES",
    "FencedBlock",
    "JiraTask",
    "JiraTaskList",
    "ValidatorName",
    "Validators",
    "Verdict",
    "check_code",
    "check_documentation",
    "check_html",
    "check_jira",
    "check_mermaid",
    "extract_artifact",
    "find_fences",
]
