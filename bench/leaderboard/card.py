"""The model card of a run: a Hugging Face ``README.md`` (front matter with ``model-index``) that
``bench export`` writes into the exported folder and the leaderboard shows on the run page.

Torch-free (the leaderboard renders it): the front matter is written as YAML by hand, every
value a JSON scalar (valid YAML), so no YAML library is needed.
"""

from __future__ import annotations

import json
from typing import Any

from markdown_it import MarkdownIt

import bench
from bench import stats
from bench.io import is_number
from bench.leaderboard.metrics import details
from bench.leaderboard.text import pct, reference_value, short_column
from bench.recipe import text as recipe_text
from bench.results import EPOCH_COLUMNS, METRIC_LABELS, Record, ScoreReport, primary_metric

# licenses of base models bench knows without the hub (a hub model's own card says the rest)
KNOWN_LICENSES = {"pyannote/segmentation-3.0": "mit"}
TAGS = (
    "pyannote",
    "pyannote-audio",
    "pyannote-audio-pipeline",
    "audio",
    "speech",
    "speaker-diarization",
    "bench",
)


def export_refusal(record: Record) -> str | None:
    """Why ``bench export`` cannot export ``record`` (None: a good recipe run with a tuned
    pipeline, which gets a card)."""
    if record.status != "ok" or record.kind != "recipe":
        return f"a {record.status} {record.kind} result: nothing to export"
    if not (record.pipeline or {}).get("tuning"):
        return "no tuned pipeline (run without --no-pipeline)"
    return None


def base_model(record: Record) -> str | None:
    """The hub id the run started from (None: scratch or a local checkpoint)."""
    init = record.initial_weights or {}
    model = (record.recipe or {}).get("model") or {}
    if model.get("kind") != "pretrained" or init.get("origin") == "local":
        return None
    return init.get("id") or model.get("id")


