"""rnngraph's models behind RectiPy's template paths against RectiPy 0.12's own templates
(``.peers/rectipy``, ``make peers PEERS=rectipy``): every parameter default and initial
value the template writes is the mapped model's. Skipped with a message where the peer's
venv is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _peer_run import peer_python, run_side

import rnngraph as rg

pytestmark = pytest.mark.skipif(
    not peer_python("rectipy").exists(),
    reason="RectiPy's venv .peers/rectipy is absent (make peers PEERS=rectipy)",
)


@pytest.mark.parametrize("path", sorted(rg.compat.TEMPLATES))
def test_a_template_paths_model_has_the_templates_defaults(tmp_path: Path, path: str):
    theirs = run_side("rectipy", "template", tmp_path, path=path)
    model, fixed = rg.compat.TEMPLATES[path]
    node = rg.nodes.MODELS[model](3, **fixed)
    state = node.init_state(1)._asdict()
    ours = {name: getattr(node, name) for name in node.param_names}
    ours.update({name: state[name] for name in node.state_vars if name in state})
    shared = sorted(set(theirs) & set(ours))
    assert len(shared) >= 3, f"the template and the model share too few names: {shared}"
    for name in shared:
        got = np.unique(ours[name].detach().numpy())
        assert got.tolist() == [float(theirs[name])], f"{path}: {name}"
