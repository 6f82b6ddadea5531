"""Compatibility dialects: the names other libraries' users write, in one place.

``rnngraph.compat.rectipy`` holds RectiPy's: its template paths (mapped to the built-in
model and the options they fix) and its ``op/var`` variable names. The ``Network`` facade
resolves these names here and nowhere else; every name it accepts is honoured or refused
with an error (RectiPy's ``output_var`` is refused where it would change what a node
emits). Other libraries' names that are plain keyword arguments (reservoirpy's ``lr``,
``sr``; Rockpool's ``tau_mem``, ``v_thresh``) are the built-in models' own parameter names.

``rnngraph.compat.snntorch`` and ``rnngraph.compat.norse`` add snnTorch's ``Leaky``,
``RLeaky`` and ``Synaptic`` and Norse's ``LIFCell`` and ``LIFRecurrentCell`` to a network
in those libraries' terms (``beta``, ``threshold``, ``spike_grad``; ``LIFParameters``), with
the same spikes and gradients; their options that rnngraph does not reproduce are refused.
"""

from .rectipy import TEMPLATES, resolve_model, strip_op

# ``snntorch`` and ``norse`` build on ``rnngraph.nodes``, which reads the RectiPy names
# here: the package imports them after the models (``rnngraph/__init__.py``)
__all__ = ["TEMPLATES", "resolve_model", "strip_op"]
