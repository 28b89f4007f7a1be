"""A PLDA for VBx clustering, estimated on a split's train embeddings, in the format pyannote.audio
reads (``xvec_transform.npz``: ``mean1``, ``mean2``, ``lda``; ``plda.npz``: ``mu``, ``tr``,
``psi``; see ``pyannote.audio.utils.vbx.vbx_setup``), so pyannote's own ``PLDA`` loads it.

The estimator (BUT's VBx recipe, as pyannote applies it):

1. ``mean1`` centres the raw embeddings, which are then length-normalised and scaled by
   ``sqrt(D)``: the space pyannote's ``xvec_tf`` applies the LDA in;
2. LDA there: the generalised eigenvectors of between- against within-speaker scatter
   (``scipy.linalg.eigh``), normalised so that the within-speaker covariance is the identity,
   keeping ``d = min(128, D, speakers - 1)`` directions; ``mean2`` centres the projection, which
   pyannote length-normalises again and scales by ``sqrt(d)``;
3. a two-covariance PLDA there (x = y_s + e, y_s ~ N(mu, B), e ~ N(0, W)), fitted by EM from
   the moment estimates (Sizov, Lee and Kinnunen 2014), then diagonalised: ``tr`` with
   ``tr W tr' = I`` and ``tr B tr' = diag(psi)``, which ``vbx_setup`` inverts.

The output is checked against pyannote's loader in the tests (same transform, same ``psi``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.linalg import eigh

# what the record and the identity say of the estimator: a change here is another experiment
ESTIMATOR = "lda+two-covariance-plda/v1"
LDA_DIMENSION = 128  # pyannote's PLDA keeps at most this many directions
EM_ITERATIONS = 10
FILES = ("xvec_transform.npz", "plda.npz")


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _scatter(x: np.ndarray, labels: np.ndarray):
    """Global mean, within- and between-class covariances (biased, sample-weighted), the class
    means, sizes and each sample's class index."""
    _, index, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    means = np.zeros((len(sizes), x.shape[1]))
    np.add.at(means, index, x)
    means /= sizes[:, None]
    centre = x.mean(axis=0)
    residual = x - means[index]
    within = residual.T @ residual / len(x)
    spread = means - centre
    between = (spread * sizes[:, None]).T @ spread / len(x)
    return centre, within, between, means, sizes, index


def xvec_transform(x: np.ndarray, mean1: np.ndarray, mean2: np.ndarray, lda: np.ndarray):
    """pyannote's ``xvec_tf``: centre, length-normalise, LDA, centre, length-normalise."""
    big, small = lda.shape
    return np.sqrt(small) * _l2((np.sqrt(big) * _l2(x - mean1)) @ lda - mean2)


def _lda(x: np.ndarray, labels: np.ndarray, dimension: int):
    size = x.shape[1]
    mean1 = x.mean(axis=0)
    z = np.sqrt(size) * _l2(x - mean1)
    _, within, between, *_ = _scatter(z, labels)
    within = within + 1e-6 * np.trace(within) / size * np.eye(size)  # positive definite
    values, vectors = eigh(between, within)  # vectors' within = I: Kaldi's normalisation
    lda = vectors[:, np.argsort(values)[::-1][:dimension]]
    return mean1, (z @ lda).mean(axis=0), lda


def _two_covariance(x: np.ndarray, labels: np.ndarray, iterations: int):
    """EM for x = y + e, y ~ N(mu, B), e ~ N(0, W); returns mu, B, W."""
    mu, within, between, means, sizes, index = _scatter(x, labels)
    size = x.shape[1]
    between = between + 1e-3 * np.trace(within) / size * np.eye(size)  # rank <= speakers - 1
    within = within + 1e-6 * np.trace(within) / size * np.eye(size)
    sums = means * sizes[:, None]
    for _ in range(iterations):
        within_inv, between_inv = np.linalg.inv(within), np.linalg.inv(between)
        prior = between_inv @ mu
        posterior = np.empty_like(means)
        covariance = np.zeros((size, size))  # sum over speakers of Cov[y_s]
        weighted = np.zeros((size, size))  # the same, each weighted by n_s
        for count in np.unique(sizes):  # one inverse per distinct class size
            which = np.flatnonzero(sizes == count)
            cov = np.linalg.inv(between_inv + count * within_inv)
            posterior[which] = (prior + sums[which] @ within_inv) @ cov
            covariance += len(which) * cov
            weighted += len(which) * count * cov
        mu = posterior.mean(axis=0)
        spread = posterior - mu
        between = (covariance + spread.T @ spread) / len(sizes)
        residual = x - posterior[index]
        within = (residual.T @ residual + weighted) / len(x)
        between, within = (between + between.T) / 2, (within + within.T) / 2
    return mu, between, within


def estimate(embeddings: np.ndarray, labels: np.ndarray, out: Path) -> Path:
    """Estimate the PLDA of ``embeddings`` (N x D) with speaker ``labels`` (N) and write the two
    files into ``out``; refuses fewer than 3 speakers (no discriminant direction to learn)."""
    speakers = len(np.unique(labels))
    if speakers < 3 or len(embeddings) <= speakers:
        raise ValueError(
            f"a PLDA needs embeddings of at least 3 speakers, several each (got {len(embeddings)} "
            f"of {speakers})"
        )
    embeddings = np.asarray(embeddings, dtype=np.float64)
    dimension = min(LDA_DIMENSION, embeddings.shape[1], speakers - 1)
    mean1, mean2, lda = _lda(embeddings, labels, dimension)
    projected = xvec_transform(embeddings, mean1, mean2, lda)
    mu, between, within = _two_covariance(projected, labels, EM_ITERATIONS)
    psi, vectors = eigh(between, within)  # vectors' W vectors = I, vectors' B vectors = diag(psi)
    order = np.argsort(psi)[::-1]
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / FILES[0], mean1=mean1, mean2=mean2, lda=lda)
    np.savez(out / FILES[1], mu=mu, tr=vectors[:, order].T, psi=np.maximum(psi[order], 1e-6))
    return out
