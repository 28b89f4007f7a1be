"""Applying a loaded pipeline to audio files: the samples a run reads (soundfile, 16 kHz; no
FFmpeg), the speaker-count options pyannote takes, one RTTM per file (bench's one writer)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import soundfile as sf

from bench.deploy.export import DeployError
from bench.io import file_name


def check_audio(files: Sequence[Path]) -> list[str]:
    """Each file's URI (its stem, as a file name: an RTTM field holds no space); refuse a file
    soundfile cannot read, or two with one URI, before any model is loaded."""
    uris: dict[str, Path] = {}
    for path in files:
        try:
            sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError, OSError) as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            raise DeployError(f"{path}: not readable audio: {reason}") from None
        uri = file_name(path.stem)
        if uri in uris:
            raise DeployError(f"{path}: its name is also {uris[uri]}'s (one RTTM a name)")
        uris[uri] = path
    return list(uris)


def diarize_files(
    ref: str,
    files: Sequence[Path],
    uris: Sequence[str],
    out: Path,
    speakers: dict[str, int | None],
    revision: str | None = None,
    trust: bool = False,
    device: str = "auto",
    progress: bool = True,
) -> list[Path]:
    """Load the pipeline ``ref`` names, apply it to each file, write ``out/URI.rttm``."""
    import torch
    from rich.progress import Progress

    from bench.data import SAMPLE_RATE, rttm_text
    from bench.data.audio import decode
    from bench.deploy.load import load_pipeline
    from bench.evaluation.pipeline import annotation_of, quiet_pipeline
    from bench.io import atomic_write_text, naming

    if speakers.get("num_speakers") and (
        speakers.get("min_speakers") or speakers.get("max_speakers")
    ):
        raise DeployError("--num-speakers excludes --min-speakers and --max-speakers")
    loaded = load_pipeline(ref, trust=trust, revision=revision)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded.pipeline.to(torch.device(device))
    options = {k: v for k, v in speakers.items() if v is not None}
    written = []
    with naming(out):
        out.mkdir(parents=True, exist_ok=True)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("diarizing", total=len(files))
        for path, uri in zip(files, uris, strict=True):
            waveform = torch.from_numpy(decode(path))[None]
            file = {"uri": uri, "waveform": waveform, "sample_rate": SAMPLE_RATE}
            with quiet_pipeline():
                annotation = annotation_of(loaded.pipeline(file, **options))
            annotation.uri = uri
            written.append(atomic_write_text(out / f"{uri}.rttm", rttm_text(annotation)))
            bar.advance(task)
    return written
