"""The documentation stands on its own: every relative link in the repository's Markdown
(README, CONTRIBUTING, docs/, the clients', tests' and benchmarks' READMEs) names a file
that exists, and every #anchor a heading of that file; nothing points outside the
repository (no ../shared)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".build", ".git", "node_modules"}


def markdown_files() -> List[Path]:
    return sorted(p for p in ROOT.rglob("*.md") if not SKIP & set(p.relative_to(ROOT).parts))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def headings(path: Path) -> set:
    out, fence = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and re.match(r"#{1,6} ", line):
            out.add(slug(line.lstrip("#")))
    return out


def links(path: Path) -> Iterator[Tuple[int, str]]:
    fence = False
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            fence = not fence
            continue
        if not fence:
            for m in re.finditer(r"\[[^\]]*\]\(([^)\s]+)\)", line):
                yield n, m.group(1)


def test_the_front_door_is_short_and_the_docs_exist():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
    for name in ["protocol", "configuration", "operations", "security", "design", "cluster", "benchmarks"]:
        assert (ROOT / "docs" / f"{name}.md").is_file(), name


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path):
    broken = []
    for n, target in links(path):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if ROOT not in dest.parents and dest != ROOT:
            broken.append(f"{n}: {target} leaves the repository")
            continue
        if not dest.exists():
            broken.append(f"{n}: {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in headings(dest):
            broken.append(f"{n}: {target}: no such heading")
    assert not broken, f"{path.relative_to(ROOT)}:\n" + "\n".join(broken)
