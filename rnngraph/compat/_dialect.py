"""RectiPy's dialect: template paths and ``op/var`` names."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["TEMPLATES", "resolve_model", "strip_op"]

#: RectiPy's template paths: the built-in model each stands for and the options it fixes.
TEMPLATES: Mapping[str, tuple[str, Mapping[str, Any]]] = MappingProxyType(
    {
        "neuron_model_templates.rate_neurons.leaky_integrator.tanh": ("li", {"activation": "tanh"}),
        "neuron_model_templates.rate_neurons.leaky_integrator.sigmoid": (
            "li",
            {"activation": "sigmoid"},
        ),
        "neuron_model_templates.spiking_neurons.qif.qif": ("qif", {}),
        "neuron_model_templates.spiking_neurons.ik.ik": ("izhikevich", {}),
    }
)


def resolve_model(where: str, name: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The built-in model name and parameters of a model name (a template path resolved,
    any other name as it is). An option the template fixes may not be given otherwise."""
    if name not in TEMPLATES:
        return name, dict(params)
    model, fixed = TEMPLATES[name]
    clash = [k for k in fixed if k in params and params[k] != fixed[k]]
    if clash:
        raise ValueError(
            f"{where}: the template {name!r} fixes {dict(fixed)}; got "
            f"{ {k: params[k] for k in clash} }"
        )
    return model, {**dict(params), **fixed}


def strip_op(name: str | None) -> str | None:
    """RectiPy names variables ``op/var`` (or ``all/op/var``); rnngraph uses ``var``.
    Anything but a string comes back as it is, for the caller's check to name."""
    return name.rsplit("/", 1)[-1] if isinstance(name, str) else name
