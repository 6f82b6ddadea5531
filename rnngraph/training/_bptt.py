"""Backpropagation through time (truncated), with optimisers and losses by RectiPy's names."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["BPTT", "LOSSES", "OPTIMIZERS", "get_loss", "get_optimizer"]

#: Optimisers by RectiPy's names.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
    "adamax": torch.optim.Adamax,
    "rmsprop": torch.optim.RMSprop,
    "rprop": torch.optim.Rprop,
}

#: Losses by RectiPy's names. ``ce`` and ``nll`` take class targets, ``(B, T)`` indices or
#: ``(B, T, n)`` probabilities; time is folded into the batch.
LOSSES: dict[str, type[nn.Module]] = {
    "mse": nn.MSELoss,
    "l1": nn.L1Loss,
    "nll": nn.NLLLoss,
    "ce": nn.CrossEntropyLoss,
    "kld": nn.KLDivLoss,
    "hinge": nn.HingeEmbeddingLoss,
}

LossFn = Callable[[Tensor, Tensor], Tensor]


def get_optimizer(
    name: str | type | torch.optim.Optimizer,
    params: Iterable[nn.Parameter],
    lr: float,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """An optimiser by name (``OPTIMIZERS``), by class, or passed through as an instance."""
    if isinstance(name, torch.optim.Optimizer):
        return name
    if isinstance(name, type) and issubclass(name, torch.optim.Optimizer):
        return name(params, lr=lr, **kwargs)
    if name not in OPTIMIZERS:
        raise ValueError(f"BPTT: unknown optimizer {name!r}; valid names are {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, lr=lr, **kwargs)


def get_loss(name: str | LossFn, **kwargs: Any) -> LossFn:
    """A loss ``fn(output, target) -> scalar`` by name (``LOSSES``) or a callable.

    Named losses see ``(B * T, n)`` outputs: time steps count as samples. Class targets for
    ``ce``/``nll`` may be ``(B, T)`` integer indices.
    """
    if callable(name) and not isinstance(name, str):
        return name
    if name not in LOSSES:
        raise ValueError(f"BPTT: unknown loss {name!r}; valid names are {sorted(LOSSES)}")
    module = LOSSES[name](**kwargs)

    def loss(out: Tensor, target: Tensor) -> Tensor:
        n = out.shape[-1]
        flat_out = out.reshape(-1, n)
        if target.dim() == out.dim() - 1:  # class indices
            return module(flat_out, target.reshape(-1).long())
        return module(flat_out, target.reshape(-1, target.shape[-1]))

    return loss


class BPTT:
    r"""Gradient training of every ``nn.Parameter`` of a network by (truncated) BPTT.

    Each update runs ``update_steps`` steps with autograd on, computes the loss of the
    output against the targets of those steps, backpropagates, clips, steps the optimiser
    and detaches the state (truncation); the next window continues from that state. With
    ``update_steps=None`` a whole sequence is one window.

    Parameters
    ----------
    optimizer : str, optimizer class or instance
        ``sgd``, ``adam``, ``adamw``, ``adagrad``, ``adadelta``, ``adamax``, ``rmsprop``,
        ``rprop`` (RectiPy's names), a ``torch.optim.Optimizer`` subclass or an instance.
    lr : float
        Learning rate.
    loss : str or callable
        ``mse``, ``l1``, ``nll``, ``ce``, ``kld``, ``hinge`` or ``fn(output, target)``
        receiving ``(B, T, n)`` tensors.
    update_steps : int, optional
        Truncation window in steps.
    clip_grad_norm : float, optional
        Clip the global gradient norm to this value.
    optimizer_kwargs, loss_kwargs : dict, optional
        Passed to the optimiser's and the loss's constructors.
    """

    def __init__(
        self,
        optimizer: Any = "adam",
        lr: float = 1e-3,
        loss: str | LossFn = "mse",
        update_steps: int | None = None,
        clip_grad_norm: float | None = None,
        optimizer_kwargs: dict[str, Any] | None = None,
        loss_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if update_steps is not None and (
            isinstance(update_steps, bool) or not isinstance(update_steps, int) or update_steps < 1
        ):
            raise ValueError(f"BPTT: update_steps must be an int >= 1, got {update_steps!r}")
        if not isinstance(lr, int | float) or isinstance(lr, bool) or not lr > 0:
            raise ValueError(f"BPTT: lr must be > 0, got {lr!r}")
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"BPTT: clip_grad_norm must be > 0, got {clip_grad_norm!r}")
        if not (
            isinstance(optimizer, str | torch.optim.Optimizer)
            or (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer))
        ):
            raise TypeError(
                f"BPTT: optimizer must be a name, an Optimizer class or instance, got {optimizer!r}"
            )
        if isinstance(optimizer, str) and optimizer not in OPTIMIZERS:
            raise ValueError(
                f"BPTT: unknown optimizer {optimizer!r}; valid names are {sorted(OPTIMIZERS)}"
            )
        self.optimizer_spec = optimizer
        self.lr = float(lr)
        self.loss_fn = get_loss(loss, **(loss_kwargs or {}))
        #: the loss's name (``None`` for a callable) and keyword arguments
        self.loss_name = loss if isinstance(loss, str) else None
        self.loss_kwargs = dict(loss_kwargs or {})
        self.update_steps = update_steps
        self.clip_grad_norm = clip_grad_norm
        self.optimizer_kwargs = dict(optimizer_kwargs or {})
        self.optimizer: torch.optim.Optimizer | None = None
        self.losses: list[float] = []

    def _params(self, model: nn.Module) -> list[nn.Parameter]:
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(
                "BPTT: the network has no trainable parameters; add edges with "
                "train='gd' or nodes with train=[...]"
            )
        return params

    def fit(
        self,
        model: Any,
        data: list[tuple[Tensor | None, Tensor]],
        epochs: int = 1,
        reset: bool = True,
        progress: bool = False,
    ) -> list[float]:
        """Train ``model`` (a ``CompiledNetwork``) on ``(inputs, targets)`` pairs of
        ``(B, T, .)`` tensors for ``epochs`` passes; returns the loss of every update."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"BPTT.fit: epochs must be an int >= 1, got {epochs!r}")
        for x, y in data:
            if x is None and y.shape[0] != 1:
                raise ValueError(
                    f"BPTT.fit: without inputs a run has one trial, the targets have "
                    f"{y.shape[0]}; pass (B, T, C) inputs for a batch"
                )
        params = self._params(model)
        if self.optimizer is None:
            self.optimizer = get_optimizer(
                self.optimizer_spec, params, self.lr, **self.optimizer_kwargs
            )
        n_updates = (
            sum(-(-y.shape[1] // (self.update_steps or y.shape[1])) for _, y in data) * epochs
        )
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_updates, unit="update")
        losses: list[float] = []
        try:
            with torch.enable_grad():
                for _ in range(epochs):
                    for x, y in data:
                        losses += self._sequence(model, params, x, y, reset, bar)
        finally:
            if bar is not None:
                bar.close()
        self.losses.extend(losses)
        return losses

    def _sequence(
        self, model: Any, params: list[nn.Parameter], x: Tensor | None, y: Tensor, reset: bool, bar
    ) -> list[float]:
        """The updates of one ``(inputs, targets)`` pair, window by window: each window
        starts from the detached state the previous one ended in (truncation), passed to
        the run explicitly; the network holds the last one afterwards."""
        if reset:
            model.reset()
        state, losses = model.state, []
        n_steps = y.shape[1]
        win = self.update_steps or n_steps
        for t0 in range(0, n_steps, win):
            t1 = min(n_steps, t0 + win)
            if x is None:
                rec = model.run(None, state=state, steps=t1 - t0)
            else:
                rec = model.run(x[:, t0:t1], state=state)
            out = rec.output if rec.output.dim() == 3 else rec.output.unsqueeze(0)
            loss = self.loss_fn(out, y[:, t0:t1])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(params, self.clip_grad_norm)
            self.optimizer.step()
            state = {k: v.detach() for k, v in rec.state.items()}
            model.reset(state)
            losses.append(float(loss.detach()))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3g}")
        return losses

    def __repr__(self) -> str:
        return (
            f"BPTT(optimizer={self.optimizer_spec!r}, lr={self.lr:g}, "
            f"update_steps={self.update_steps}, clip_grad_norm={self.clip_grad_norm})"
        )
