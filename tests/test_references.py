"""Every repository path the project cites resolves to a file or folder in the repository.

Where references are looked for: the Markdown pages (README.md, docs/*.md, results/README.md)
and the code (every .py file under benchmark/, analysis/ and tests/, noxfile.py, and the
sweep specs runs/*.toml, comments included).

What counts as a reference:

- in a Markdown page, a link or image target `[text](target)` that is a relative path: not
  a URL, not `mailto:`, not an anchor alone. The `#anchor` is stripped and the path resolved
  against the page's own folder (so a page in docs/ cites `../results/README.md`); it must
  stay inside the repository. An anchor into a Markdown page must name one of its headings;
- in code and prose (the Markdown pages too, outside link targets), a token rooted at one of
  the top-level folders, `benchmark/`, `analysis/`, `runs/`, `tests/`, `results/` or `docs/`
  (not preceded by a path character, so `../results/x` is the link's business and
  `/tmp/tests/x` no reference at all), up to the first space, quote, bracket, comma, colon
  or semicolon (so `benchmark/models.py:128` cites benchmark/models.py), resolved against
  the repository root;
- a bare upper-case Markdown name (README.md, RUN.md, ...): it resolves when a file of that
  name is at the root, beside the citing file, or anywhere in the committed tree (RUN.md
  names the record in each results folder).

What is left out:

- URLs: anything from a scheme's `://` to the next space;
- tokens holding a glob or placeholder character (`*`, `?`, `<`, `{`, `%`, `$`):
  runs/<name>.toml, tests/analysis/test_*.py, an f-string's path;
- under runs/, whatever a sweep writes at run time: only a committed spec (a path under
  runs/ that ends in `.toml`) is a reference; any other runs/ path (a sweep's folder, its
  results.csv, report/ or trials/) is absent from a fresh clone by design and is not checked.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOP_FOLDERS = ("benchmark", "analysis", "runs", "tests", "results", "docs")
PLACEHOLDER = set("*?<{%$")

URL = re.compile(r"[A-Za-z][\w+.-]*://\S*")
PATH = re.compile(r"(?<![\w./$~-])(?:" + "|".join(TOP_FOLDERS) + r")/[^\s`'\"()\[\]|,;:]*")
BARE_MD = re.compile(r"(?<![\w./$~-])[A-Z][A-Z_]*\.md\b")
LINK = re.compile(r"\]\(\s*<?([^()\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "results/README.md"]


def code_files() -> list[Path]:
    files = [p for top in ("benchmark", "analysis", "tests") for p in (ROOT / top).rglob("*.py")]
    return sorted(files) + [ROOT / "noxfile.py", *sorted((ROOT / "runs").glob("*.toml"))]


def link_targets(text: str) -> list[tuple[int, str]]:
    """(line, target) of every relative link or image target of a Markdown text."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in LINK.finditer(line):
            target = match.group(1)
            if "://" in target or target.startswith(("mailto:", "#")):
                continue
            found.append((number, target))
    return found


