"""Compatibility dialects: the names and interfaces other libraries' users write, in one place.

``rnngraph.compat.rectipy`` is RectiPy 0.12's ``Network`` (and ``Observer`` and helpers) on
rnngraph's core, with RectiPy's semantics, so that a RectiPy script runs with its import
line changed; ``rnngraph.compat.pyrates`` reads PyRates' YAML templates (RectiPy's models)
into models of the core. ``_dialect`` holds the RectiPy names rnngraph's own ``Network``
takes: its template paths (mapped to the built-in model and the options they fix) and its
``op/var`` variable names; every name it accepts is honoured or refused with an error
(RectiPy's ``output_var`` is refused where it would change what a node emits). Other
libraries' names that are plain keyword arguments (reservoirpy's ``lr``, ``sr``; Rockpool's
``tau_mem``, ``v_thresh``) are the built-in models' own parameter names.

``rnngraph.compat.snntorch`` and ``rnngraph.compat.norse`` add snnTorch's ``Leaky``,
``RLeaky`` and ``Synaptic`` and Norse's ``LIFCell`` and ``LIFRecurrentCell`` to a network
in those libraries' terms (``beta``, ``threshold``, ``spike_grad``; ``LIFParameters``), with
the same spikes and gradients; their options that rnngraph does not reproduce are refused.
``rnngraph.compat.nest`` builds NEST's e-prop tutorial networks and trainer.
"""

from ._dialect import TEMPLATES, resolve_model, strip_op

# ``snntorch`` and ``norse`` build on ``rnngraph.nodes``, which reads the RectiPy names
# here: the package imports them after the models (``rnngraph/__init__.py``)
__all__ = ["TEMPLATES", "resolve_model", "strip_op"]
