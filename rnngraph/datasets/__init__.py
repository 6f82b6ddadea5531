"""Benchmark data sets: chaotic series, NARMA, FORCE targets, forecasting splits and the
e-prop spiking tasks.

Every generator is deterministic: random draws come from a ``seed`` (an int or a
``numpy.random.Generator``), and ``seed=None`` means a fixed default seed.
"""

from ._chaos import lorenz, mackey_glass
from ._eprop_tasks import EvidenceTrials, PatternTask, evidence_accumulation, pattern_generation
from ._force import force_target
from ._forecasting import to_forecasting
from ._narma import narma
from ._utils import DEFAULT_SEED

__all__ = [
    "DEFAULT_SEED",
    "EvidenceTrials",
    "PatternTask",
    "evidence_accumulation",
    "force_target",
    "lorenz",
    "mackey_glass",
    "narma",
    "pattern_generation",
    "to_forecasting",
]
