"""The repository's documents: nothing cites a document the repository does not hold, and the
links, section citations, code excerpts and test names of docs/ point at files, headings and
tests that exist.

"Repository files" are the files on disk minus what ``.gitignore`` excludes, i.e. what a clone
holds. This file is not scanned for citations: it spells out the patterns it looks for.
"""

import os
import re
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TOP_DIRS = ("tinynn", "tests", "examples", "benchmarks", "docs")
EXTENSIONS = (".py", ".md", ".json", ".png", ".toml", ".cfg")

#: Citations of places outside the repository (the design notes lived in a sibling directory).
OUTSIDE = re.compile(r"\.\./shared\b|/work/shared\b|shared/design\b")
#: A document cited by an upper-case name, e.g. README.md: it must be a repository file.
NAMED_DOCUMENT = re.compile(r"(?<![\w/.-])([A-Z][A-Z0-9_]*\.md)\b")
#: A document of docs/ cited by path, optionally with a quoted section or a #anchor after it.
DOCS_CITATION = re.compile(r'\b(docs/[\w.-]+\.md)(?:#([\w-]+)|[,:]?\s+\(?"([^"]+)")?')
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\s]+)`")
EXCERPT = re.compile(r"<!-- excerpt: (\S+) -->\n```\w*\n(.*?)\n```", re.DOTALL)


def ignore_patterns(root: Path) -> list[str]:
    lines = (root / ".gitignore").read_text().splitlines()
    return [".git/", *(line.strip() for line in lines if line.strip()
                       and not line.startswith("#"))]


def is_ignored(relative: PurePosixPath, patterns: list[str]) -> bool:
    """Whether a .gitignore pattern (the simple forms this repository uses) excludes the file
    ``relative``: ``dir/`` any directory of that name, ``a/b*`` a path from the root, ``*.gz``
    any file or directory name."""
    parts = relative.parts
    for pattern in patterns:
        name = pattern.rstrip("/")
        if "/" in name:
            candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        else:
            candidates = parts[:-1] if pattern.endswith("/") else parts
        if any(PurePosixPath(candidate).match(name) for candidate in candidates):
            return True
    return False


def repository_files(root: Path) -> set[PurePosixPath]:
    """Every file a clone of ``root`` holds, as paths relative to ``root``."""
    patterns, found = ignore_patterns(root), set()
    for directory, subdirectories, files in os.walk(root):
        here = PurePosixPath(Path(directory).relative_to(root).as_posix())
        subdirectories[:] = [d for d in subdirectories
                             if not is_ignored(here / d / "file", patterns)]
        found.update(here / f for f in files if not is_ignored(here / f, patterns))
    return found


def text_of(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def headings(path: Path) -> set[str]:
    return {line.lstrip("#").strip() for line in path.read_text().splitlines()
            if line.startswith("#")}


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def problems_in(text: str, root: Path, files: set[PurePosixPath]) -> list[tuple[int, str]]:
    """``(offset, problem)`` for every citation in ``text`` of a place outside the repository,
    of a document it does not hold, or of a section that document does not have."""
    names = {path.name for path in files}
    found = [(match.start(), f"cites {match.group(0)!r}, outside the repository")
             for match in OUTSIDE.finditer(text)]
    found += [(match.start(), f"cites {match.group(1)}, which the repository does not hold")
              for match in NAMED_DOCUMENT.finditer(text) if match.group(1) not in names]
    for match in DOCS_CITATION.finditer(text):
        document, slug, section = match.groups()
        if PurePosixPath(document) not in files:
            found.append((match.start(), f"cites {document}, which does not exist"))
            continue
        titles = headings(root / document)
        if section is not None and " ".join(section.split()) not in titles:
            found.append((match.start(), f"cites section {section!r} of {document}, which has "
                                         "none"))
        if slug is not None and slug not in {anchor(title) for title in titles}:
            found.append((match.start(), f"cites #{slug} of {document}, which has no such "
                                         "heading"))
    return sorted(found)


def citation_problems(root: Path) -> list[str]:
    """``problems_in`` every text file of the repository at ``root``, as ``file:line: problem``."""
    files = repository_files(root)
    problems = []
    for relative in sorted(files):
        text = None if relative.name == Path(__file__).name else text_of(root / relative)
        if text is not None:
            problems += [f"{relative}:{text.count(chr(10), 0, offset) + 1}: {problem}"
                         for offset, problem in problems_in(text, root, files)]
    return problems


def test_citation_scanner_finds_outside_and_missing_documents(tmp_path):
    (tmp_path / ".gitignore").write_text("out/\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Errors\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "NOTES.md").write_text("ignored, so not in a clone\n")
    (tmp_path / "code.py").write_text(
        '"""See ../shared/X.md, /work/shared, the shared/design notes, ARCHITECTURE.md, NOTES.md;\n'
        'docs/guide.md, "Errors"; docs/guide.md, "Missing"; docs/other.md; docs/guide.md#nope."""')
    assert citation_problems(tmp_path) == [
        "code.py:1: cites '../shared', outside the repository",
        "code.py:1: cites '/work/shared', outside the repository",
        "code.py:1: cites 'shared/design', outside the repository",
        "code.py:1: cites ARCHITECTURE.md, which the repository does not hold",
        "code.py:1: cites NOTES.md, which the repository does not hold",
        "code.py:2: cites section 'Missing' of docs/guide.md, which has none",
        "code.py:2: cites docs/other.md, which does not exist",
        "code.py:2: cites #nope of docs/guide.md, which has no such heading",
    ]


def test_no_file_cites_a_document_the_repository_does_not_hold():
    assert citation_problems(ROOT) == []


def doc_pages() -> list[Path]:
    pages = sorted(DOCS.glob("*.md"))
    assert pages, "docs/ holds no pages"
    return pages


@pytest.mark.parametrize("page", doc_pages(), ids=lambda page: page.name)
def test_doc_links_and_paths_point_to_repository_files(page):
    files = repository_files(ROOT)
    directories = {parent for path in files for parent in path.parents}
    text = page.read_text()
    targets = []
    for link in MARKDOWN_LINK.findall(text):
        if not re.match(r"[a-z]+:|#", link):
            path, _, slug = link.partition("#")
            resolved = (page.parent / path).resolve().relative_to(ROOT)
            targets.append((PurePosixPath(resolved.as_posix()), slug))
    for span in CODE_SPAN.findall(text):
        path = span.split("::")[0]
        if path.startswith(tuple(f"{d}/" for d in TOP_DIRS)) and path.endswith((*EXTENSIONS, "/")):
            targets.append((PurePosixPath(path), ""))
    missing = [str(path) for path, _ in targets if path not in files and path not in directories]
    assert missing == [], f"{page.name} points to paths the repository does not hold"
    for path, slug in targets:
        if slug:
            assert slug in {anchor(title) for title in headings(ROOT / path)}, (path, slug)


def test_doc_excerpts_match_their_files():
    excerpts = [match for page in doc_pages() for match in EXCERPT.finditer(page.read_text())]
    assert excerpts, "docs/ quotes no file"
    for match in excerpts:
        path, quoted = match.groups()
        assert quoted in (ROOT / path).read_text(), f"the excerpt of {path} differs from the file"


def test_doc_test_names_are_tests():
    defined = {name for path in (ROOT / "tests").glob("test_*.py")
               for name in re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE)}
    cited = {name for page in doc_pages() for name in re.findall(r"`(test_\w+)`",
                                                                 page.read_text())}
    assert cited, "docs/ names no test"
    assert cited - defined == set(), "docs/ names tests that do not exist"
