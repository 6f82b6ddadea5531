"""Backpropagation through time (truncated), with optimisers and losses by RectiPy's names."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import as_int

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


def _positive(where: str, name: str, value: Any) -> float:
    """``value`` as a finite float > 0; anything else is a ``ValueError`` naming ``name``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if not ok:
        raise ValueError(
            f"{where}: {name} must be a Python or NumPy number > 0, got {type(value).__name__} "
            f"{value!r}"
        )
    if not value > 0:
        raise ValueError(f"{where}: {name} must be > 0, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{where}: {name} must be finite, got {value!r}")
    return float(value)


def _constructor_keywords(cls: type) -> list[str] | None:
    """The keyword arguments ``cls(...)`` takes, or ``None`` when it takes any
    (``**kwargs``)."""
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _kwargs_dict(where: str, name: str, kwargs: Any) -> dict[str, Any]:
    """``kwargs`` (``None`` or a mapping of names to values) as a dict."""
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise TypeError(f"{where}: {name} must be a dict of keyword arguments, got {kwargs!r}")
    return dict(kwargs)


#: the learning rate of an optimiser built by name or class when none is given
DEFAULT_LR = 1e-3


def _group_lrs(optimizer: torch.optim.Optimizer) -> list[float]:
    """The learning rate of every param_group of ``optimizer``."""
    return [float(g["lr"]) for g in optimizer.param_groups]


def resolve_lr(where: str, optimizer: Any, lr: Any) -> float | None:
    """The learning rate a trainer keeps for ``optimizer`` given ``lr``: ``lr`` checked (a
    finite float > 0), or without it :data:`DEFAULT_LR`. An optimiser instance brings its
    own: ``lr`` must then be that of every one of its param_groups (or left out); without
    it the result is the groups' common rate (``None`` when they differ)."""
    if isinstance(optimizer, torch.optim.Optimizer):
        own = _group_lrs(optimizer)
        if lr is None:
            return own[0] if own and all(v == own[0] for v in own) else None
        lr = _positive(where, "lr", lr)
        if any(v != lr for v in own):
            rates = own[0] if all(v == own[0] for v in own) else own
            raise ValueError(
                f"{where}: lr={lr!r}, but the optimizer instance ({type(optimizer).__name__}) "
                f"has lr={rates!r} in its param_groups; an instance brings its own learning "
                "rate: leave lr out, set it in the optimizer's constructor, or pass the "
                "optimizer by name or class"
            )
        return lr
    return DEFAULT_LR if lr is None else _positive(where, "lr", lr)


def set_optimizer_lr(optimizer: torch.optim.Optimizer | None, lr: float) -> None:
    """Write ``lr`` into every param_group of ``optimizer`` (in place where a group holds
    its rate as a tensor)."""
    if optimizer is None:
        return
    for group in optimizer.param_groups:
        if isinstance(group["lr"], Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def check_optimizer(where: str, optimizer: Any, lr: Any, kwargs: Any) -> dict[str, Any]:
    """Refuse an optimiser that could not be built: a spec that is no name, class or
    instance, an unknown name, keywords its constructor does not take or (for the
    optimisers of ``OPTIMIZERS``) values it refuses, checked by building it over a
    stand-in parameter with ``lr`` (``None``: :data:`DEFAULT_LR`). Returns ``kwargs`` as
    a dict."""
    kwargs = _kwargs_dict(where, "optimizer_kwargs", kwargs)
    lr = DEFAULT_LR if lr is None else lr
    if isinstance(optimizer, torch.optim.Optimizer):
        if kwargs:
            raise TypeError(
                f"{where}: optimizer_kwargs {sorted(kwargs)} cannot reach an optimizer "
                f"instance ({type(optimizer).__name__}, built already); pass them to its "
                "constructor, or pass the optimizer by name or class"
            )
        return kwargs
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"{where}: unknown optimizer {optimizer!r}; valid names are {sorted(OPTIMIZERS)}"
            )
        cls, label = OPTIMIZERS[optimizer], f"{optimizer!r} ({OPTIMIZERS[optimizer].__name__})"
    elif isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        cls, label = optimizer, optimizer.__name__
    else:
        raise TypeError(
            f"{where}: optimizer must be a name, an Optimizer class or instance, got {optimizer!r}"
        )
    if "lr" in kwargs:
        raise TypeError(f"{where}: pass the learning rate as lr=, not in optimizer_kwargs")
    valid = _constructor_keywords(cls)
    if valid is not None:
        valid = [v for v in valid if v not in ("params", "lr")]
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise TypeError(
                f"{where}: optimizer {label} takes no keyword argument(s) {unknown} "
                f"(optimizer_kwargs); it takes {valid}"
            )
    if cls in OPTIMIZERS.values():
        try:
            cls([torch.zeros(1, requires_grad=True)], lr=lr, **kwargs)
        except (TypeError, ValueError) as err:
            raise type(err)(
                f"{where}: optimizer {label}, optimizer_kwargs={kwargs}: {err}"
            ) from None
    return kwargs


