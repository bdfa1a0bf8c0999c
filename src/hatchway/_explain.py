"""`hatchway explain CODE`: an error catalogue entry or a checker rule page, read from docs shipped in the package.

The pages are the repository's own ``docs/errors.md``, ``docs/checker.md`` and ``docs/rules/HW*.md``. A wheel
carries a build-time copy of them in ``hatchway/_docs/`` (setup.py's ``build_py``); an editable install or a
source checkout reads ``docs/`` beside ``src/`` instead. Either way there is one copy of the text in git.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: The directory, inside the installed package, that setup.py fills with the pages below.
PACKAGED_DOCS = Path(__file__).with_name("_docs")
#: ``docs/`` of the checkout an editable install points into (``src/hatchway/`` -> ``docs/``).
CHECKOUT_DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
#: What the package ships, relative to ``docs/`` (setup.py copies these; a test checks the copy).
SHIPPED = ("errors.md", "checker.md", "rules/HW*.md")

CODE = re.compile(r"HW\d{3}")
_ENTRY = re.compile(r"^## (HW\d{3})\s*$", re.MULTILINE)
_TABLE_ROW = re.compile(r"^\| \[(HW\d{3})\]\([^)]*\) \|(.*)\|\s*$", re.MULTILINE)
_PARSE_ERROR = "HW000"


class UnknownCode(LookupError):
    """The code is neither in the error catalogue nor a checker rule."""


class DocsMissing(FileNotFoundError):
    """Neither the packaged copy of the docs nor a checkout's ``docs/`` could be found."""


@dataclass(frozen=True)
class Explanation:
    """One code's page: where it comes from (relative to ``docs/``) and its Markdown text."""

    code: str
    source: str
    text: str


def docs_root() -> Path:
    """The directory holding ``errors.md`` and ``rules/``: the packaged copy, else the checkout's ``docs/``."""
    for root in (PACKAGED_DOCS, CHECKOUT_DOCS):
        if (root / "errors.md").is_file():
            return root
    raise DocsMissing(
        f"hatchway's documentation is not installed (looked in {PACKAGED_DOCS} and {CHECKOUT_DOCS}); "
        "reinstall hatchway from a wheel or sdist"
    )


def _catalogue(root: Path) -> dict[str, str]:
    """The sections of errors.md, by code: from its ``## HWxxx`` heading up to the next heading of that level."""
    text = (root / "errors.md").read_text(encoding="utf-8")
    heads = list(_ENTRY.finditer(text))
    sections: dict[str, str] = {}
    for head, after in zip(heads, [*heads[1:], None], strict=True):
        end = after.start() if after else len(text)
        following = re.search(r"^#{1,2} ", text[head.end() : end], re.MULTILINE)
        if following:
            end = head.end() + following.start()
        body = text[head.end() : end].strip()
        body = body.removesuffix("---").rstrip()  # a horizontal rule that separates entries
        sections[head.group(1)] = body + "\n"
    return sections


def _summaries(root: Path) -> dict[str, str]:
    """The catalogue's table at the top: code -> "Class: in short"."""
    text = (root / "errors.md").read_text(encoding="utf-8")
    summaries = {}
    for match in _TABLE_ROW.finditer(text):
        cells = [cell.strip().replace("`", "") for cell in match.group(2).split("|")]
        summaries[match.group(1)] = ": ".join(cell for cell in cells if cell)
    return summaries


def _parse_error_note(root: Path) -> str:
    """HW000 is not a rule: it is explained by the paragraph of checker.md that names it."""
    text = (root / "checker.md").read_text(encoding="utf-8")
    paragraph = next((p for p in text.split("\n\n") if "`HW000" in p), "")
    return f"# {_PARSE_ERROR} (hatchway check: a file that could not be parsed)\n\n{paragraph.strip()}\n"


def explain(code: str) -> Explanation:
    """The page for ``code`` (case does not matter); raises UnknownCode or DocsMissing."""
    code = code.strip().upper()
    root = docs_root()
    if code == _PARSE_ERROR:
        return Explanation(code, "checker.md", _parse_error_note(root))
    if CODE.fullmatch(code):
        rule = root / "rules" / f"{code}.md"
        if rule.is_file():
            return Explanation(code, f"rules/{code}.md", rule.read_text(encoding="utf-8"))
        section = _catalogue(root).get(code)
        if section is not None:
            title = f"# {code}"
            summary = _summaries(root).get(code)
            if summary:
                title += f" ({summary})"
            return Explanation(code, f"errors.md#{code.lower()}", f"{title}\n\n{section}")
    raise UnknownCode(code)


def known_codes() -> list[tuple[str, str]]:
    """Every code ``explain`` knows, with a one-line summary: the catalogue's table rows, then the rules."""
    root = docs_root()
    rows = list(_summaries(root).items())
    rows.append((_PARSE_ERROR, "checker: a file that could not be parsed"))
    for page in sorted((root / "rules").glob("HW*.md")):
        title = page.read_text(encoding="utf-8").partition("\n")[0].lstrip("# ").strip()
        name = title.removeprefix(page.stem).strip()
        rows.append((page.stem, f"checker rule {name}"))
    return rows
