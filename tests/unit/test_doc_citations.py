"""Code comments cite the repository's own documents, and only what those documents hold.

The processor and operator facts the code relies on are written down in ``docs/`` (for example
``docs/processors/stripe.md``); a comment points there by the document's path followed by the
section's title in double quotes.
A comment citing a file outside the repository (a shared reference, a section number of it) leaves
a newcomer with a pointer to nothing, and so does a citation of a document or section that does
not exist: both fail here.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SCANNED = ("operator", "tests", "bench", "hack")

# Ways of pointing outside the repository.
FORBIDDEN = {
    "a path to the shared reference": re.compile(r"shared/reference"),
    "a reference file": re.compile(r"\breference\s+[\w.-]+\.md", re.IGNORECASE),
    "a section sign": re.compile("\N{SECTION SIGN}"),
    "a numbered section of the reference": re.compile(r"\breference('s)?\s+section\b", re.IGNORECASE),
    "the reference as a source": re.compile(
        r"\b(?:the|project's)\s+(?:Stripe\s+|Checkout\.com\s+|Adyen\s+)?reference\b(?!s)(?!\s+to\b)",
        re.IGNORECASE,
    ),
    "the reference's confidence markers": re.compile(r"\[(?:U|I|C)\]"),
}

# A document named in a comment, and the section titles quoted after it.
CITATION = re.compile(r"(?P<path>[\w./-]*[\w-]+\.md)(?P<titles>(?:,\s*\"[^\"]+\")*)")
TITLE = re.compile(r"\"([^\"]+)\"")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Comment:
    """A comment block or a docstring, with its whitespace folded so citations may wrap lines."""

    path: Path
    line: int
    text: str

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


def _python_comments(path: Path) -> Iterator[Comment]:
    source = path.read_text()
    block: list[str] = []
    start = 0
    last = -1
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            if token.start[0] != last + 1 and block:
                yield Comment(path, start, " ".join(block))
                block = []
            if not block:
                start = token.start[0]
            block.append(token.string.lstrip("#").strip())
            last = token.start[0]
    if block:
        yield Comment(path, start, " ".join(block))
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                line = node.body[0].lineno
                yield Comment(path, line, " ".join(docstring.split()))


def _line_comments(path: Path, marker: str) -> Iterator[Comment]:
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if marker in line:
            yield Comment(path, number, line.split(marker, 1)[1].strip())


def comments(root: Path) -> Iterator[Comment]:
    for top in SCANNED:
        for path in sorted((root / top).rglob("*")):
            if not path.is_file() or ".venv" in path.parts or "__pycache__" in path.parts:
                continue
            if path.suffix == ".py":
                yield from _python_comments(path)
            elif path.suffix == ".go":
                yield from _line_comments(path, "//")
            elif path.suffix in (".sh", ".yaml", ".yml", ".toml") or path.name == "Makefile":
                yield from _line_comments(path, "#")


def headings(document: Path) -> set[str]:
    return {match.group(1) for match in HEADING.finditer(document.read_text())}


def citation_problems(comment: Comment, root: Path) -> Iterator[str]:
    """What is wrong with the citations in one comment (nothing, for most)."""
    for name, pattern in FORBIDDEN.items():
        if pattern.search(comment.text):
            yield f"{comment.where(root)}: cites {name}: {comment.text[:160]!r}"
    for match in CITATION.finditer(comment.text):
        cited = match.group("path")
        document = root / cited
        if not cited.startswith(("docs/", "charts/", "hack/")) or not document.is_file():
            yield f"{comment.where(root)}: cites {cited}, which is not a file of the repository"
            continue
        known = headings(document)
        for title in TITLE.findall(match.group("titles")):
            if title not in known:
                yield f"{comment.where(root)}: {cited} has no section titled {title!r}"


def test_comments_cite_only_the_repository_and_what_it_holds(repo_root: Path) -> None:
    problems = [
        problem for comment in comments(repo_root) for problem in citation_problems(comment, repo_root)
    ]
    assert not problems, "\n".join(problems)


def test_the_scan_sees_the_processor_citations(repo_root: Path) -> None:
    """The scan finds the citations it judges: guards against a scan that silently reads nothing."""
    cited = [c for c in comments(repo_root) if CITATION.search(c.text) and "docs/processors/" in c.text]
    assert len(cited) >= 20


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("see /work/shared/reference/checkout.md", "shared reference"),
        ("(reference stripe.md §2)", "reference file"),
        ("(reference §6)", "section sign"),
        ("(reference section 2)", "numbered section"),
        ("as the reference documents", "the reference as a source"),
        ("unconfirmed (the reference: [U])", "the reference as a source"),
        ("marks it [I]", "confidence markers"),
        ('(docs/processors/stripe.md, "No Such Section")', "no section titled"),
        ('(docs/processors/nowhere.md, "Hosts")', "not a file of the repository"),
        ("(stripe.md)", "not a file of the repository"),
    ],
)
def test_an_outside_or_dangling_citation_is_reported(repo_root: Path, text: str, complaint: str) -> None:
    comment = Comment(repo_root / "operator" / "example.py", 1, text)
    problems = list(citation_problems(comment, repo_root))
    assert any(complaint in problem for problem in problems), problems


@pytest.mark.parametrize(
    "text",
    [
        '(docs/processors/stripe.md, "Idempotency")',
        'docs/processors/checkout.md, "Hosts", "Secret keys"',
        "its owner reference is removed",
        "the reference to the Secret",
        "see docs/processors/stripe.md",
    ],
)
def test_a_repository_citation_passes(repo_root: Path, text: str) -> None:
    comment = Comment(repo_root / "operator" / "example.py", 1, text)
    assert list(citation_problems(comment, repo_root)) == []