def get_optimizer(
    name: str | type | torch.optim.Optimizer,
    params: Iterable[nn.Parameter],
    lr: float | None,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """An optimiser by name (``OPTIMIZERS``) or by class, built over ``params`` with the
    learning rate ``lr`` (``None``: :data:`DEFAULT_LR`), or passed through as an instance,
    which takes no ``kwargs`` and keeps its own learning rate: ``lr`` must then be
    ``None`` or that of every param_group."""
    where = "get_optimizer"
    check_optimizer(where, name, lr, kwargs)
    lr = resolve_lr(where, name, lr)
    if isinstance(name, torch.optim.Optimizer):
        return name
    cls = OPTIMIZERS[name] if isinstance(name, str) else name
    return cls(params, lr=lr, **kwargs)


def _named_loss(where: str, name: Any, kwargs: Any) -> LossFn:
    """``get_loss``, its errors named after ``where``."""
    kwargs = _kwargs_dict(where, "loss_kwargs", kwargs)
    if callable(name) and not isinstance(name, str):
        if kwargs:
            raise TypeError(
                f"{where}: loss_kwargs {sorted(kwargs)} go to a loss by name; a loss callable "
                "takes none (bind them into the callable)"
            )
        return name
    if not isinstance(name, str) or name not in LOSSES:
        raise ValueError(f"{where}: unknown loss {name!r}; valid names are {sorted(LOSSES)}")
    cls = LOSSES[name]
    valid = _constructor_keywords(cls)
    unknown = sorted(set(kwargs) - set(valid or kwargs))
    if unknown:
        raise TypeError(
            f"{where}: loss {name!r} ({cls.__name__}) takes no keyword argument(s) {unknown} "
            f"(loss_kwargs); it takes {valid}"
        )
    reductions = ("mean", "sum", "batchmean") if cls is nn.KLDivLoss else ("mean", "sum")
    if "reduction" in kwargs and kwargs["reduction"] not in reductions:
        per_sample = " gives one loss per sample" if kwargs["reduction"] == "none" else ""
        raise ValueError(
            f"{where}: loss {name!r} with reduction={kwargs['reduction']!r}{per_sample}; "
            f"training needs one number: pass reduction= one of {list(reductions)}"
        )
    try:
        module = cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"{where}: loss {name!r} ({cls.__name__}), loss_kwargs={kwargs}: {err}"
        ) from None

    def loss(out: Tensor, target: Tensor) -> Tensor:
        n = out.shape[-1]
        flat_out = out.reshape(-1, n)
        if target.dim() == out.dim() - 1:  # class indices
            return module(flat_out, target.reshape(-1).long())
        return module(flat_out, target.reshape(-1, target.shape[-1]))

    return loss


def get_loss(name: str | LossFn, **kwargs: Any) -> LossFn:
    """A loss ``fn(output, target) -> scalar`` by name (``LOSSES``) or a callable (which
    takes no ``kwargs``).

    Named losses see ``(B * T, n)`` outputs: time steps count as samples. Class targets for
    ``ce``/``nll`` may be ``(B, T)`` integer indices.
    """
    return _named_loss("get_loss", name, kwargs)


