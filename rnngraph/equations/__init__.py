"""Models from equations: Brian2's equation syntax, with optional physical units, compiled
into the batched, differentiable loop of every built-in model (see :func:`equation_model`).
"""

from ._model import EquationModel, equation_model
from ._text import Equations
from ._zoo import equation_form

__all__ = ["EquationModel", "Equations", "equation_form", "equation_model"]
