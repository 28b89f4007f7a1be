"""The ``bench`` command line (``bench.cli:app``): one module per command."""

from bench.cli import diarize, export, gate, leaderboard, recipes, run, score
from bench.cli.common import Typer
from bench.cli.data import app as data_app

app = Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Benchmark fine-tuning recipes for pyannote.audio speaker diarization.",
)


@app.callback()
def main() -> None:
    """Benchmark fine-tuning recipes for pyannote.audio speaker diarization."""


app.command()(run.run)
app.command()(recipes.recipes)
app.command()(score.score)
app.command()(leaderboard.leaderboard)
app.command()(gate.gate)
app.command()(export.export)
app.command()(diarize.diarize)
app.add_typer(data_app, name="data")

__all__ = ["app"]
