"""Layer builders: inferno's Serial / Biclique / RecurrentSerial semantics with real LIF units."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rnngraph as rg
from rnngraph import layers

F64 = torch.float64
LIF = ("lif", {"tau_m": 20.0, "v_th": 1.0, "v_reset": 0.0, "refractory": 0.0})
ALPHA = math.exp(-1.0 / 20.0)  # one exact step of the leak at dt = 1


def _recurrent(capture=False, trainable_feedback=False):
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("in", 2)
    layer = layers.recurrent_serial(
        net,
        "l1",
        "in",
        LIF,
        LIF,
        n_feedfwd=3,
        n_feedback=2,
        feedfwd_weights=np.full((3, 2), 15.0),  # 30 per unit for input (1, 1)
        lateral_weights=np.full((2, 3), 20.0),  # 3 ff spikes -> 60 into each fb unit
        feedback_weights=np.full((3, 2), 40.0),
        transforms={"feedback": torch.neg},  # inhibitory feedback
        capture_intermediate=capture,
        trainable_feedback=trainable_feedback,
    )
    return net, layer


def test_recurrent_serial_timing_with_lif_units():
    net, layer = _recurrent(capture=True)
    x = np.ones((3, 2))
    rec = net.run(x, record=["l1_ff", "l1_fb", "l1_ff.v", *layer.record_names])
    z_ff, z_fb, v_ff = rec["l1_ff"].numpy(), rec["l1_fb"].numpy(), rec["l1_ff.v"].numpy()
    drive = (1 - ALPHA) * 30.0
    # step 0: feedforward units fire on input alone (the feedback reads zeros) ...
    assert drive > 1.0 and np.all(z_ff[0] == 1)
    # ... and the feedback units fire in the same step from the lateral connection
    assert np.all(z_fb[0] == 1)
    ff_out = rec[layer.intermediate["feedfwd"]].numpy()
    fb_out = rec[layer.intermediate["feedback"]].numpy()
    lat_out = rec[layer.intermediate["lateral"]].numpy()
    np.testing.assert_allclose(ff_out[0], 30.0)
    np.testing.assert_allclose(lat_out[0], 60.0)
    np.testing.assert_allclose(fb_out[0], 0.0)  # nothing fed back yet
    # step 1: the inhibition of step 0's feedback spikes lands
    np.testing.assert_allclose(fb_out[1], -80.0)
    expected_v1 = ALPHA * 0.0 + (1 - ALPHA) * (30.0 - 80.0)  # reset to 0 after the spike
    np.testing.assert_allclose(v_ff[1], expected_v1, rtol=1e-12)
    assert np.all(z_ff[1] == 0)


def test_recurrent_serial_without_capture_has_the_same_dynamics():
    x = np.ones((6, 2))
    a, _ = _recurrent(capture=True)
    b, layer = _recurrent(capture=False)
    assert layer.intermediate == {"feedback": "l1_feedback_out"}  # only the transform node
    ra, rb = a.run(x, record=["l1_ff.v"]), b.run(x, record=["l1_ff.v"])
    torch.testing.assert_close(ra["l1_ff.v"], rb["l1_ff.v"], rtol=0, atol=0)


def test_clear_restores_the_layer_state_and_the_feedback_reads_zeros_again():
    net, layer = _recurrent()
    x = np.ones((1, 2))  # one step: every unit spikes, the inhibition is in flight
    first = net.run(x, record=["l1_ff.v", "l1_ff"])
    layer.clear()
    again = net.run(x, record=["l1_ff.v", "l1_ff"])
    torch.testing.assert_close(first["l1_ff.v"], again["l1_ff.v"], rtol=0, atol=0)
    torch.testing.assert_close(first["l1_ff"], again["l1_ff"], rtol=0, atol=0)
    # without clear the layer continues: its first step receives the pending inhibition
    cont = net.run(x, record=["l1_ff.v", "l1_ff"])
    np.testing.assert_allclose(cont["l1_ff.v"].numpy(), (1 - ALPHA) * (30.0 - 80.0))
    assert torch.all(cont["l1_ff"] == 0)


def test_clear_leaves_other_nodes_alone():
    net, layer = _recurrent()
    net.add_diffeq_node("other", "leaky_integrator", n=1, tau=5.0)
    net.add_edge("in", "other", weights=np.ones((1, 2)))
    net.compile(output_node="l1_ff")
    net.run(np.ones((5, 2)))
    other_v = net.state["other.v"].clone()
    layer.clear()
    assert torch.equal(net.state["other.v"], other_v)
    assert torch.all(net.state["l1_ff.v"] == 0) and torch.all(
        net.state["l1_fb->l1_feedback_out@1"] == 0
    )


def test_accessors_and_trainable_feedback():
    net, layer = _recurrent(trainable_feedback=True)
    assert isinstance(layer.feedfwd_neuron, rg.nodes.LIF)
    assert isinstance(layer.feedback_neuron, rg.nodes.LIF)
    assert layer.feedback_connection.weight.requires_grad
    assert not layer.feedfwd_connection.weight.requires_grad
    assert layer.lateral_connection.weight.shape == (2, 3)
    with pytest.raises(KeyError, match="no connection 'recurrent'; connections are"):
        layer.connection("recurrent")
    with pytest.raises(ValueError, match=r"unknown transform roles \['inhibit'\]"):
        layers.recurrent_serial(net, "l2", "in", LIF, LIF, 3, 2, transforms={"inhibit": abs})


def test_serial_and_biclique_sum_their_connections():
    net = rg.Network(dt=1.0, dtype=F64)
    net.add_func_node("a", 2)
    net.add_func_node("b", 1)
    net.add_edge("a", "b", weights=np.ones((1, 2)))
    lay = layers.biclique(
        net,
        "bc",
        ["a", "b"],
        {"p": (("leaky_integrator", {"tau": 1.0, "activation": "identity"}), 2)},
        weights={("a", "p"): np.eye(2), ("b", "p"): np.full((2, 1), 10.0)},
        capture_intermediate=True,
    )
    net.compile(input_node="a")
    rec = net.run(np.array([[1.0, 2.0]]), record=["bc_p", *lay.record_names])
    # tau = dt with Euler: v(1) = I = W_a a + W_b (a_1 + a_2)
    np.testing.assert_allclose(rec["bc_p"].numpy()[0], [1.0 + 30.0, 2.0 + 30.0])
    ser = rg.Network(dt=1.0)
    ser.add_func_node("in", 2)
    s = layers.serial(ser, "pop", "in", LIF, n=4, seed=0)
    assert s.neuron("neuron").n == 4 and s.connection("connection").weight.shape == (4, 2)
    ser.run(np.ones((3, 2)) * 50)
    s.clear()
    assert torch.all(ser.state["pop.v"] == 0)


# ---------------------------------------------------------------------------------------
# bad arguments are refused, naming the builder
# ---------------------------------------------------------------------------------------


def _fresh() -> rg.Network:
    net = rg.Network(1.0)
    net.add_func_node("in", 3)
    return net


@pytest.mark.parametrize("what", ["weights", "transforms"])
def test_biclique_refuses_settings_for_a_pair_it_does_not_build(what: str) -> None:
    net = _fresh()
    value = np.ones((3, 3)) if what == "weights" else torch.neg
    with pytest.raises(
        KeyError,
        match=rf"biclique: {what} for \[\('in', 'x'\)\], which this layer does not connect; it "
        r"builds the \(source, role\) pairs \[\('in', 'e'\), \('in', 'i'\)\]",
    ):
        layers.biclique(
            net, "bc", ["in"], {"e": ("lif", 3), "i": ("lif", 2)}, **{what: {("in", "x"): value}}
        )
    assert list(net.graph.nodes) == ["in"]


def test_biclique_checks_the_types_of_its_arguments() -> None:
    net = _fresh()
    with pytest.raises(TypeError, match=r"^rnngraph\.layers\.biclique: sources must be a list"):
        layers.biclique(net, "bc", "in", {"e": ("lif", 3)})
    with pytest.raises(TypeError, match=r"^rnngraph\.layers\.biclique: weights must be a dict"):
        layers.biclique(net, "bc", ["in"], {"e": ("lif", 3)}, weights=[np.ones((3, 3))])
    with pytest.raises(TypeError, match=r"^rnngraph\.layers\.biclique: neurons must be a dict"):
        layers.biclique(net, "bc", ["in"], [("lif", 3)])
    with pytest.raises(
        TypeError, match=r"^rnngraph\.layers\.serial: unknown keyword argument\(s\) \['bias'\]"
    ):
        layers.serial(net, "pop", "in", "lif", n=3, bias=True)
    with pytest.raises(TypeError, match=r"^rnngraph\.layers\.recurrent_serial: transforms must"):
        layers.recurrent_serial(net, "rs", "in", "lif", "lif", 3, 2, transforms=[torch.neg])
    assert list(net.graph.nodes) == ["in"]
    w = np.arange(9.0).reshape(3, 3)
    layer = layers.biclique(net, "bc", ("in",), {"e": ("lif", 3)}, weights={("in", "e"): w})
    torch.testing.assert_close(
        layer.connection("in>e").weight, torch.as_tensor(w, dtype=torch.float32)
    )


def test_clear_leaves_delayed_edges_from_the_layer_to_other_nodes_alone():
    """``Layer.clear`` restores the layer's own state only: a delayed edge the user added
    from the layer to a node outside it keeps its held value."""
    import numpy as np

    from rnngraph import Network, layers

    net = Network(1.0)
    net.add_func_node("in", 2)
    layer = layers.serial(net, "S", "in", "leaky_tanh", n=3, weights=np.ones((3, 2)))
    net.add_diffeq_node("other", "leaky_tanh", n=2)
    net.add_edge("S", "other", weights=np.ones((2, 3)), delay=1)
    net.run(np.ones((4, 2)))
    held = {k: v.clone() for k, v in net.state.items()}
    layer.clear()
    assert float(net.state["S.x"].abs().max()) == 0.0
    for key in ("S->other@1", "other.x"):
        assert held[key].abs().max() > 0
        assert net.state[key].equal(held[key]), key