def _yaml(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def front_matter(record: Record, name: str) -> str:
    """The card's YAML front matter: library, base model, license, tags and ``model-index``."""
    lines = ["---", "library_name: pyannote-audio"]
    base = base_model(record)
    if base:
        lines.append(f"base_model: {_yaml(base)}")
        if base in KNOWN_LICENSES:
            lines.append(f"license: {_yaml(KNOWN_LICENSES[base])}")
    lines.append("tags:")
    lines += [f"- {_yaml(tag)}" for tag in TAGS]
    test = record.test.pipeline
    dataset = record.dataset
    metrics = []
    if test is not None and is_number(test.DER):
        metrics.append(("der", test.DER, "DER (%, no collar, overlap scored)"))
    if test is not None and is_number(test.JER):
        metrics.append(("jer", test.JER, "JER (%)"))
    if metrics:
        lines += [
            "model-index:",
            f"- name: {_yaml(name)}",
            "  results:",
            "  - task:",
            '      type: "speaker-diarization"',
            '      name: "Speaker diarization"',
            "    dataset:",
            f"      name: {_yaml(dataset.get('name') or 'unknown')}",
            f"      type: {_yaml(dataset.get('name') or 'unknown')}",
            '      split: "test"',
            f"      revision: {_yaml(dataset.get('fingerprint') or 'unknown')}",
            "    metrics:",
        ]
        for kind, value, label in metrics:
            lines += [
                f"    - type: {_yaml(kind)}",
                f"      value: {round(100 * value, 2)}",
                f"      name: {_yaml(label)}",
            ]
    lines.append("---")
    return "\n".join(lines)


def _score_rows(report: ScoreReport) -> list[tuple[str, str, str]]:
    """(metric, value %, 95% interval) rows of a test report."""
    rows = []
    try:
        interval = stats.interval_of_files(report.components())
        ci = f"[{pct(interval.low)}, {pct(interval.high)}]" if interval.defined else "–"
    except ValueError:
        ci = "–"
    rows.append(("DER", pct(report.DER), ci))
    for key in ("Confusion", "FalseAlarm", "Miss"):
        rows.append((key, pct(getattr(report, key)), ""))
    extra = details(report)
    if extra.jer is not None:
        jer = extra.jer
        ci = f"[{pct(jer.low)}, {pct(jer.high)}]" if jer.defined else "–"
        rows.append(("JER", pct(jer.estimate), ci))
    if extra.sca is not None:
        rows.append(("speaker count accuracy", pct(extra.sca), ""))
    if report.variant is not None:
        rows.append(("DER, collar 0.25 s, overlap skipped", pct(report.variant.DER), ""))
    return rows


def _md(text: Any) -> str:
    """A table cell: pipes escaped, on one line."""
    return " ".join(str(text).split()).replace("|", "\\|")


def model_card(record: Record, name: str | None = None, source: str = "") -> str:
    """The card of ``record`` (an ok recipe run); ``name`` is what the pipeline is called,
    ``source`` where it is loaded from (an exported folder or a hub repository)."""
    name = name or record.name
    identity = record.run_identity
    metric = primary_metric(record)
    where = source or "PATH_OR_REPO_ID"
    out = [front_matter(record, name), "", f"# {name}", ""]
    description = (record.recipe or {}).get("description") or ""
    if description:
        out += [description.strip(), ""]
    dataset = record.dataset
    out += [
        f"A speaker-diarization pipeline fine-tuned and scored by bench "
        f"{bench.__version__}: recipe `{record.name}`, run `{record.stem}`, on the split "
        f"`{dataset.get('name')}` (fingerprint `{dataset.get('fingerprint')}`"
        f"{', the embedded demo: not a benchmark' if dataset.get('demo') else ''}).",
        "",
        "## Use",
        "",
        "The pipeline class is bench's (`bench.deploy.pipeline.ExportedSpeakerDiarization`): "
        "loading needs `pip install bench` beside pyannote.audio.",
        "",
        "```python",
        "from pyannote.audio import Pipeline",
        "",
        f'pipeline = Pipeline.from_pretrained("{where}")',
        'output = pipeline("meeting.wav")  # or {"waveform": ..., "sample_rate": 16000}',
        "for turn, _, speaker in output.speaker_diarization.itertracks(yield_label=True):",
        '    print(f"{turn.start:.2f} {turn.end:.2f} {speaker}")',
        "```",
        "",
        f"or `bench diarize {where} meeting.wav --out rttm/` (one RTTM per file).",
        "",
    ]
    report = record.test.pipeline or record.test.chunk
    if report is not None:
        label = METRIC_LABELS["pipeline" if record.test.pipeline else "chunk"]
        files = len(report.files)
        out += [
            f"## Test scores ({label}, {files} file{'s' if files != 1 else ''})",
            "",
            "In %; 95% bootstrap interval over test files. DER: no collar, overlapping speech "
            "scored (pyannote.metrics).",
            "",
            "| metric | value | 95% interval |",
            "|---|--:|---|",
            *(f"| {_md(a)} | {b} | {c} |" for a, b, c in _score_rows(report)),
            "",
        ]
        if metric != "pipeline":
            out += ["(No full-pipeline scores: the run had no pipeline stage.)", ""]
    recipe = record.recipe or {}
    out += [
        "## Training",
        "",
        f"- recipe: {_md(recipe_text.optimizer_text(recipe))}, "
        f"{_md(recipe_text.scheduler_text(recipe))}, loss {_md(recipe_text.loss_text(recipe))}, "
        f"augmentation {_md(recipe_text.augmentation_text(recipe))}",
        f"- mode {recipe.get('mode')}, {recipe.get('epochs')} epochs, batch "
        f"{recipe.get('batch_size')}, {recipe.get('duration')} s chunks, seed {record.seed}",
        f"- initial weights: {_md((record.initial_weights or {}).get('id'))} "
        f"({_md((record.initial_weights or {}).get('reason', ''))})",
    ]
    if record.overrides:
        changed = ", ".join(
            f"{k} {v['declared']} -> {v['ran']}" for k, v in record.overrides.items()
        )
        out.append(f"- overridden at run time: {_md(changed)}")
    columns = list(record.columns or EPOCH_COLUMNS)
    rows = [record.initial_validation] if record.initial_validation else []
    rows += list(record.epochs)
    if rows:
        out += [
            "",
            "Per epoch (the reference write-up's columns; `start`: before training):",
            "",
            "| epoch | " + " | ".join(_md(short_column(c)) for c in columns) + " |",
            "|--:|" + "--:|" * len(columns),
        ]
        for index, row in enumerate(rows):
            start = index == 0 and record.initial_validation is not None
            epoch = "start" if start else row.get("epoch", "")
            cells = " | ".join(reference_value(c, row.get(c)) for c in columns)
            out.append(f"| {epoch} | {cells} |")
    pipeline = record.pipeline or {}
    tuning = pipeline.get("tuning") or {}
    if pipeline:
        embedding = pipeline.get("embedding") or {}
        out += [
            "",
            "## Pipeline",
            "",
            f"- embedding: `{_md(embedding.get('id'))}` ({_md(embedding.get('origin'))}, sha256 "
            f"`{_md(embedding.get('sha256'))}`)",
            f"- clustering: {_md((pipeline.get('clustering') or {}).get('name'))}",
            f"- tuned on dev: `{_md(json.dumps(tuning.get('params'), sort_keys=True))}`, dev DER "
            f"{pct(tuning.get('dev_der_before'))} -> {pct(tuning.get('dev_der_after'))}",
        ]
    environment = record.environment or {}
    packages = environment.get("packages") or {}
    out += [
        "",
        "## Provenance",
        "",
        f"- run identity `{identity.digest if identity else '–'}`: "
        + (", ".join(f"{k} {v}" for k, v in identity.as_dict().items()) if identity else "–"),
        f"- recipe hash `{record.recipe_hash}`, dataset fingerprint `{dataset.get('fingerprint')}`",
        f"- bench {bench.__version__}, git {(record.git or {}).get('commit') or '–'}",
        f"- environment `{environment.get('digest', '–')}`: "
        + ", ".join(f"{k} {v}" for k, v in sorted(packages.items()) if v),
        f"- finished {record.finished}",
        "",
    ]
    return "\n".join(out)


def card_html(card: str) -> str:
    """The card's body (front matter dropped) as HTML, raw HTML in it escaped."""
    body = card.split("\n---\n", 1)[1] if card.startswith("---\n") else card
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(body)
