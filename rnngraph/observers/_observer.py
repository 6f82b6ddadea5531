"""What to record during a run (``Observer``) and what came out (``Recording``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._checks import as_int, keywords

__all__ = ["Observer", "Recording", "Recordings"]


class Observer:
    """Names the variables to record, and when.

    Parameters
    ----------
    record : str or iterable of str
        ``"node"`` records a node's output, ``"node.var"`` one of its state variables
        (``"res"``, ``"res.v"``). The network's output is always available as
        ``Recording.output``.
    every : int
        Record every ``every``-th step (RectiPy's ``sampling_steps``); default 1.
    start : int
        First step recorded (RectiPy's ``cutoff``); default 0.

    Notes
    -----
    Step ``k`` (0-based) of a run is recorded when ``k >= start`` and
    ``(k - start) % every == 0``; ``Recording.steps`` lists them. Recordings are
    preallocated tensors of shape ``(B, T_rec, n)``.
    """

    @keywords("Observer")
    def __init__(self, record: str | Iterable[str] = (), every: int = 1, start: int = 0) -> None:
        if not isinstance(record, str | Iterable) or isinstance(record, Mapping):
            raise TypeError(
                f"Observer: record must be a name or a list of names, got {type(record).__name__}"
            )
        names = [record] if isinstance(record, str) else list(record)
        for name in names:
            if not isinstance(name, str) or not name or name.count(".") > 1:
                raise ValueError(
                    f"Observer: each recorded name must be 'node' or 'node.var', got {name!r}"
                )
        if len(set(names)) != len(names):
            raise ValueError(f"Observer: names recorded twice in {names}")
        self.every = as_int("Observer", "every", every, minimum=1, type_error=ValueError)
        self.start = as_int("Observer", "start", start, minimum=0, type_error=ValueError)
        self.record = tuple(names)

    def steps(self, n_steps: int) -> range:
        """Indices of the recorded steps of an ``n_steps``-long run."""
        return range(self.start, n_steps, self.every)

    def __repr__(self) -> str:
        return f"Observer(record={list(self.record)}, every={self.every}, start={self.start})"


class Recording(Mapping):
    """The result of a run: recorded variables, the output and the final state.

    ``rec["res.v"]`` returns a recorded variable in the layout of the run's input:
    ``(B, T_rec, n)`` for batched input, ``(T_rec, n)`` for unbatched input.

    Attributes
    ----------
    output : Tensor
        The output node's output at every step, ``(B, T, n_out)`` or ``(T, n_out)``.
    state : dict
        The network state after the last step (pass it as ``state=`` to continue).
    steps : Tensor
        Indices of the recorded steps.
    dt : float
        The network's step size; ``times = steps * dt``.
    loss : list of float
        Losses recorded by trainers (empty for plain runs).
    """

    def __init__(
        self,
        data: dict[str, Tensor],
        steps: Tensor,
        dt: float,
        output: Tensor | None = None,
        state: dict[str, Any] | None = None,
        batched: bool = True,
    ) -> None:
        self._data = data
        self.steps = steps
        self.dt = dt
        self._output = output
        self._state = state
        self._no_state = ""  # why a recording has no final state (a part of a list run)
        self.batched = batched
        self.loss: list[float] = []

    @property
    def state(self) -> dict[str, Any] | None:
        """The network state after the last step (pass it as ``state=`` to continue)."""
        if self._no_state:
            raise AttributeError(f"Recording.state: {self._no_state}")
        return self._state

    @state.setter
    def state(self, value: dict[str, Any] | None) -> None:
        self._state, self._no_state = value, ""

    def part(self, rows: slice, length: int, batched: bool, why: str) -> Recording:
        """The recording of the batch rows ``rows`` over their first ``length`` steps (one
        sequence of a list run, padded to the longest), in the layout ``batched``; it holds
        no final state, and ``state`` says ``why``."""
        m = int((self.steps < length).sum())
        data = {k: v[rows, :m] for k, v in self._data.items()}
        out = None if self._output is None else self._output[rows, :length]
        part = Recording(data, self.steps[:m], self.dt, out, None, batched)
        part._no_state = why
        return part

    def _layout(self, t: Tensor) -> Tensor:
        return t if self.batched else t[0]

    def __getitem__(self, key: str) -> Tensor:
        if key not in self._data:
            raise KeyError(f"Recording: {key!r} was not recorded; recorded: {list(self._data)}")
        return self._layout(self._data[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def with_batch(self, key: str | None = None) -> Tensor:
        """The values recorded as ``key`` (``None``: the output) as ``(B, T, n)``, whatever
        the layout of the run's input (``rec[key]`` drops the batch axis of a ``(T, C)``
        input)."""
        if key is None:
            if self._output is None:
                raise AttributeError("Recording: this recording holds no output")
            return self._output
        if key not in self._data:
            raise KeyError(f"Recording: {key!r} was not recorded; recorded: {list(self._data)}")
        return self._data[key]

    def __len__(self) -> int:
        return len(self._data)

    @property
    def output(self) -> Tensor:
        if self._output is None:
            raise AttributeError("Recording: this recording holds no output")
        return self._layout(self._output)

    @property
    def times(self) -> Tensor:
        """Times of the recorded steps, ``steps * dt`` (unit of ``dt``)."""
        return self.steps.to(torch.float64) * self.dt

    def numpy(self) -> dict[str, np.ndarray]:
        """All recorded variables as numpy arrays (detached, on the CPU)."""
        return {k: self[k].detach().cpu().numpy() for k in self._data}

    def plot(
        self,
        keys: str | Iterable[str] | None = None,
        batch: int = 0,
        max_units: int = 10,
        ax: Any = None,
    ):
        """Plot recorded variables over time (needs matplotlib: ``pip install rnngraph[plot]``).

        Parameters
        ----------
        keys : str or iterable of str, optional
            Variables to plot (default: all), one axis each.
        batch : int
            Batch element to show.
        max_units : int
            Plot at most this many units per variable.
        ax : matplotlib axis or sequence of axes, optional
            Where to draw.

        Returns
        -------
        The matplotlib axes.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "Recording.plot needs matplotlib: pip install 'rnngraph[plot]'"
            ) from err
        keys = (
            list(self._data) if keys is None else ([keys] if isinstance(keys, str) else list(keys))
        )
        if ax is None:
            _, ax = plt.subplots(
                len(keys), 1, sharex=True, squeeze=False, figsize=(8, 2.2 * len(keys))
            )
            axes = list(ax[:, 0])
        else:
            axes = list(np.atleast_1d(ax))
        t = self.times.numpy()
        for a, k in zip(axes, keys, strict=False):
            y = self._data[k][batch, :, :max_units].detach().cpu().numpy()
            a.plot(t, y, lw=0.8)
            a.set_ylabel(k)
        axes[-1].set_xlabel("time")
        return axes

    def __repr__(self) -> str:
        shapes = {k: tuple(self[k].shape) for k in self._data}
        return f"Recording({shapes}, steps={len(self.steps)}, dt={self.dt})"


