"""Observer and Recording: strides, start steps, layout, numpy, plotting, chunked runs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph import Network, Observer, Recording
from rnngraph.network import _compiled

T = 47


def _net(dtype=torch.float32):
    net = Network(0.25, dtype=dtype)
    net.add_func_node("inp", 2)
    net.add_func_node("pre", 6, "tanh")  # static: fed by the input only
    net.add_diffeq_node("res", "leaky_integrator", 6, tau=1.5)
    net.add_diffeq_node("mf", "qif_mf", 2, eta=-1.0, integrator="rk4")
    net.add_func_node("out", 3, "relu")
    net.add_edge("inp", "pre", seed=0)
    net.add_edge("pre", "res", seed=1)
    net.add_edge("res", "res", rg.recurrent_weights(6, 0.9, 0.5, seed=2), feedback=True)
    net.add_edge("res", "mf", seed=3)
    net.add_edge("mf", "out", seed=4)
    net.add_edge("res", "out", seed=5)
    return net


NAMES = ["inp", "pre", "res", "res.v", "mf.r", "mf.v", "out"]


@pytest.fixture
def x():
    return torch.randn(3, T, 2, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("every", "start"), [(1, 0), (3, 5), (4, 0), (10, 46), (7, 2)])
def test_strided_recording_equals_full_recording(x, every, start):
    net = _net()
    full = net.run(x, record=NAMES)
    net.reset()
    rec = net.run(x, observer=Observer(NAMES, every=every, start=start))
    steps = list(range(start, T, every))
    assert rec.steps.tolist() == steps
    np.testing.assert_allclose(rec.times.numpy(), np.array(steps) * 0.25)
    for name in NAMES:
        assert rec[name].shape == (3, len(steps), full[name].shape[-1])
        torch.testing.assert_close(rec[name], full[name][:, steps], rtol=0, atol=0)
    # the output is every step, whatever the stride
    torch.testing.assert_close(rec.output, full.output, rtol=0, atol=0)


def test_full_recording_matches_output_and_state(x):
    rec = _net().run(x, record=NAMES)
    torch.testing.assert_close(rec["out"], rec.output, rtol=0, atol=0)
    torch.testing.assert_close(rec["inp"], x, rtol=0, atol=0)
    torch.testing.assert_close(rec["res"], torch.tanh(rec["res.v"]), rtol=0, atol=1e-7)
    torch.testing.assert_close(rec["res.v"][:, -1], rec.state["res.v"], rtol=0, atol=0)
    torch.testing.assert_close(rec["mf.r"][:, -1], rec.state["mf.r"], rtol=0, atol=0)


def test_rectipy_sampling_steps_and_cutoff(x):
    net = _net()
    full = net.run(x, record="res.v")
    net.reset()
    rec = net.run(x, sampling_steps=5, cutoff=10, record="res.v")
    assert rec.steps.tolist() == list(range(10, T, 5))
    torch.testing.assert_close(rec["res.v"], full["res.v"][:, 10::5], rtol=0, atol=0)


def test_start_beyond_the_run_records_nothing(x):
    rec = _net().run(x, observer=Observer(["res", "pre"], start=T + 3))
    assert rec.steps.numel() == 0 and rec["res"].shape == (3, 0, 6) and rec["pre"].shape[1] == 0


@pytest.mark.parametrize("chunk_elements", [1, 7, 50])
def test_chunked_runs_equal_one_chunk(monkeypatch, x, chunk_elements):
    """The loop runs in chunks of precomputed input; strides carry across chunk borders.
    (A GEMM over fewer rows may round differently: float64 and a round-off tolerance.)"""
    net = _net(torch.float64)
    x = x.double()
    full = net.run(x, observer=Observer(NAMES, every=3, start=1))
    monkeypatch.setattr(_compiled, "_CHUNK_ELEMENTS", chunk_elements)
    net.reset()
    rec = net.run(x, observer=Observer(NAMES, every=3, start=1))
    for name in NAMES:
        torch.testing.assert_close(rec[name], full[name], rtol=0, atol=1e-13)
    torch.testing.assert_close(rec.output, full.output, rtol=0, atol=1e-13)


def test_progress_bar_runs_same(x, capsys):
    net = _net(torch.float64)
    full = net.run(x.double())
    net.reset()
    rec = net.run(x.double(), verbose=True)
    torch.testing.assert_close(rec.output, full.output, rtol=0, atol=1e-13)
    assert "47/47" in capsys.readouterr().err


def test_layout_follows_input(x):
    net = _net()
    rec = net.run(x[0], observer=Observer(["res.v", "pre"], every=2))
    assert rec["res.v"].shape == (24, 6) and rec["pre"].shape == (24, 6)
    assert rec.output.shape == (T, 3)
    net.reset()
    recb = net.run(x[:1], observer=Observer(["res.v", "pre"], every=2))
    assert recb["res.v"].shape == (1, 24, 6) and recb.output.shape == (1, T, 3)
    torch.testing.assert_close(recb["res.v"][0], rec["res.v"], rtol=0, atol=0)


def test_numpy_and_mapping_interface(x):
    rec = _net().run(x, record=["res", "mf.v"])
    assert isinstance(rec, Recording)
    assert list(rec) == ["res", "mf.v"] and len(rec) == 2 and "res" in rec
    arrays = rec.numpy()
    assert set(arrays) == {"res", "mf.v"}
    assert isinstance(arrays["res"], np.ndarray) and arrays["res"].shape == (3, T, 6)
    np.testing.assert_array_equal(arrays["mf.v"], rec["mf.v"].numpy())
    assert rec.dt == 0.25 and rec.loss == []
    with pytest.raises(KeyError, match=r"Recording: 'out' was not recorded; recorded: \['res'"):
        rec["out"]
    assert "Recording({'res': (3, 47, 6)" in repr(rec)


def test_plot_returns_axes(x):
    rec = _net().run(x[0], record=["res", "mf.r"], sampling_steps=2)
    axes = rec.plot(max_units=3)
    assert len(axes) == 2
    lines = axes[0].get_lines()
    assert len(lines) == 3
    np.testing.assert_allclose(lines[0].get_xdata(), rec.times.numpy())
    np.testing.assert_allclose(lines[0].get_ydata(), rec["res"][:, 0].numpy())
    assert axes[1].get_ylabel() == "mf.r"
    _, ax = plt.subplots()
    assert rec.plot("res", ax=ax)[0] is ax
    plt.close("all")


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"record": ["res..v"]}, r"each recorded name must be 'node' or 'node.var', got 'res..v'"),
        ({"record": [""]}, r"each recorded name must be 'node' or 'node.var', got ''"),
        ({"record": [3]}, r"each recorded name must be 'node' or 'node.var', got 3"),
        ({"record": ["res", "res"]}, r"names recorded twice in \['res', 'res'\]"),
        ({"every": 0}, r"every must be an int >= 1, got 0"),
        ({"start": -1}, r"start must be an int >= 0, got -1"),
    ],
)
def test_observer_rejects_bad_arguments(kwargs, msg):
    with pytest.raises(ValueError, match=f"^Observer: {msg}$"):
        Observer(**kwargs)