def path_tokens(text: str, markdown: bool = False) -> list[tuple[int, str]]:
    """(line, token) of every path rooted at a top-level folder and every bare upper-case
    .md name."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = URL.sub(" ", line)
        if markdown:
            line = LINK.sub("] ", line)  # link targets resolve against the page: link_targets
        for match in PATH.finditer(line):
            token = match.group(0).rstrip(".")
            if not PLACEHOLDER.intersection(token):
                found.append((number, token))
        found.extend((number, match.group(0)) for match in BARE_MD.finditer(line))
    return found


def is_run_output(token: str) -> bool:
    """A path under runs/ other than a spec: what a sweep writes at run time."""
    return token.startswith("runs/") and not token.endswith(".toml")


def file_names() -> set[str]:
    """Names of the files in the committed tree (hidden folders and sweep outputs pruned)."""
    names = set()
    for folder, subfolders, files in os.walk(ROOT):
        here = Path(folder)
        subfolders[:] = [
            d
            for d in subfolders
            if not d.startswith(".")
            and d != "__pycache__"
            and not d.endswith(".egg-info")
            and here != ROOT / "runs"
        ]
        names.update(files)
    return names


def resolves(token: str, citing: Path, root: Path, names: set[str]) -> bool:
    """Whether a path token or a bare .md name cited in `citing` names something in `root`."""
    if "/" in token:
        return (root / token).exists()
    return (root / token).exists() or (citing.parent / token).exists() or token in names


def broken_tokens(text: str, citing: Path, root: Path, names: set[str], markdown: bool):
    return [
        (number, token)
        for number, token in path_tokens(text, markdown)
        if not is_run_output(token) and not resolves(token, citing, root, names)
    ]


def broken_links(text: str, page: Path, root: Path) -> list[tuple[int, str]]:
    broken = []
    for number, target in link_targets(text):
        path = target.split("#", 1)[0]
        resolved = (page.parent / path).resolve()
        if not resolved.is_relative_to(root.resolve()) or not resolved.exists():
            broken.append((number, target))
    return broken


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            found.add(slug(match.group(1)))
    return found


def where(path: Path, number: int) -> str:
    return f"{path.relative_to(ROOT)}:{number}"


def test_markdown_links_resolve():
    broken = [
        f"{where(page, number)}: {target}"
        for page in markdown_pages()
        for number, target in broken_links(page.read_text(encoding="utf-8"), page, ROOT)
    ]
    assert not broken, "links to nothing in the repository:\n" + "\n".join(broken)


def test_markdown_anchors_resolve():
    broken = []
    for page in markdown_pages():
        for number, target in link_targets(page.read_text(encoding="utf-8")):
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            into_page = anchor and linked.suffix == ".md" and linked.is_file()
            if into_page and anchor not in anchors(linked):
                broken.append(f"{where(page, number)}: {target}")
    assert not broken, "anchors that name no heading:\n" + "\n".join(broken)


def test_every_docs_page_is_linked_from_the_readme():
    readme = ROOT / "README.md"
    linked = {
        (ROOT / target.split("#", 1)[0]).resolve()
        for _, target in link_targets(readme.read_text(encoding="utf-8"))
    }
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"


@pytest.mark.parametrize("kind", ["markdown", "code"])
def test_cited_paths_resolve(kind):
    names = file_names()
    files = markdown_pages() if kind == "markdown" else code_files()
    broken = [
        f"{where(path, number)}: {token}"
        for path in files
        for number, token in broken_tokens(
            path.read_text(encoding="utf-8"), path, ROOT, names, markdown=kind == "markdown"
        )
    ]
    assert not broken, "paths that name nothing in the repository:\n" + "\n".join(broken)


def test_the_extractor_finds_a_broken_reference():
    """The checks can fail: a made-up path, link and name are reported, the exclusions are not."""
    missing_module = "/".join(["benchmark", "no_such_module.py"])
    missing_page = "NO_SUCH_PAGE" + ".md"
    text = "\n".join(
        [
            f"The step is in `benchmark/losses.py:12`; see {missing_module}, line 3.",
            f"As {missing_page} says, and README.md too.",
            "Outputs: runs/quick/results.csv, runs/<name>/report/, tests/analysis/test_*.py,",
            "https://github.com/google/compare_gan/tree/v1/compare_gan/gans and runs/quick.toml.",
        ]
    )
    citing = ROOT / "tests" / "example.py"
    found = broken_tokens(text, citing, ROOT, file_names(), markdown=False)
    assert found == [(1, missing_module), (2, missing_page)]
    assert (1, "benchmark/losses.py") in path_tokens(text)

    page = ROOT / "docs" / "example.md"
    links = "[ok](../results/README.md#grid) [bad](../results/no-such.md) [out](../../x.md)"
    links += " [web](https://nox.thea.codes) [here](#top)"
    assert broken_links(links, page, ROOT) == [(1, "../results/no-such.md"), (1, "../../x.md")]
    assert slug("A published comparison: Welfert et al. 2023's `ring`") == (
        "a-published-comparison-welfert-et-al-2023s-ring"
    )
