"""reservoirpy's side of ``test_peer_reservoirpy.py``; runs inside ``.peers/reservoirpy``.

    .peers/reservoirpy/bin/python tests/_reservoirpy_side.py TASK IN.npz OUT.npz

Tasks (all on the given ``W`` (CSR), ``Win``, ``lr`` and zero bias):

* ``mackey_glass``: ``reservoirpy.datasets.mackey_glass(n)`` (its default seed);
* ``states``: the reservoir's states on the inputs ``u`` from the zero state;
* ``ridge``: ``reservoir >> Ridge(ridge=alpha)`` fitted on ``x``, ``y`` with ``warmup``, then
  its predictions on ``x_test`` (after the training run, as reservoirpy continues);
* ``generate``: the same fit, the reservoir reset, ``esn.run(warm)`` and then ``steps``
  steps of ``y = esn.step(y)`` from the warm-up's last output (reservoirpy's generative
  tutorial);
* ``feedback_ridge``: ``ESN(feedback=True)`` as reservoirpy 0.4 builds it,
  ``(res >> Ridge) & (res << Ridge)`` with ``Win = [Win, Wfb]``, fitted on ``x``, ``y``
  (teacher-forced) with ``warmup``, then its predictions on ``x_test``;
* ``force``: the same graph with ``RLS(alpha, fit_bias=False)``: ``partial_fit(x, y)`` (its
  outputs during training) and then the predictions on ``x_test``;
* ``lms``: ``reservoir >> LMS(learning_rate, fit_bias)``, with ``res << LMS`` when ``Wfb``
  is given: ``partial_fit(x, y)`` (its outputs during training), the weights, the bias and
  the predictions on ``x_test``;
* ``nvar``: reservoirpy's NG-RC tutorial: ``lorenz(n, x0, h=0.025, method="RK23")``, the
  features of ``NVAR(delay, order, strides)`` on it, ``NVAR >> Ridge(ridge)`` fitted on the
  differences of its first ``n_train + 1`` steps with ``warmup``, then the closed loop
  ``u = u + model(u)`` for ``steps`` steps from the next point;
* ``es2n``: ``ES2N(W, Win, O, proximity, bias=0)``: its states on ``u`` from the zero state;
* ``classify``: reservoirpy's classification tutorial on lists of sequences (given as
  ``x`` concatenated with their ``lengths``): transduction, ``[source >> reservoir,
  source] >> Ridge(ridge=alpha)`` fitted with ``warmup`` on per-step targets ``y``, the
  reservoir reset, then its predictions on the test list; and last-state classification,
  each sequence run from the zero state, ``Ridge(ridge=alpha_last)`` fitted on the last
  states against ``labels``, then its scores on the test list's last states;
* ``ip``: ``IPReservoir(W, Win, bias, lr, mu, sigma, learning_rate, epochs, activation)``
  fitted on ``u`` with ``warmup``: its gains ``a`` and shifts ``b``, then its states on
  ``u_test`` (continuing the fit's state);
* ``memory``: ``observables.memory_capacity(reservoir >> Ridge(ridge=alpha), k_max,
  series=u, test_size, as_list=True)``;
* ``two_inputs``: two input nodes ``Input(name="u")`` and ``Input(name="v")``, ``[u, v] >>
  reservoir >> Ridge(ridge=alpha)`` (the reservoir's ``Win`` the two input matrices side by
  side), fitted on the dict ``{"u": xu, "v": xv}`` against ``y`` with ``warmup``, then its
  predictions on the dict of test inputs.
"""

import sys

import numpy as np
import scipy.sparse as sp
from reservoirpy.datasets import lorenz, mackey_glass
from reservoirpy.nodes import ES2N, LMS, NVAR, RLS, Input, IPReservoir, Reservoir, Ridge
from reservoirpy.observables import (
    effective_spectral_radius,
    memory_capacity,
    mse,
    nrmse,
    rmse,
    rsquare,
    spectral_radius,
)


