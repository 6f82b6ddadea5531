"""RectiPy's side of ``test_peer_rectipy.py``; runs inside ``.peers/rectipy``.

    .peers/rectipy/bin/python tests/_rectipy_side.py TASK IN.npz OUT.npz

Task ``template``: the variables of the node template at ``path`` (RectiPy's
``neuron_model_templates`` YAML files, as its wheel ships them), each operator's numbers
and initial values (``variable(x)``, ``output(x)``), written as ``name=value`` arrays;
inputs (``input(x)``) are left out.
"""

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
from ruamel.yaml import YAML


def template(path: str) -> dict[str, float]:
    parts = path.split(".")
    package = Path(importlib.util.find_spec(parts[0]).submodule_search_locations[0])
    file = package.joinpath(*parts[1:-1]).with_suffix(".yaml")
    doc = YAML(typ="safe").load(file.read_text())
    out: dict[str, float] = {}

    def variables(op: str) -> dict:
        spec = doc[op]
        base = spec.get("base", "OperatorTemplate")
        inherited = {} if base == "OperatorTemplate" else variables(base)
        return {**inherited, **spec.get("variables", {})}

    for op in doc[parts[-1]]["operators"]:
        for name, value in variables(op).items():
            if isinstance(value, int | float):
                out[name] = float(value)
                continue
            m = re.fullmatch(r"(variable|output)\((.*)\)", str(value))
            if m:
                out[name] = float(m.group(2))
    return out


def main(task: str, src: str, dst: str) -> None:
    path = str(np.load(src)["path"])
    np.savez(dst, **{k: np.float64(v) for k, v in template(path).items()})


if __name__ == "__main__":
    main(*sys.argv[1:4])
