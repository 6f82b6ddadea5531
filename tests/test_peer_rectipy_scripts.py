"""RectiPy scripts run unchanged but for their import line: each script in
``tests/rectipy_scripts/`` (ridge readout, QIF and QIF-SFA spiking networks, RLS, BPTT of
rate neurons, the Observer interface, a user's own two-population YAML template) runs in
RectiPy 0.12's venv (``.peers/rectipy``) and here with ``from rectipy import`` replaced by
``from rnngraph.compat.rectipy import``; every array it saves agrees (float64 states and
outputs to 1e-6 of their largest value, spike counts exactly). Skipped with a message where
the peer's venv is absent. Also: rnngraph's copies of RectiPy's neuron templates read as
RectiPy's own files do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _peer_run import peer_python

from rnngraph.compat import pyrates

SCRIPTS = Path(__file__).with_name("rectipy_scripts")
PYTHON = peer_python("rectipy")

pytestmark = pytest.mark.skipif(
    not PYTHON.exists(),
    reason="RectiPy's venv .peers/rectipy is absent (make peers PEERS=rectipy)",
)


def run_script(python: str, script: Path, out: Path) -> None:
    """Run ``script`` with ``python`` in the scripts' directory."""
    done = subprocess.run(
        [python, str(script), str(out)],
        cwd=SCRIPTS,
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"},
    )
    if done.returncode:
        raise AssertionError(f"{script.name} with {python} failed:\n{done.stderr[-3000:]}")


@pytest.mark.parametrize("name", sorted(p.stem for p in SCRIPTS.glob("*.py")))
def test_a_rectipy_script_gives_rectipys_numbers(tmp_path: Path, name: str):
    source = (SCRIPTS / f"{name}.py").read_text()
    assert "from rectipy import" in source
    ours = tmp_path / f"{name}_rnngraph.py"
    ours.write_text(source.replace("from rectipy import", "from rnngraph.compat.rectipy import"))
    run_script(str(PYTHON), SCRIPTS / f"{name}.py", tmp_path / "theirs.npz")
    run_script(sys.executable, ours, tmp_path / "ours.npz")
    with np.load(tmp_path / "theirs.npz") as a, np.load(tmp_path / "ours.npz") as b:
        # the script's own time after its imports (RectiPy's includes PyRates' compiling)
        print(f"{name}: RectiPy {float(a['time_s']):.2f} s, rnngraph {float(b['time_s']):.2f} s")
        assert set(a.files) - set(b.files) <= {"df"}, "pandas only on RectiPy's side"
        assert set(b.files) <= set(a.files)
        for key in set(b.files) - {"time_s"}:
            x, y = a[key], b[key]
            assert x.shape == y.shape, key
            if key.endswith("spikes"):
                assert x.sum() > 0, f"{name}: no spikes to compare"
                np.testing.assert_array_equal(y, x, err_msg=f"{name}: {key}")
                continue
            scale = max(float(np.abs(x).max()), 1e-12)
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-6 * scale, err_msg=f"{name}: {key}")


def _rectipys_file(relative: str) -> Path:
    site = next(PYTHON.parents[1].glob("lib/python*/site-packages"))
    return site / "neuron_model_templates" / relative


@pytest.mark.parametrize(
    "relative, names",
    [
        ("rate_neurons/leaky_integrator", ["tanh", "sigmoid"]),
        ("spiking_neurons/qif", ["qif", "qif_sfa"]),
        ("spiking_neurons/lif", ["lif"]),
        ("spiking_neurons/ik", ["ik", "iku", "ik_biexp"]),
    ],
)
def test_the_bundled_templates_read_as_rectipys_own_files(relative: str, names: list[str]):
    theirs = _rectipys_file(relative)
    ours = pyrates.BUNDLED / "neuron_model_templates" / relative
    assert theirs.with_suffix(".yaml").is_file()
    for name in names:
        a = pyrates.read_template(f"{theirs}/{name}")
        b = pyrates.read_template(f"{ours}/{name}")
        assert [op.name for op in a.operators] == [op.name for op in b.operators]
        for x, y in zip(a.operators, b.operators, strict=True):
            assert [e.replace(" ", "") for e in x.equations] == [
                e.replace(" ", "") for e in y.equations
            ], name
            assert x.variables == y.variables, name