class Recordings(list):
    """The recordings of a run over a list of sequences: one :class:`Recording` per
    sequence, in the order given, each over that sequence's own steps.

    The methods gather one variable of every sequence (``key``: a recorded name, ``None``
    for the output) into one tensor whose rows are the sequences (the batch rows of a
    ``(B, T, C)`` sequence are rows of their own), the inputs of a classifier.
    """

    def _each(self, key: str | None) -> list[Tensor]:
        return [rec.with_batch(key) for rec in self]  # (B_k, T_k, n) each

    def last(self, key: str | None = None) -> Tensor:
        """``(N, n)``: each sequence's value at its last recorded step (last-state
        classification, :math:`x_k(T_k - 1)`)."""
        return torch.cat([v[:, -1] for v in self._each(key)])

    def mean(self, key: str | None = None, start: int = 0) -> Tensor:
        r"""``(N, n)``: each sequence's mean over its recorded steps from the ``start``-th
        on, :math:`\frac{1}{T_k - s} \sum_{t \ge s} x_k(t)` (mean-state classification)."""
        start = as_int("Recordings.mean", "start", start, minimum=0)
        values = self._each(key)
        short = [k for k, v in enumerate(values) if v.shape[1] <= start]
        if short:
            raise ValueError(
                f"Recordings.mean: start={start} leaves no recorded step of sequence "
                f"{short[0]} ({values[short[0]].shape[1]} recorded)"
            )
        return torch.cat([v[:, start:].mean(1) for v in values])

    def cat(self, key: str | None = None) -> Tensor:
        """``(sum of B_k T_k, n)``: every recorded step of every sequence, one after the
        other (per-step scores of a transduction)."""
        return torch.cat([v.reshape(-1, v.shape[-1]) for v in self._each(key)])
