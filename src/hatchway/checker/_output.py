"""Output formats: text (like ruff), json, SARIF 2.1.0 and GitHub Actions workflow commands."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hatchway._version import __version__
from hatchway.checker._model import PARSE_ERROR, RULES, docs_page
from hatchway.checker._runner import Result

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "hatchway-check"


def text(result: Result) -> str:
    lines = [f"{f.path}:{f.line}:{f.col}: {f.code} {f.message}" for f in result.findings]
    if result.fixed:
        lines.append(f"Fixed {len(result.fixed)} finding{'s' * (len(result.fixed) != 1)}.")
    if result.findings:
        codes = sorted({f.code for f in result.findings if f.code != PARSE_ERROR})
        count = len(result.findings)
        warnings = sum(f.severity == "warning" for f in result.findings)
        kinds = f" ({_count(count - warnings, 'error')}, {_count(warnings, 'warning')})" if warnings else ""
        lines.append(f"Found {count} finding{'s' * (count != 1)}{kinds} in {_files(result.files)}.")
        if warnings and result.fail_on == "error":
            lines.append("Warnings do not fail the check; pass --fail-on warning to make them fail.")
        fixable = sum(f.fixable for f in result.findings)
        if fixable:
            lines.append(f"{fixable} fixable with --fix.")
        if codes:
            lines.append("Rule docs: " + ", ".join(docs_page(c) for c in codes))
            # The docs directory is not installed; the same pages ship inside the package.
            lines.append("Offline: " + ", ".join(f"hatchway explain {c}" for c in codes))
    else:
        lines.append(f"All checks passed ({_files(result.files)}).")
    return "\n".join(lines) + "\n"


def _files(count: int) -> str:
    return _count(count, "file")


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def as_json(result: Result) -> str:
    items = [
        {
            "code": f.code,
            "message": f.message,
            "severity": f.severity,
            "filename": f.path,
            "location": {"row": f.line, "column": f.col},
            "end_location": {"row": f.end_line, "column": f.end_col} if f.end_line else None,
            "fix": {"edits": [{"start": e.start, "end": e.end, "content": e.text} for e in f.edits]}
            if f.edits
            else None,
            "url": docs_page(f.code),
        }
        for f in result.findings
    ]
    return json.dumps(items, indent=2) + "\n"


def sarif(result: Result) -> str:
    codes = sorted(RULES)
    rules: list[dict[str, Any]] = [
        {
            "id": code,
            "name": RULES[code].name,
            "shortDescription": {"text": RULES[code].summary},
            "help": {"text": f"See {RULES[code].docs}"},
            "defaultConfiguration": {"level": RULES[code].severity},
        }
        for code in codes
    ]
    results: list[dict[str, Any]] = []
    for f in result.findings:
        region: dict[str, int] = {"startLine": f.line, "startColumn": f.col}
        if f.end_line and f.end_col:
            region.update(endLine=f.end_line, endColumn=f.end_col)
        entry: dict[str, Any] = {
            "ruleId": f.code,
            "level": f.severity,
            "message": {"text": f.message},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": _uri(f.path)}, "region": region}}
            ],
        }
        if f.code in RULES:
            entry["ruleIndex"] = codes.index(f.code)
        results.append(entry)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/hatchway/",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def github(result: Result) -> str:
    lines = []
    for f in result.findings:
        props = f"file={_prop(f.path)},line={f.line},col={f.col}"
        if f.end_line and f.end_col:
            props += f",endLine={f.end_line},endColumn={f.end_col}"
        props += f",title={_prop(f.code)}"
        lines.append(f"::{f.severity} {props}::{_data(f'{f.code} {f.message}')}")
    return "".join(line + "\n" for line in lines)


def _uri(path: str) -> str:
    # SARIF wants URIs: relative paths stay relative to the repository (what code scanning expects).
    if os.path.isabs(path):
        return Path(path).as_uri()
    return quote(path.replace("\\", "/").removeprefix("./"))


def _data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(value: str) -> str:
    return _data(value).replace(":", "%3A").replace(",", "%2C")


FORMATS: dict[str, Callable[[Result], str]] = {
    "text": text,
    "json": as_json,
    "sarif": sarif,
    "github": github,
}
