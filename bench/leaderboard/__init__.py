"""The leaderboard: every recorded result rendered into a static site and a markdown page.

Results are grouped by dataset fingerprint (only runs on the same split are ranked together),
deduplicated (newest ``finished`` wins for the same recipe hash, split, seed and epochs) and ranked
by the primary test metric (:func:`primary_metric`). Each ranked run gets a 95% bootstrap interval
over test files, and a paired bootstrap against the leader says whether it is tied with it
(:mod:`bench.stats`). Failed and diverged runs are listed with their reason, never ranked.
External systems (``bench score``) rank beside recipes. Each split also shows the full pipeline's
JER, speaker counting and DER by overlap (:mod:`~bench.leaderboard.metrics`), a files × runs heat
map of per-file DER, and each also-tested split's DER against the baseline row (forgetting check).

Rendering uses jinja2 with autoescape on; the output is written into a temporary folder that then
replaces ``out`` in one rename, so a failed render never leaves half a site.
"""

from bench.leaderboard import charts, metrics, render, text
from bench.leaderboard.charts import HEAT_MAX_FILES, heat_map
from bench.leaderboard.metrics import Details
from bench.leaderboard.rank import (
    Board,
    ExtraScore,
    Group,
    Ranked,
    build_board,
    primary_metric,
    rank_group,
)
from bench.leaderboard.render import render_markdown, render_site, write_leaderboard
from bench.leaderboard.select import ResultFile, load_runs

__all__ = [
    "HEAT_MAX_FILES",
    "Board",
    "Details",
    "ExtraScore",
    "Group",
    "Ranked",
    "ResultFile",
    "build_board",
    "charts",
    "heat_map",
    "load_runs",
    "metrics",
    "primary_metric",
    "rank_group",
    "render",
    "render_markdown",
    "render_site",
    "text",
    "write_leaderboard",
]
