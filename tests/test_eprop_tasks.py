"""The e-prop tasks: evidence accumulation and pattern generation (Bellec et al. 2020)."""

from __future__ import annotations

import numpy as np
import pytest

from rnngraph.datasets import (
    EvidenceTrials,
    PatternTask,
    evidence_accumulation,
    pattern_generation,
)


@pytest.fixture(scope="module")
def trials():
    return evidence_accumulation(batch=64, seed=3)


def _cue_windows():
    return [(50 + 150 * k, 150 + 150 * k) for k in range(7)]


def test_evidence_shapes_and_layout(trials):
    assert isinstance(trials, EvidenceTrials)
    x, labels, mask = trials
    assert x.shape == (64, 2250, 40) and x.dtype == np.float64
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert labels.shape == (64,) and labels.dtype == np.int64
    assert mask.shape == (2250,) and mask.dtype == bool
    assert mask[-150:].all() and not mask[:-150].any()
    assert trials.targets.shape == (64, 2250)
    assert (trials.targets == labels[:, None]).all()
    # both classes occur
    assert 10 < labels.sum() < 54


def test_evidence_rates(trials):
    x = trials.inputs
    windows = _cue_windows()
    in_cue = np.zeros(2250, dtype=bool)
    for t0, t1 in windows:
        in_cue[t0:t1] = True
    # during a cue exactly one side fires, at 40 Hz; outside the cues both are silent
    cue_spikes = x[:, in_cue, :20]
    per_window = np.stack([x[:, t0:t1, :20].reshape(64, -1, 2, 10) for t0, t1 in windows], 1)
    active = per_window.sum((2, 4)) > 0  # (B, cues, side)
    assert (active.sum(-1) == 1).all()
    rate = cue_spikes.sum() / (64 * 7 * 100 * 10) * 1000.0  # Hz of the active side
    assert rate == pytest.approx(40.0, rel=0.05)
    assert x[:, ~in_cue, :20].sum() == 0
    # recall channels: 40 Hz in the last 150 ms, silent before
    recall = x[:, -150:, 20:30].mean() * 1000.0
    assert recall == pytest.approx(40.0, rel=0.1)
    assert x[:, :-150, 20:30].sum() == 0
    # background noise: 10 Hz throughout
    assert x[:, :, 30:].mean() * 1000.0 == pytest.approx(10.0, rel=0.05)


def test_evidence_labels_are_the_side_with_more_cues(trials):
    x, labels, _ = trials
    right = np.stack([x[:, t0:t1, 10:20].sum((1, 2)) for t0, t1 in _cue_windows()], 1)
    left = np.stack([x[:, t0:t1, 0:10].sum((1, 2)) for t0, t1 in _cue_windows()], 1)
    n_right = (right > left).sum(1)  # cues counted from the spikes
    assert ((n_right > 3).astype(np.int64) == labels).all()
    # the favoured side gives 70 % of the cues: the majority is often large
    assert np.mean(np.abs(2 * n_right - 7)) > 2


def test_evidence_seeding_and_options():
    a = evidence_accumulation(batch=4, seed=0)
    b = evidence_accumulation(batch=4, seed=0)
    c = evidence_accumulation(batch=4, seed=1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not np.array_equal(a.inputs, c.inputs)
    assert np.array_equal(evidence_accumulation(batch=2).inputs, evidence_accumulation(2).inputs)
    d = evidence_accumulation(
        batch=3, seed=0, n_cues=3, duration=900.0, dt=2.0, n_per_group=5, dtype=np.float32
    )
    assert d.inputs.shape == (3, 450, 20) and d.inputs.dtype == np.float32
    assert d.mask.sum() == 75
    with pytest.raises(ValueError, match="n_cues must be odd"):
        evidence_accumulation(n_cues=4)
    with pytest.raises(ValueError, match=r"do not fit into duration=1000\.0 ms"):
        evidence_accumulation(duration=1000.0)
    with pytest.raises(ValueError, match="p_group must lie in"):
        evidence_accumulation(p_group=1.5)
    with pytest.raises(ValueError, match=r"is not a whole number of steps of dt=0\.7"):
        evidence_accumulation(dt=0.7)


def test_pattern_generation():
    task = pattern_generation(seed=0)
    assert isinstance(task, PatternTask)
    x, y = task
    assert x.shape == (1000, 100) and y.shape == (1000, 1)
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert x.mean() * 1000.0 == pytest.approx(50.0, rel=0.03)
    assert y[0, 0] == 0.0 and np.abs(y).max() == pytest.approx(1.0)
    # the target is a sum of sines with the four periods (and the constant of the shift)
    t = np.arange(1000.0)
    basis = [np.ones(1000)]
    for p in (1000, 500, 333, 200):
        basis += [np.sin(2 * np.pi * t / p), np.cos(2 * np.pi * t / p)]
    A = np.stack(basis, 1)
    coef, *_ = np.linalg.lstsq(A, y[:, 0], rcond=None)
    assert np.abs(A @ coef - y[:, 0]).max() < 1e-10
    amp = np.hypot(coef[1::2], coef[2::2])
    assert (amp > 0).all()
    # weights in [0.5, 2] before the scaling: the ratios stay within 4
    assert amp.max() / amp.min() <= 4.0 + 1e-9
    # seeding; several outputs differ
    assert np.array_equal(pattern_generation(seed=0).target, y)
    assert not np.array_equal(pattern_generation(seed=1).inputs, x)
    two = pattern_generation(seed=0, n_out=2, n_in=10, n_steps=300)
    assert two.inputs.shape == (300, 10) and two.target.shape == (300, 2)
    assert not np.allclose(two.target[:, 0], two.target[:, 1])
    with pytest.raises(ValueError, match="rate=2000.0 Hz exceeds one spike per step"):
        pattern_generation(rate=2000.0)
