"""reservoirpy's side of the benchmark suite; runs inside ``.peers/reservoirpy``.

    .peers/reservoirpy/bin/python benchmarks/suite/peer_reservoirpy.py REQUEST.json RESULT.json

Tasks: ``esn`` (``Reservoir.run`` per step on given W, W_in and inputs), ``mg`` (the
Mackey-Glass ESN end to end: reservoir run + ridge fit, test run, RLS fit), ``generate``
(fit, warm-up and closed-loop generation with the ``esn.step`` loop of reservoirpy's
generative tutorial, one ESN per draw) and ``force`` (FORCE/RLS online training with output
feedback, ``(res >> RLS) & (res << RLS)`` and ``partial_fit``, then a test run, one ESN per
draw).
"""

from __future__ import annotations

from pathlib import Path

from _peer_io import import_failed, serve
from _timing import measure, per_step, time_calls

try:
    import numpy as np
    import reservoirpy
    import scipy.sparse as sp
    from reservoirpy.nodes import RLS, Reservoir, Ridge
except ImportError as err:  # a broken venv: the runner reports reservoirpy as missing
    import_failed(err)


def esn(req: dict, arrays: dict) -> dict:
    out = {}
    for c in req["configs"]:
        n, b = c["N"], c["B"]
        w = arrays[f"W{n}"]
        w = sp.csr_matrix(w) if c["layout"] == "sparse" else np.ascontiguousarray(w)
        u = arrays[f"u{b}"]  # (B, T, 1)
        series = u[0] if b == 1 else u

        def make(w=w, w_in=arrays[f"Win{n}"]) -> Reservoir:
            return Reservoir(W=w, Win=w_in, bias=0.0, lr=req["lr"])

        tc = min(req["check_steps"], u.shape[1])
        check = make().run(series[..., :tc, :])  # (tc, N) or (B, tc, N)
        check = check[-1][None] if b == 1 else check[:, -1]
        res = make()
        res.run(series[..., :2, :])

        def run(T: int, res: Reservoir = res, series: np.ndarray = series) -> None:
            res.run(series[..., :T, :])

        timing = measure(
            {"reservoirpy": (run, u.shape[1])}, req["repeats"], req["target_s"], req["min_steps"]
        )
        out[c["key"]] = {"timing": timing["reservoirpy"], "check": check.tolist()}
        print(c["key"], timing["reservoirpy"].get("us_median"), flush=True)
    return {"results": out}


def mg(req: dict, arrays: dict) -> dict:
    w = sp.csr_matrix(arrays["W"]) if req["sparse"] else arrays["W"]
    w_in = arrays["Win"]
    x_tr, y_tr, x_te = arrays["x_train"], arrays["y_train"], arrays["x_test"]
    wash, lr = req["washout"], req["lr"]

    def reservoir() -> Reservoir:
        return Reservoir(W=w, Win=w_in, bias=0.0, lr=lr)

    def fresh(readout):  # a model whose weights are given: initialize is cheap, not timed
        model = reservoir() >> readout
        model.initialize(x_tr, y_tr)
        return model

    models: dict[str, object] = {}

    def fit_ridge() -> None:
        models["ridge"] = model = fresh(Ridge(ridge=req["ridge"]))
        model.fit(x_tr, y_tr, warmup=wash)

    def run_test() -> None:
        models["pred_ridge"] = models["ridge"].run(x_te)

    def fit_rls() -> None:
        models["rls"] = model = fresh(RLS(alpha=req["rls_alpha"]))
        model.fit(x_tr, y_tr, warmup=wash)

    res = {
        "fit_ridge": time_calls(fit_ridge, req["repeats"]),
        "run_test": time_calls(run_test, req["repeats"]),
        "fit_rls": time_calls(fit_rls, req["repeats"]),
    }
    pred_rls = models["rls"].run(x_te)
    np.savez(Path(req["tmp"]) / "result.npz", pred_ridge=models["pred_ridge"], pred_rls=pred_rls)
    return {"results": res}


def generate(req: dict, arrays: dict) -> dict:
    x_tr, y_tr, warm, steps = arrays["x_train"], arrays["y_train"], arrays["warmup"], req["steps"]
    out, saved, preds = {}, {}, {}
    for seed in req["seeds"]:
        res = Reservoir(
            W=sp.csr_matrix(arrays[f"W{seed}"]), Win=arrays[f"Win{seed}"], bias=0.0, lr=req["lr"]
        )
        readout = Ridge(ridge=req["ridge"])
        esn = res >> readout
        esn.fit(x_tr, y_tr, warmup=req["washout"])
        res.reset()
        y0 = esn.run(warm)[-1]
        s0 = res.state["out"].copy()

        def loop(y0: np.ndarray = y0, s0: np.ndarray = s0, esn=esn, res=res) -> None:
            res.state = {"out": s0.copy()}
            y, pred = y0, np.empty((steps, y0.shape[-1]))
            for k in range(steps):
                y = esn.step(y)
                pred[k] = y
            preds["pred"] = pred

        out[str(seed)] = per_step(time_calls(loop, req["repeats"]), steps)
        saved[f"pred{seed}"] = preds["pred"]
        saved[f"Wout{seed}"], saved[f"bias{seed}"] = readout.Wout, readout.bias
        print(seed, out[str(seed)]["us_median"], flush=True)
    np.savez(Path(req["tmp"]) / "result.npz", **saved)
    return {"results": out}


def force(req: dict, arrays: dict) -> dict:
    x_tr, y_tr, x_te = arrays["x_train"], arrays["y_train"], arrays["x_test"]
    out, saved, models = {}, {}, {}
    for seed in req["seeds"]:
        w, w_in = sp.csr_matrix(arrays[f"W{seed}"]), arrays[f"Win{seed}"]
        w_in = np.hstack([w_in, arrays[f"Wfb{seed}"]])  # input, then fed-back output

        def fit(w=w, w_in=w_in) -> None:  # a fresh ESN from the zero state, trained online
            res = Reservoir(W=w, Win=w_in, bias=0.0, lr=req["lr"])
            readout = RLS(alpha=req["alpha"], forgetting=req["forgetting"], fit_bias=False)
            esn = (res >> readout) & (res << readout)
            models["train"] = esn.partial_fit(x_tr, y_tr)
            models["esn"], models["readout"] = esn, readout

        out[str(seed)] = time_calls(fit, req["repeats"])
        saved[f"train{seed}"] = models["train"]
        saved[f"pred{seed}"] = models["esn"].run(x_te)  # continues from the training state
        saved[f"Wout{seed}"] = np.asarray(models["readout"].Wout).T
        print(seed, out[str(seed)]["s_median"], flush=True)
    np.savez(Path(req["tmp"]) / "result.npz", **saved)
    return {"results": out}


if __name__ == "__main__":
    serve({"esn": esn, "mg": mg, "generate": generate, "force": force}, reservoirpy.__version__)