def main(task: str, src: str, dst: str) -> None:
    d = np.load(src)
    if task == "mackey_glass":
        np.savez(dst, series=mackey_glass(int(d["n"])))
        return
    if task == "es2n":
        node = ES2N(W=d["W"], Win=d["Win"], O=d["O"], proximity=float(d["beta"]), bias=0.0)
        np.savez(dst, states=node.run(d["u"]))
        return
    if task == "nvar":
        nvar_task(d, dst)
        return
    if task == "observables":
        y, p = d["y"], d["p"]
        np.savez(
            dst, sr=spectral_radius(d["W"]), esr=effective_spectral_radius(d["W"], float(d["lr"])),
            mse=mse(y, p), rmse=rmse(y, p), rsquare=rsquare(y, p),
            **{f"nrmse_{n}": nrmse(y, p, norm=n) for n in ("minmax", "var", "mean", "q1q3")},
        )  # fmt: skip
        return
    if task == "classify":
        classify_task(d, dst)
        return
    if task == "ip":
        names = ("lr", "mu", "sigma", "learning_rate")
        node = IPReservoir(
            W=d["W"], Win=d["Win"], bias=d["bias"], epochs=int(d["epochs"]),
            activation=str(d["activation"]), **{k: float(d[k]) for k in names},
        )  # fmt: skip
        node.fit(d["u"], warmup=int(d["warmup"]))
        np.savez(dst, a=node.a, b=node.b, states=node.run(d["u_test"]))
        return
    w_in = np.hstack([d["Win"], d["Wfb"]]) if "Wfb" in d else d["Win"]
    res = Reservoir(W=sp.csr_matrix(d["W"]), Win=w_in, bias=0.0, lr=float(d["lr"]))
    if task == "force":
        readout = RLS(alpha=float(d["alpha"]), fit_bias=False)
        esn = (res >> readout) & (res << readout)
        train = esn.partial_fit(d["x"], d["y"])
        np.savez(dst, train=train, pred=esn.run(d["x_test"]), Wout=np.asarray(readout.Wout).T)
        return
    if task == "lms":
        readout = LMS(learning_rate=float(d["rate"]), fit_bias=bool(d["fit_bias"]))
        esn = res >> readout
        esn = esn & (res << readout) if "Wfb" in d else esn
        train = esn.partial_fit(d["x"], d["y"])
        weights = {"Wout": np.asarray(readout.Wout).T, "bias": np.asarray(readout.bias).ravel()}
        np.savez(dst, train=train, pred=esn.run(d["x_test"]), **weights)
        return
    if task == "memory":
        model = res >> Ridge(ridge=float(d["alpha"]))
        mc = memory_capacity(
            model, int(d["k_max"]), series=d["u"], test_size=float(d["test_size"]), as_list=True
        )
        np.savez(dst, mc=mc)
        return
    if task == "states":
        np.savez(dst, states=res.run(d["u"]))
        return
    if task == "two_readouts":
        res_ = Reservoir(W=sp.csr_matrix(d["W"]), Win=d["Win"], bias=0.0, lr=float(d["lr"]))
        r1, r2 = (
            Ridge(ridge=float(d["alpha"]), name="r1"),
            Ridge(ridge=float(d["alpha"]), name="r2"),
        )
        model = res_ >> [r1, r2]
        model.fit(d["x"], {"r1": d["y1"], "r2": d["y2"]}, warmup=int(d["warmup"]))
        pred = model.run(d["x_test"])
        np.savez(
            dst, p1=pred["r1"], p2=pred["r2"], W1=np.asarray(r1.Wout).T, W2=np.asarray(r2.Wout).T
        )
        return
    if task == "skip_lists":
        res_ = Reservoir(W=sp.csr_matrix(d["W"]), Win=d["Win"], bias=0.0, lr=float(d["lr"]))
        data, readout = Input(), Ridge(ridge=float(d["alpha"]))
        model = [data >> res_, data] >> readout
        lengths, test_lengths = d["lengths"], d["test_lengths"]
        xs, ys = _split(d["x"], lengths), _split(d["y"], lengths)
        model.fit(xs, ys, warmup=int(d["warmup"]))
        res_.reset()  # each test sequence from the state held at the call: zeros
        pred = model.run(_split(d["x_test"], test_lengths))
        np.savez(dst, pred=np.concatenate(pred), Wout=np.asarray(readout.Wout).T)
        return
    if task == "two_inputs":
        readout = Ridge(ridge=float(d["alpha"]))
        model = [Input(name="u"), Input(name="v")] >> res >> readout
        model.fit({"u": d["xu"], "v": d["xv"]}, d["y"], warmup=int(d["warmup"]))
        np.savez(dst, pred=model.run({"u": d["xu_test"], "v": d["xv_test"]}))
        return
    readout = Ridge(ridge=float(d["alpha"]))
    esn = res >> readout
    if task == "feedback_ridge":
        esn = esn & (res << readout)
    esn.fit(d["x"], d["y"], warmup=int(d["warmup"]))
    out = {"Wout": np.asarray(readout.Wout).T, "bias": np.asarray(readout.bias).reshape(-1)}
    if task in ("ridge", "feedback_ridge"):
        out["pred"] = esn.run(d["x_test"])
    else:
        res.reset()
        y = esn.run(d["warm"])[-1]
        pred = np.empty((int(d["steps"]), y.shape[-1]))
        for k in range(len(pred)):
            y = pred[k] = esn.step(y)
        out["pred"] = pred
    np.savez(dst, **out)


