"""The documentation works: the README's Python example runs, and no relative link is broken."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def python_blocks(text: str) -> list[str]:
    """The bodies of the fenced ```python blocks of a Markdown text."""
    return [body for lang, body in FENCE.findall(text) if lang == "python"]


def without_code(text: str) -> str:
    """The text with fenced blocks and inline code removed (links there are not links)."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def relative_links(text: str) -> list[str]:
    """Targets of the Markdown links and images that are not URLs (or in-page anchors)."""
    targets = LINK.findall(without_code(text))
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and t[0] != "#"]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    plain = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", plain).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The heading anchors of a Markdown page."""
    return {slug(h) for h in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8")))}


def test_readme_has_a_python_example() -> None:
    assert python_blocks(README.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "block", python_blocks(README.read_text(encoding="utf-8")), ids=lambda b: b.splitlines()[0]
)
def test_readme_python_block_runs(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(block, str(README), "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out  # the example prints what it found


def test_link_finder_finds_links() -> None:
    text = "see [a](docs/a.md#x), ![b](b.png), [c](https://x.org), `[d](e.md)`\n```\n[f](g)\n```\n"
    assert relative_links(text) == ["docs/a.md#x", "b.png"]
    assert slug("The worked example (`make demo`)") == "the-worked-example-make-demo"
    assert slug("Leaving saddles: SaddleEscape") == "leaving-saddles-saddleescape"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page: Path) -> None:
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve()
        if not dest.is_file():
            broken.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_every_docs_page_is_linked() -> None:
    linked = set()
    for page in PAGES:
        for target in relative_links(page.read_text(encoding="utf-8")):
            linked.add((page.parent / target.partition("#")[0]).resolve())
    orphans = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert len(PAGES) > 1 and not orphans, f"docs pages nothing links to: {orphans}"
