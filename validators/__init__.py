"""Artifact validators: extract the artifact from a model answer and judge it."""

from config.schema import ValidatorName
from validators.code import check_code, language_from_request
from validators.documentation import check_documentation
from validators.extract import FencedBlock, extract_artifact, find_fences
from validators.html import check_html
from validators.jira import JiraTask, JiraTaskList, check_jira
from validators.mermaid import MermaidValidator
from validators.mermaid_header import check_mermaid_header, extract_mermaid
from validators.mermaid_pool import MermaidWorker, ParseFailure, ParseResult, shared_worker
from validators.registry import VALIDATOR_NAMES, Validators
from validators.verdict import Verdict

__all__ = [
    "VALIDATOR_NAMES",
    "FencedBlock",
    "JiraTask",
    "JiraTaskList",
    "MermaidValidator",
    "MermaidWorker",
    "ParseFailure",
    "ParseResult",
    "ValidatorName",
    "Validators",
    "Verdict",
    "check_code",
    "check_documentation",
    "check_html",
    "check_jira",
    "check_mermaid_header",
    "extract_artifact",
    "extract_mermaid",
    "find_fences",
    "language_from_request",
    "shared_worker",
]
