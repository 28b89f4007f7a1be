"""The documentation agrees with the code: the record fields table, the README's length, and
every relative file link (torch-free, fast)."""

from __future__ import annotations

import re
from pathlib import Path

from bench.results import Record

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
# [text](target): the target up to a space or the closing parenthesis
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> str:
    """``text`` without its fenced code blocks (a ``[x](y)`` in code is not a link)."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(line)
    return "\n".join(kept)


def record_fields_table() -> list[str]:
    """The backticked names in the first column of the table under ``## Record fields``."""
    lines = (DOCS / "results.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("## Record fields")
    names = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if not line.startswith("|"):
            continue
        first = line.strip().strip("|").split("|")[0].strip()
        named = re.fullmatch(r"`([^`]+)`", first)
        if named:
            names.append(named.group(1))
    return names


def test_the_record_fields_table_names_every_field_of_record_and_no_other():
    table = record_fields_table()
    fields = set(Record.model_fields)
    assert len(table) == len(set(table)), f"a field listed twice: {sorted(table)}"
    missing = sorted(fields - set(table))
    unknown = sorted(set(table) - fields)
    assert not missing, f"docs/results.md 'Record fields' lacks {missing}"
    assert not unknown, f"docs/results.md 'Record fields' names fields Record lacks: {unknown}"


def test_the_readme_is_a_short_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines: move reference into docs/"


def test_every_relative_file_link_exists():
    broken = []
    for page in pages():
        for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
                continue  # a URL (http:, mailto:...) or an anchor on the same page
            path = target.split("#", 1)[0].split("?", 1)[0]
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_the_link_check_sees_links():
    """The link pattern finds the README's links into docs/ (so an empty match is no pass)."""
    targets = LINK.findall(prose(README.read_text(encoding="utf-8")))
    assert "docs/architecture.md" in targets and "docs/results.md" in targets
