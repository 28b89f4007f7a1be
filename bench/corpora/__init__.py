"""Corpus converters: read a corpus format into entries, split them, write bench's layout.

The registries name each format's module, imported only when used; the command line reads the
names and split options from here without importing any of them.
"""

IMPORTERS = {
    "nikl": "bench.corpora.nikl",
    "textgrid": "bench.corpora.textgrid",
    "lhotse": "bench.corpora.lhotse",
    "nemo": "bench.corpora.nemo",
    "rttm": "bench.corpora.rttm",
}
EXPORTERS = {"nemo": "bench.corpora.nemo"}
DISJOINT = ("speaker", "session")
SESSION_PATTERN = r"^[A-Za-z]*\d+"  # leading letters and digits: ES2002a -> ES2002 (split.py)