def nvar_task(d, dst: str) -> None:
    series = lorenz(int(d["n"]), x0=[17.677, 12.931, 43.914], h=0.025, method="RK23")
    shape = {k: int(d[k]) for k in ("delay", "order", "strides")}
    features = NVAR(**shape).run(series)
    readout = Ridge(ridge=float(d["alpha"]), output_dim=3)
    model = NVAR(**shape) >> readout
    n_train = int(d["n_train"])
    x, dx = series[:n_train], series[1 : n_train + 1] - series[:n_train]
    model.fit(x, dx, warmup=int(d["warmup"]))
    u, pred = series[n_train], np.empty((int(d["steps"]), 3))
    for k in range(len(pred)):
        u = pred[k] = u + model(u)
    weights = {"Wout": np.asarray(readout.Wout).T, "bias": np.asarray(readout.bias).ravel()}
    np.savez(dst, series=series, features=features, pred=pred, **weights)


def _split(a: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    return np.split(a, np.cumsum(lengths)[:-1])


def classify_task(d, dst: str) -> None:
    xs, xt = _split(d["x"], d["lengths"]), _split(d["x_test"], d["lengths_test"])

    def reservoir() -> Reservoir:
        return Reservoir(W=sp.csr_matrix(d["W"]), Win=d["Win"], bias=0.0, lr=float(d["lr"]))

    res, source = reservoir(), Input()
    model = [source >> res, source] >> Ridge(ridge=float(d["alpha"]))
    model.fit(xs, _split(d["y"], d["lengths"]), warmup=int(d["warmup"]))
    res.reset()
    transduction = np.concatenate(model.run(xt))
    res, readout = reservoir(), Ridge(ridge=float(d["alpha_last"]))

    def last_states(seqs: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for x in seqs:
            out.append(res.run(x)[-1, np.newaxis])
            res.reset()
        return out

    readout.fit(last_states(xs), [row[np.newaxis] for row in d["labels"]])
    last = np.concatenate([readout.run(s) for s in last_states(xt)])
    np.savez(dst, transduction=transduction, last=last)


if __name__ == "__main__":
    main(*sys.argv[1:4])