def optimizer_of(trainer: Any) -> torch.optim.Optimizer | None:
    """The optimiser of ``trainer`` (a ``BPTT`` or an ``EProp``): the one it built, or the
    instance it was given; ``None`` before a trainer with a name or class builds one."""
    if trainer.optimizer is not None:
        return trainer.optimizer
    spec = trainer.optimizer_spec
    return spec if isinstance(spec, torch.optim.Optimizer) else None


def build_optimizer(trainer: Any, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """``trainer``'s optimiser over ``params``: its instance, or one built from its name
    or class with its ``lr`` and ``optimizer_kwargs``."""
    spec = trainer.optimizer_spec
    if isinstance(spec, torch.optim.Optimizer):
        return spec
    return get_optimizer(spec, params, trainer.lr, **trainer.optimizer_kwargs)


def optimizer_label(spec: Any) -> str:
    """An optimiser spec as a trainer's repr shows it (an instance by its class)."""
    if isinstance(spec, torch.optim.Optimizer):
        return f"<{type(spec).__name__} instance>"
    return repr(spec)


def lr_label(lr: float | None) -> str:
    """``lr`` as a trainer's repr shows it."""
    return "<per param_group>" if lr is None else f"{lr:g}"


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
    lr : float, optional
        Learning rate; default 1e-3 (:data:`DEFAULT_LR`). An optimizer instance keeps its
        own: ``lr`` must then be left out or equal the rate of every one of its
        param_groups (it is refused otherwise). :meth:`set_lr` changes it later.
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
        lr: float | None = None,
        loss: str | LossFn = "mse",
        update_steps: int | None = None,
        clip_grad_norm: float | None = None,
        optimizer_kwargs: dict[str, Any] | None = None,
        loss_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if update_steps is not None:
            update_steps = as_int("BPTT", "update_steps", update_steps, 1, type_error=ValueError)
        if lr is not None:
            lr = _positive("BPTT", "lr", lr)
        if clip_grad_norm is not None:
            clip_grad_norm = _positive("BPTT", "clip_grad_norm", clip_grad_norm)
        self.optimizer_kwargs = check_optimizer("BPTT", optimizer, lr, optimizer_kwargs)
        self.optimizer_spec = optimizer
        #: the learning rate (``None``: an optimizer instance whose groups differ)
        self.lr = resolve_lr("BPTT", optimizer, lr)
        self.loss_fn = _named_loss("BPTT", loss, loss_kwargs)
        #: the loss's name (``None`` for a callable) and keyword arguments
        self.loss_name = loss if isinstance(loss, str) else None
        self.loss_kwargs = dict(loss_kwargs or {})
        self.update_steps = update_steps
        self.clip_grad_norm = clip_grad_norm
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
        for k, (x, y) in enumerate(data):
            if y.dim() < 2 or 0 in y.shape[:2]:
                raise ValueError(
                    f"BPTT.fit: the targets of pair {k} must be (B, T, n) or (B, T) class "
                    f"indices with B, T >= 1, got shape {tuple(y.shape)}"
                )
            if x is None and y.shape[0] != 1:
                raise ValueError(
                    f"BPTT.fit: without inputs a run has one trial, the targets have "
                    f"{y.shape[0]}; pass (B, T, C) inputs for a batch"
                )
        params = self._params(model)
        if self.optimizer is None:
            self.optimizer = build_optimizer(self, params)
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

    def set_lr(self, lr: float) -> None:
        """Set the learning rate from the next update on: the trainer's ``lr`` and that of
        every param_group of its optimiser (an optimizer instance's too, and one built
        later starts with it)."""
        self.lr = _positive(f"{type(self).__name__}.set_lr", "lr", lr)
        set_optimizer_lr(optimizer_of(self), self.lr)

    def __repr__(self) -> str:
        return (
            f"BPTT(optimizer={optimizer_label(self.optimizer_spec)}, lr={lr_label(self.lr)}, "
            f"update_steps={self.update_steps}, clip_grad_norm={self.clip_grad_norm})"
        )
