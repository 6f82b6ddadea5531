r"""The two spiking tasks of e-prop (Bellec et al. 2020, Nat Commun 11:3625,
doi:10.1038/s41467-020-17236-y, Fig. 3 and Supplementary Fig. 7): evidence accumulation
and pattern generation.

Times are in ms and rates in Hz; a spike train is a 0/1 array of one value per step of
``dt`` ms, drawn as Bernoulli events with probability ``rate * dt / 1000`` per step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import keywords
from ._utils import as_rng, check_int, check_positive

__all__ = ["EvidenceTrials", "PatternTask", "evidence_accumulation", "pattern_generation"]


class EvidenceTrials(NamedTuple):
    """Trials of the evidence-accumulation task (see :func:`evidence_accumulation`).

    Attributes
    ----------
    inputs : numpy.ndarray
        ``(B, T, 4 * n_per_group)`` 0/1 spikes.
    labels : numpy.ndarray
        ``(B,)`` int64: 0 when more cues came on the left, 1 when more came on the right.
    mask : numpy.ndarray
        ``(T,)`` bool: the recall window, where the answer is scored.
    """

    inputs: np.ndarray
    labels: np.ndarray
    mask: np.ndarray

    @property
    def targets(self) -> np.ndarray:
        """``(B, T)`` int64 class indices: each trial's label at every step (for
        ``fit_eprop(..., loss_mask=mask)``)."""
        return np.repeat(self.labels[:, None], self.inputs.shape[1], axis=1)


class PatternTask(NamedTuple):
    """The pattern-generation task (see :func:`pattern_generation`).

    Attributes
    ----------
    inputs : numpy.ndarray
        ``(T, n_in)`` frozen 0/1 Poisson spikes.
    target : numpy.ndarray
        ``(T, n_out)`` target pattern, each column a sum of sines scaled to ``[-1, 1]``.
    """

    inputs: np.ndarray
    target: np.ndarray


def _steps(ms: float, dt: float, name: str, where: str) -> int:
    n = round(ms / dt)
    if abs(n * dt - ms) > 1e-9 * max(1.0, ms):
        raise ValueError(f"{where}: {name}={ms!r} ms is not a whole number of steps of dt={dt!r}")
    return n


@keywords("evidence_accumulation")
def evidence_accumulation(
    batch: int = 64,
    seed: int | np.random.Generator | None = None,
    *,
    n_cues: int = 7,
    cue_interval: float = 150.0,
    cue_duration: float = 100.0,
    duration: float | None = None,
    recall_duration: float = 150.0,
    rate: float = 40.0,
    noise_rate: float = 10.0,
    p_group: float = 0.3,
    n_per_group: int = 10,
    dt: float = 1.0,
    dtype: type | np.dtype = np.float64,
) -> EvidenceTrials:
    r"""Trials of the evidence-accumulation task (Bellec et al. 2020, Fig. 3).

    The input has four groups of ``n_per_group`` channels (40 in all by default):

    * **left** (channels ``0 .. n-1``) and **right** (``n .. 2n-1``) cues: cue :math:`k` of
      ``n_cues`` lasts ``cue_duration`` :math:`d` ms from :math:`t_k = (i - d) + k\,i`,
      :math:`i` = ``cue_interval`` (50, 200, 350, ... ms by default); during a cue, the
      channels of its side spike at ``rate`` (40 Hz), the other side's are silent;
    * **recall** (``2n .. 3n-1``): spikes at ``rate`` during the last ``recall_duration`` ms
      (the recall window, 150 ms), silent before;
    * **background noise** (``3n .. 4n-1``): spikes at ``noise_rate`` throughout (10 Hz, a
      quarter of ``rate``, as in the reference implementation).

    Each trial first picks a favoured side (each with probability 1/2); every cue then comes
    from that side with probability ``1 - p_group`` (0.7), independently. The label is the
    side with more cues: 1 (right) when more than ``n_cues // 2`` cues are right, else 0
    (left). The trial lasts ``duration`` ms, by default :math:`n_{cues}\, i + 1200` ms (2250).

    Parameters
    ----------
    batch, n_cues, n_per_group : int
        Number of trials :math:`B`, of cues (odd, so that one side always has more) and of
        channels per group.
    seed : int, numpy.random.Generator or None
        Seed of every draw (``None``: the package's fixed default seed).
    cue_interval, cue_duration, duration, recall_duration, dt : float
        Times in ms (see above); ``dt`` is the step.
    rate, noise_rate : float
        Rates in Hz of the cue and recall channels and of the noise channels.
    p_group : float
        Probability that a cue comes from the side not favoured in this trial (0 <= p <= 1).
    dtype : numpy dtype
        Dtype of ``inputs``.

    Returns
    -------
    EvidenceTrials
        ``inputs`` ``(B, T, 4 n)``, ``labels`` ``(B,)`` int64 and the recall ``mask``
        ``(T,)`` bool; ``.targets`` gives the labels at every step, ``(B, T)``.

    Examples
    --------
    >>> trials = evidence_accumulation(batch=4, seed=0)
    >>> trials.inputs.shape, trials.labels.shape, int(trials.mask.sum())
    ((4, 2250, 40), (4,), 150)
    """
    where = "evidence_accumulation"
    batch = check_int(batch, "batch", where, 1)
    checked = _evidence_steps(
        n_cues,
        n_per_group,
        dt,
        cue_interval,
        cue_duration,
        duration,
        recall_duration,
        rate,
        noise_rate,
        p_group,
        where,
    )
    return _evidence_draw(as_rng(seed, where), batch, *checked, dtype)


def _evidence_steps(
    n_cues,
    n_per_group,
    dt,
    cue_interval,
    cue_duration,
    duration,
    recall_duration,
    rate,
    noise_rate,
    p_group,
    where,
):
    """The arguments of :func:`evidence_accumulation` checked: ``n_cues``, ``n_per_group``,
    ``p_group``, the steps of the trial, of a cue interval, of a cue and of the recall window,
    and the spike probabilities per step of the cue and recall channels and of the noise."""
    n_cues = check_int(n_cues, "n_cues", where, 1)
    if n_cues % 2 == 0:
        raise ValueError(
            f"{where}: n_cues must be odd so that one side has more cues, got {n_cues}"
        )
    n_per_group = check_int(n_per_group, "n_per_group", where, 1)
    dt = check_positive(dt, "dt", where)
    cue_interval = check_positive(cue_interval, "cue_interval", where)
    cue_duration = check_positive(cue_duration, "cue_duration", where)
    recall_duration = check_positive(recall_duration, "recall_duration", where)
    rate = check_positive(rate, "rate", where)
    if isinstance(noise_rate, bool) or not isinstance(noise_rate, int | float) or noise_rate < 0:
        raise ValueError(f"{where}: noise_rate must be a number >= 0 (Hz), got {noise_rate!r}")
    if isinstance(p_group, bool) or not isinstance(p_group, int | float) or not 0 <= p_group <= 1:
        raise ValueError(f"{where}: p_group must lie in [0, 1], got {p_group!r}")
    if cue_duration > cue_interval:
        raise ValueError(
            f"{where}: cue_duration={cue_duration} ms must not exceed "
            f"cue_interval={cue_interval} ms"
        )
    if duration is None:
        duration = n_cues * cue_interval + 1200.0
    duration = check_positive(duration, "duration", where)
    n_steps = _steps(duration, dt, "duration", where)
    n_int = _steps(cue_interval, dt, "cue_interval", where)
    n_cue = _steps(cue_duration, dt, "cue_duration", where)
    n_recall = _steps(recall_duration, dt, "recall_duration", where)
    if n_cues * n_int + n_recall > n_steps:
        raise ValueError(
            f"{where}: the cues ({n_cues} x {cue_interval} ms) and the recall window "
            f"({recall_duration} ms) do not fit into duration={duration} ms"
        )
    for r, name in ((rate, "rate"), (noise_rate, "noise_rate")):
        if r * dt / 1000.0 > 1.0:
            raise ValueError(f"{where}: {name}={r} Hz exceeds one spike per step of {dt} ms")
    p_cue, p_noise = rate * dt / 1000.0, noise_rate * dt / 1000.0
    return n_cues, n_per_group, p_group, n_steps, n_int, n_cue, n_recall, p_cue, p_noise


def _evidence_draw(
    rng, batch, n_cues, n, p_group, n_steps, n_int, n_cue, n_recall, p_cue, p_noise, dtype
):
    """Draw the trials of :func:`evidence_accumulation` from step counts and probabilities."""
    favoured = rng.integers(0, 2, batch)  # (B,) 0: left, 1: right
    p_right = np.where(favoured == 1, 1.0 - p_group, p_group)  # (B,)
    cues = (rng.random((batch, n_cues)) < p_right[:, None]).astype(np.int64)  # (B, n_cues)
    labels = (cues.sum(1) > n_cues // 2).astype(np.int64)  # (B,)

    prob = np.zeros((batch, n_steps, 4 * n))  # spike probability per step
    silence = n_int - n_cue
    for k in range(n_cues):
        t0 = silence + k * n_int
        for side in (0, 1):
            trials = cues[:, k] == side
            prob[trials, t0 : t0 + n_cue, side * n : (side + 1) * n] = p_cue
    prob[:, n_steps - n_recall :, 2 * n : 3 * n] = p_cue
    prob[:, :, 3 * n :] = p_noise
    inputs = (rng.random(prob.shape) < prob).astype(dtype)
    mask = np.zeros(n_steps, dtype=bool)
    mask[n_steps - n_recall :] = True
    return EvidenceTrials(inputs, labels, mask)


@keywords("pattern_generation")
def pattern_generation(
    seed: int | np.random.Generator | None = None,
    *,
    n_in: int = 100,
    rate: float = 50.0,
    n_steps: int = 1000,
    dt: float = 1.0,
    periods: tuple[float, ...] = (1000.0, 500.0, 333.0, 200.0),
    n_out: int = 1,
    dtype: type | np.dtype = np.float64,
) -> PatternTask:
    r"""The pattern-generation task of Bellec et al. (2020, doi:10.1038/s41467-020-17236-y,
    Supplementary Fig. 7): reproduce a fixed sum of sines from frozen Poisson input.

    The input is one draw of ``n_in`` Poisson spike trains at ``rate`` Hz (100 at 50 Hz),
    kept for every trial. Each of the ``n_out`` targets is

    .. math::

        y(t) = \sum_i w_i \sin\!\left(\frac{2\pi t}{P_i} + \phi_i\right), \qquad
        w_i \sim \mathcal U(0.5, 2), \quad \phi_i \sim \mathcal U(0, 2\pi)

    at :math:`t = k\,dt`, :math:`k = 0 .. T-1`, with periods :math:`P_i` of 1000, 500, 333
    and 200 ms, shifted to start at 0 and scaled to a maximum absolute value of 1, as in
    the reference implementation (which spreads a whole number of cycles over the trial
    instead of using the exact periods).

    Parameters
    ----------
    seed : int, numpy.random.Generator or None
        Seed of every draw (``None``: the package's fixed default seed).
    n_in : int
        Number of input channels.
    rate : float
        Input rate in Hz.
    n_steps : int
        Steps :math:`T` (1000 of 1 ms).
    dt : float
        Step in ms.
    periods : tuple of float
        Periods of the sines in ms.
    n_out : int
        Number of target patterns (each with its own weights and phases).
    dtype : numpy dtype
        Dtype of ``inputs`` and ``target``.

    Returns
    -------
    PatternTask
        ``inputs`` ``(T, n_in)`` 0/1 spikes and ``target`` ``(T, n_out)``.
    """
    where = "pattern_generation"
    n_in = check_int(n_in, "n_in", where, 1)
    n_steps = check_int(n_steps, "n_steps", where, 2)
    n_out = check_int(n_out, "n_out", where, 1)
    rate = check_positive(rate, "rate", where)
    dt = check_positive(dt, "dt", where)
    periods = tuple(check_positive(p, "periods", where) for p in periods)
    if not periods:
        raise ValueError(f"{where}: periods must name at least one period")
    if rate * dt / 1000.0 > 1.0:
        raise ValueError(f"{where}: rate={rate} Hz exceeds one spike per step of {dt} ms")
    rng = as_rng(seed, where)
    inputs = (rng.random((n_steps, n_in)) < rate * dt / 1000.0).astype(dtype)
    t = np.arange(n_steps) * dt  # (T,) ms
    target = np.empty((n_steps, n_out))
    for k in range(n_out):
        w = rng.uniform(0.5, 2.0, len(periods))
        phase = rng.uniform(0.0, 2.0 * np.pi, len(periods))
        y = sum(w[i] * np.sin(2.0 * np.pi * t / p + phase[i]) for i, p in enumerate(periods))
        y = y - y[0]
        target[:, k] = y / max(np.abs(y).max(), 1e-6)
    return PatternTask(inputs, target.astype(dtype))
