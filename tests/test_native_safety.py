"""The native layer never gives silently wrong numbers and never crashes the process.

* weights changed in place (``.data``, ``mul_``, numpy views, ``copy_``) reach every native
  path at the next run;
* weights or parameters replaced by a tensor of another shape or dtype raise an error that
  names the call and the edge or node (checked in a subprocess where the old code crashed);
* NaN and infinities come out of every kernel as out of the torch path;
* a strided Observer keeps memory bounded;
* the build cache survives concurrent builders, read-only, truncated, empty and foreign
  files, a missing compiler and ``CC`` with flags, and never loads a library from a
  directory another user can write (subprocesses with their own ``RNNGRAPH_CACHE_DIR``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rnngraph as rg
from rnngraph import _native

pytestmark = pytest.mark.skipif(
    not (shutil.which("cc") or shutil.which("gcc")), reason="no C compiler"
)

ROOT = Path(rg.__file__).resolve().parent.parent
NAN, INF = float("nan"), float("inf")


# ------------------------------------------------------------------------------------
# networks for every native path
# ------------------------------------------------------------------------------------


def esn(n=60, density=0.1, sparse=False, seed=0, dtype=torch.float64, lr=0.3):
    """``in`` (2) -> ``res`` (leaky_tanh, ``n``) with a feedback self-edge of ``density``."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, n, generator=g, dtype=dtype) * (torch.rand(n, n, generator=g) < density)
    w = w * (0.9 / torch.linalg.eigvals(w).abs().max()).to(dtype)
    net = rg.Network(dt=1.0, dtype=dtype)
    net.add_func_node("in", 2)
    net.add_diffeq_node("res", "leaky_tanh", n=n, lr=lr, bias=0.1 * torch.ones(n, dtype=dtype))
    net.add_edge("in", "res", weights=torch.randn(n, 2, generator=g, dtype=dtype))
    net.add_edge("res", "res", weights=w, feedback=True, sparse=sparse)
    return net


def leaky_integrator(n=50, seed=1):
    g = torch.Generator().manual_seed(seed)
    w = 0.3 * torch.randn(n, n, generator=g, dtype=torch.float64)
    w = w * (torch.rand(n, n, generator=g) < 0.1)
    net = rg.Network(dt=0.1, dtype=torch.float64)
    net.add_func_node("in", 2)
    net.add_diffeq_node("rnn", "li", n=n, tau=1.0, k=1.3, eta=0.2, integrator="euler")
    net.add_edge("in", "rnn", weights=torch.randn(n, 2, generator=g, dtype=torch.float64))
    net.add_edge("rnn", "rnn", weights=w, feedback=True, target_var="r_in")
    return net


def lif(n=40, seed=2):
    g = torch.Generator().manual_seed(seed)
    net = rg.Network(dt=1.0, dtype=torch.float64)
    net.add_func_node("in", 2)
    net.add_diffeq_node(
        "lif", "lif", n=n, tau_m=20.0, v_th=1.0, refractory=2.0, integrator="exp_euler"
    )
    net.add_edge("in", "lif", weights=torch.rand(n, 2, generator=g, dtype=torch.float64) * 2)
    w = torch.randn(n, n, generator=g, dtype=torch.float64) * 0.3
    net.add_edge("lif", "lif", weights=w, feedback=True)
    return net


def drive(steps=150, batch=None, seed=3):
    g = torch.Generator().manual_seed(seed)
    shape = (steps, 2) if batch is None else (batch, steps, 2)
    return torch.rand(*shape, generator=g, dtype=torch.float64)


#: (builder, recurrent edge, batch): the ESN at batch 1 with a sparse-enough dense W (the CSR
#: copy), dense W, CSR edge, the batched gemm loop, RectiPy's leaky integrator, and the LIF
#: node step with event-driven input
PATHS = {
    "esn-dense-as-csr": (lambda: esn(), ("res", "res"), None),
    "esn-dense": (lambda: esn(density=0.6), ("res", "res"), None),
    "esn-csr-edge": (lambda: esn(sparse=True), ("res", "res"), None),
    "esn-batch-3": (lambda: esn(), ("res", "res"), 3),
    "li": (lambda: leaky_integrator(), ("rnn", "rnn"), None),
    "lif-events": (lambda: lif(), ("lif", "lif"), 3),
}


def native_and_generic(net, x, generic, state=None):
    """Outputs of one run from ``state`` (default: the initial state) with the native
    paths on, then off."""
    c = net.compile()
    start = c.init_state(1 if x.dim() == 2 else x.shape[0]) if state is None else state
    native = c.run(x, state=start).output
    with generic:
        reference = c.run(x, state=start).output
    return native, reference


def assert_same(native, reference, atol=1e-12):
    torch.testing.assert_close(native, reference, rtol=0, atol=atol, equal_nan=True)


# ------------------------------------------------------------------------------------
# 15: in-place weight changes reach every native path
# ------------------------------------------------------------------------------------


def _data_assign(w):
    w.data = w.data * 0.5


def _data_mul(w):
    w.data.mul_(0.5)


def _numpy_view(w):
    view = w.detach().numpy()
    view[:] *= 0.5


def _data_copy(w):
    w.data.copy_(torch.flip(w.detach(), dims=(0,)) * 0.7)


def _values_mul(w):  # the stored values of a CSR weight, in place
    w.detach().values().mul_(0.5)


ROUTES = {"data": _data_assign, "data.mul_": _data_mul, "numpy": _numpy_view, "copy_": _data_copy}


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("path", list(PATHS))
def test_in_place_weight_changes_reach_the_native_loop(path, route, generic):
    build, (source, target), batch = PATHS[path]
    net = build()
    edge = net.get_edge(source, target)
    change = ROUTES[route]
    if edge.sparse:
        if route != "data.mul_":  # torch: `.data =` on a CSR tensor changes nothing
            pytest.skip("a CSR weight changes in place through its values only")
        change = _values_mul
    x = drive(batch=batch)
    before, _ = native_and_generic(net, x, generic)  # caches whatever the native loop caches
    change(edge.weight)
    native, reference = native_and_generic(net, x, generic)
    assert_same(native, reference)
    assert (native - before).abs().max() > 1e-3  # the change mattered


def test_in_place_spectral_radius_sweep_gives_one_result_per_point(generic):
    """reservoirpy-style sweep: scale W in place to each radius, run, score."""
    net = esn(n=100)
    edge = net.get_edge("res", "res")
    w0 = edge.weight.detach().clone()
    x = drive(300)
    finals = []
    for radius in (0.3, 0.9, 1.5):
        edge.weight.data.copy_(w0 * (radius / 0.9))
        native, reference = native_and_generic(net, x, generic)
        assert_same(native, reference)
        finals.append(native[-50:])
    assert (finals[0] - finals[1]).abs().max() > 1e-2
    assert (finals[1] - finals[2]).abs().max() > 1e-2


# ------------------------------------------------------------------------------------
# 16: shapes and dtypes are checked at the boundary of every native call
# ------------------------------------------------------------------------------------


# These cases read past the end of an array without the checks, so they run in a
# subprocess (``test_replaced_arrays_raise_instead_of_crashing``): a crash fails that test
# instead of ending pytest.
REPLACED = [
    (path, bad)
    for path in ("esn-dense-as-csr", "esn-dense", "esn-csr-edge", "li")
    for bad in ("small", "dtype", "rows")
]


def replaced_weight_case(path, bad):
    """Weights replaced through ``.data`` by another shape or dtype: a ValueError naming
    the call, the edge and what was expected; the held state is left as it was."""
    build, (source, target), batch = PATHS[path]
    net = build()
    edge = net.get_edge(source, target)
    c = net.compile()
    x = drive(20, batch=batch)
    c.run(x)  # continues from the held state next time
    kept = {k: v.clone() for k, v in c.state.items()}
    n = edge.weight.shape[0]
    replacement = {
        "small": torch.zeros(2, 2, dtype=torch.float64),
        "dtype": edge.weight.detach().float(),
        "rows": torch.zeros(n // 2, n, dtype=torch.float64),
    }[bad]
    if edge.sparse:
        replacement = replacement.to_sparse_csr()
        edge.weight = replacement  # a CSR buffer: `.data =` changes nothing
    else:
        edge.weight.data = replacement
    where = rf"CompiledNetwork\.run \(native loop of node '{source}'\)"
    shape = rf"\({', '.join(map(str, replacement.shape))}\) {replacement.dtype}"
    what = f"the weight of edge '{source}->{target}'"
    what += r" \(CSR (row pointers|values)\)" if edge.sparse else ""
    expected = rf"\({n}, {n}\) torch\.float64" if not edge.sparse else r"\(\d+,\) torch\.\w+"
    got = shape + " tensor on cpu" if not edge.sparse else r"\(\d+,\) torch\.\w+ tensor on cpu"
    with pytest.raises(
        ValueError,
        match=rf"{where}: {what} is a {got}, "
        rf"expected a {expected} tensor",
    ):
        c.run(x)
    assert c.state.keys() == kept.keys()
    assert all(torch.equal(c.state[k], v) for k, v in kept.items())  # held state untouched


def test_replaced_node_parameter_of_another_shape_raises():
    net = esn()
    c = net.compile()
    c.run(drive(10))
    net.get_node("res").lr.data = torch.full((7,), 0.3, dtype=torch.float64)
    with pytest.raises(
        ValueError,
        match=r"lr (of node 'res' )?is a \(7,\) torch.float64 tensor on cpu, expected a "
        r"scalar or 60 values",
    ):
        c.run(drive(10))


def kernel_arrays_case():
    """Each C entry point called with arrays of the wrong shape or dtype raises a
    ValueError naming the call instead of reading out of bounds."""
    d = torch.float64
    with torch.no_grad():
        step = _native.leaky_tanh_step(torch.tensor(0.3, dtype=d), torch.zeros(5, dtype=d), 5)
        with pytest.raises(ValueError, match=r"LeakyTanh step: expected rows of 5 units"):
            step(torch.zeros(2, 4, dtype=d), torch.zeros(2, 4, dtype=d))
        with pytest.raises(ValueError, match=r"LeakyTanh step: input is a \(2, 5\) torch.float32"):
            step(torch.zeros(2, 5, dtype=d), torch.zeros(2, 5))
        with pytest.raises(ValueError, match=r"LeakyTanh step: bias is a \(3,\)"):
            _native.leaky_tanh_step(torch.tensor(0.3, dtype=d), torch.zeros(3, dtype=d), 5)
        params = dict(u0=0.0, r_m=1.0, g=0.9, th=1.0, v_reset=0.0, drop=1.0, hold=0.0)
        lif_step = _native.lif_step(4, d, torch.device("cpu"), False, **params)
        with pytest.raises(ValueError, match=r"LIF step: expected rows of 4 units"):
            lif_step(*(torch.zeros(1, 3, dtype=d) for _ in range(4)))
        with pytest.raises(ValueError, match=r"LIF step: hold is a \(2,\)"):
            _native.lif_step(4, d, torch.device("cpu"), False, **(params | {"hold": [1.0, 2.0]}))
        z = torch.zeros(5, 40, dtype=d)
        with pytest.raises(ValueError, match=r"event-driven input .*\(2, 2\) torch.float64"):
            _native.event_addmm(None, z, torch.zeros(2, 2, dtype=d))
        with pytest.raises(ValueError, match=r"event-driven input .*torch.float32"):
            _native.event_addmm(None, z, torch.zeros(40, 3))
        with pytest.raises(ValueError, match=r"broadcasts to \(5, 3\)"):
            _native.event_addmm(torch.zeros(4, dtype=d), z, torch.zeros(40, 3, dtype=d))
        P, w, r, f = (
            torch.eye(3, dtype=d),
            torch.zeros(2, 4, dtype=d),
            torch.ones(1, 4, dtype=d),
            torch.ones(1, 2, dtype=d),
        )
        with pytest.raises(ValueError, match=r"RLS.update \(native\): the inverse correlation "):
            _native.rls_update(P, w, None, r, f, 1.0)
        with pytest.raises(ValueError, match=r"RLS.update \(native\): the target is a \(1, 3\)"):
            _native.rls_update(torch.eye(4, dtype=d), w, None, r, torch.ones(1, 3, dtype=d), 1.0)


CASES = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import test_native_safety as t
for path, bad in t.REPLACED:
    t.replaced_weight_case(path, bad)
    print("ok", path, bad, flush=True)
t.kernel_arrays_case()
print("ok kernels", flush=True)
"""


def test_replaced_arrays_raise_instead_of_crashing(tmp_path):
    """Every native entry point: arrays of another shape or dtype (weights replaced through
    ``.data``, or passed to a kernel) raise the pinned errors, in a subprocess."""
    done = subprocess.run(
        [sys.executable, "-c", CASES],
        env=_environment(tmp_path / "cache", {}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert done.stdout.count("ok ") == len(REPLACED) + 1


SEGFAULT = """
import torch, rnngraph as rg
n = 3000
g = torch.Generator().manual_seed(0)
net = rg.Network(dt=1.0, dtype=torch.float64)
net.add_func_node("in", 1)
net.add_diffeq_node("res", "leaky_tanh", n=n, lr=0.3)
net.add_edge("in", "res", weights=torch.ones(n, 1, dtype=torch.float64))
net.add_edge("res", "res", weights=torch.randn(n, n, generator=g, dtype=torch.float64) * 0.01,
             feedback=True)
c = net.compile()
c.run(torch.ones(5, 1, dtype=torch.float64))
net.get_edge("res", "res").weight.data = torch.zeros(2, 2, dtype=torch.float64)
try:
    y = c.run(torch.ones(200, 1, dtype=torch.float64)).output
    print("NO ERROR", float(y.abs().max()))
except ValueError as err:
    print("ERROR", err)
"""


def test_too_small_weight_matrix_raises_instead_of_crashing(tmp_path):
    """n = 3000 with ``weight.data = torch.zeros(2, 2)``: the C loop read past the matrix."""
    done = subprocess.run(
        [sys.executable, "-c", SEGFAULT],
        env=_environment(tmp_path / "cache", {}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ERROR CompiledNetwork.run (native loop of node 'res'): the weight of edge " in (
        done.stdout
    ), done.stdout
    assert "(2, 2) torch.float64 tensor on cpu, expected a (3000, 3000)" in done.stdout


# ------------------------------------------------------------------------------------
# 22: NaN and infinities as in the torch path
# ------------------------------------------------------------------------------------


def test_event_addmm_propagates_nan_and_inf_like_the_product():
    g = torch.Generator().manual_seed(4)
    wt = torch.randn(3, 4, generator=g, dtype=torch.float64)
    for spikes in ([0.0, NAN, 1.0], [INF, 0.0, 1.0], [0.0, -INF, 0.0], [1.0, 0.0, 1.0]):
        z = torch.tensor([spikes, [0.0, 1.0, 0.0]], dtype=torch.float64)
        for acc in (None, torch.tensor([0.0, NAN, INF, -INF], dtype=torch.float64)):
            expected = z @ wt if acc is None else acc + z @ wt
            assert_same(_native.event_addmm(acc, z, wt), expected)
    z = torch.tensor([[0.0, NAN, 1.0]], dtype=torch.float64)
    assert torch.isnan(_native.event_addmm(None, z, wt)).all()  # the case


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("lr", [0.3, 0.7])
def test_leaky_tanh_step_propagates_nan_and_inf_like_lerp(dtype, lr):
    values = torch.tensor([0.0, 0.5, -2.0, NAN, INF, -INF], dtype=dtype)
    x, inp = torch.cartesian_prod(values, values).unbind(1)
    x, inp = x.reshape(1, -1), inp.reshape(1, -1)
    bias = torch.linspace(-1, 1, x.shape[1], dtype=dtype)
    with torch.no_grad():
        step = _native.leaky_tanh_step(torch.tensor(lr, dtype=dtype), bias, x.shape[1])
        out = step(x, inp)
    expected = torch.lerp(x, torch.tanh(inp + bias), lr)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert torch.equal(torch.isnan(out), torch.isnan(expected))
    assert torch.equal(torch.isinf(out), torch.isinf(expected))
    assert torch.isinf(out).any() == (lr >= 0.5)  # inf - inf is NaN below 0.5


@pytest.mark.parametrize("path", list(PATHS))
def test_native_paths_propagate_nan_and_inf_like_torch(path, generic):
    """Values that overflow inside a run (runs refuse non-finite inputs and states): input
    weights of +-1e308 and one step of input 1e10 make the drive of unit 0 inf - inf = NaN,
    of unit 1 +inf and of unit 2 -inf. Every native path gives the torch path's NaN and inf
    pattern, step for step (NaN spreads through W's zeros in the dense product: the native
    CSR product of a dense W takes the dense one at such steps)."""
    build, (source, _), batch = PATHS[path]
    net = build()
    w_in = next(e for e in net.graph.edges if e == ("in", source))
    w_in = net.get_edge(*w_in).weight
    w_in.data[:3] = torch.tensor([[1e308, -1e308], [1e308, 0.0], [-1e308, 0.0]])
    c = net.compile()
    var = f"{source}.{c.nodes[source].state_vars[0]}"
    x = drive(40, batch=batch)
    x[..., 10, :] = 1e10
    obs = rg.Observer([source, var])
    start = c.init_state(1 if batch is None else batch)
    native = c.run(x, state=start, observer=obs)
    with generic:
        reference = c.run(x, state=start, observer=obs)
    for name in (source, var):
        assert_same(native[name], reference[name], atol=1e-10)
        assert torch.equal(torch.isnan(native[name]), torch.isnan(reference[name]))
    assert torch.isnan(reference[var]).any()
    w_in.data[:3] = 0.5
    # finite again from a finite state and input: no stale NaN left in the loop
    native, reference = native_and_generic(net, drive(40, batch=batch), generic)
    assert_same(native, reference, atol=1e-10)
    assert torch.isfinite(native).all()


def test_rls_propagates_nan_and_inf_like_torch(generic):
    g = torch.Generator().manual_seed(6)
    X = torch.randn(40, 9, generator=g, dtype=torch.float64)
    X[3, 2], X[7, 5], X[11, 8] = NAN, INF, -INF
    r = torch.randn(1, 6, generator=g, dtype=torch.float64)
    results = []
    for native in (True, False):
        rls = rg.training.RLS(alpha=1.0)
        w = torch.zeros(2, 6, dtype=torch.float64)
        errs = []
        for value in (0.5, NAN):
            rr = r.clone()
            rr[0, 1] = value
            if native:
                errs.append(rls.update(w, None, rr, torch.ones(1, 2, dtype=torch.float64)))
            else:
                with generic:
                    errs.append(rls.update(w, None, rr, torch.ones(1, 2, dtype=torch.float64)))
        results.append((w, rls.P, torch.cat(errs)))
    for a, b in zip(*results, strict=True):
        assert_same(a, b, atol=1e-10)
        assert torch.equal(torch.isnan(a), torch.isnan(b))


# ------------------------------------------------------------------------------------
# 19: a strided Observer keeps memory bounded
# ------------------------------------------------------------------------------------


MEMORY = """
import torch, rnngraph as rg
torch.manual_seed(0)
n, steps = 200, 600_000
def rss(field):
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith(field)) / 1024
net = rg.Network(dt=1.0, dtype=torch.float64)
net.add_func_node("in", 1)
net.add_diffeq_node("res", "leaky_tanh", n=n, lr=0.3)
net.add_func_node("out", 1)
net.add_edge("in", "res", weights=torch.randn(n, 1, dtype=torch.float64))
w = torch.randn(n, n, dtype=torch.float64) * (torch.rand(n, n) < 0.1) * 0.2
net.add_edge("res", "res", weights=w, feedback=True)
net.add_edge("res", "out", weights=torch.randn(1, n, dtype=torch.float64))
c = net.compile()
x = torch.randn(steps, 1, dtype=torch.float64)
obs = rg.Observer(["res"], every=1000)
c.run(x[:5000], observer=obs)
with open("/proc/self/clear_refs", "w") as fh:  # restart the peak (VmHWM) from here
    fh.write("5")
base = rss("VmRSS:")
rec = c.run(x, observer=obs)
print("NATIVE", rg.native.available(), "PEAK_MIB", rss("VmHWM:") - base)
print("SHAPE", tuple(rec["res"].shape))
"""


def test_strided_observer_keeps_memory_bounded(tmp_path):
    """6e5 steps of 200 units recorded every 1000 steps (0.9 MiB): the run's peak memory
    stays far below the 915 MiB of all states that the strided views kept alive (the
    bound leaves room for the allocator: +25 MiB typically, up to +270 MiB seen)."""
    done = subprocess.run(
        [sys.executable, "-c", MEMORY],
        env=_environment(tmp_path / "cache", {}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert lines["NATIVE"].startswith("True")
    assert lines["SHAPE"] == "(600, 200)"
    peak = float(lines["NATIVE"].split()[-1])
    assert peak < 450, f"peak +{peak:.0f} MiB"


# ------------------------------------------------------------------------------------
# 17, 18 and the build probes: subprocesses with their own cache directory
# ------------------------------------------------------------------------------------


PROBE = """
import json, torch, rnngraph as rg
ok = rg.native.available()
net = rg.Network(dt=1.0, dtype=torch.float64)
net.add_func_node("in", 1)
net.add_diffeq_node("res", "leaky_tanh", n=20, lr=0.3)
net.add_edge("in", "res", weights=torch.linspace(-1, 1, 20, dtype=torch.float64)[:, None])
net.add_edge("res", "res", weights=torch.eye(20, dtype=torch.float64).roll(1, 0) * 0.9,
             feedback=True)
x = torch.sin(torch.arange(30, dtype=torch.float64))[:, None]
y = net.compile().run(x).output
rg.native.set_enabled(False)
net.reset()
same = bool(torch.allclose(net.compile().run(x).output, y, rtol=0, atol=1e-12))
print("RESULT " + json.dumps({"available": ok, "failure": rg.native.failure(), "same": same}))
"""


def _environment(cache: Path | None, extra: dict) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CC", "RNNGRAPH_NATIVE", "RNNGRAPH_CACHE_DIR", "XDG_CACHE_HOME", "TMPDIR")
    }
    env["PYTHONPATH"] = str(ROOT)
    if cache is not None:
        env["RNNGRAPH_CACHE_DIR"] = str(cache)
    env.update(extra)
    return env


def probe(cache: Path | None, **extra: str) -> tuple[dict, subprocess.CompletedProcess]:
    """Import rnngraph in a fresh process with ``cache`` as its cache directory and
    ``extra`` in its environment; its native status, and the process."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=_environment(cache, extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"rc {done.returncode}: {done.stderr[-2000:]}"
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    assert result["same"]  # native on or off, the same numbers
    return result, done


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A cache directory holding a freshly built library (copied by each test)."""
    cache = tmp_path_factory.mktemp("seed") / "cache"
    result, _ = probe(cache)
    assert result["available"], result["failure"]
    return cache


def seeded(built: Path, dest: Path) -> Path:
    shutil.copytree(built, dest, symlinks=True)
    return dest


def no_compiler(tmp_path: Path) -> dict:
    """An environment with nothing on ``PATH``."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    return {"PATH": str(empty)}


def libraries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.so"))


def valid_manifests(cache: Path) -> list[dict]:
    """The manifests in ``cache`` whose library exists and matches its recorded hash."""
    out = []
    for m in sorted(cache.glob("*.json")):
        data = json.loads(m.read_text())
        lib = cache / data["library"]
        if lib.exists() and hashlib.sha256(lib.read_bytes()).hexdigest() == data["sha256"]:
            out.append(data)
    return out


def test_two_processes_build_into_one_empty_cache(tmp_path):
    cache = tmp_path / "cache"
    env = _environment(cache, {})
    procs = [
        subprocess.Popen([sys.executable, "-c", PROBE], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        assert '"available": true' in out, out
    assert len(valid_manifests(cache)) == 2  # one per real type, each whole
    assert not list(cache.glob(".build-*"))  # no temporary build left behind
    result, _ = probe(cache, **no_compiler(tmp_path))  # a third process only loads
    assert result["available"], result["failure"]


def test_cached_library_loads_without_a_compiler(built, tmp_path):
    cache = seeded(built, tmp_path / "cache")
    result, _ = probe(cache, **no_compiler(tmp_path))
    assert result["available"], result["failure"]


def test_no_compiler_and_no_cache_turns_native_off_with_one_notice(tmp_path):
    result, done = probe(tmp_path / "cache", **no_compiler(tmp_path))
    assert not result["available"]
    assert "no C compiler" in result["failure"]
    notices = [line for line in done.stderr.splitlines() if "rnngraph.native" in line]
    assert len(notices) == 1, done.stderr
    assert "native loops unavailable" in notices[0]


def test_read_only_cache_with_a_library_loads_it(built, tmp_path):
    cache = seeded(built, tmp_path / "cache")
    cache.chmod(0o500)
    try:
        result, _ = probe(cache, **no_compiler(tmp_path))
    finally:
        cache.chmod(0o700)
    assert result["available"], result["failure"]


def test_read_only_empty_cache_builds_elsewhere(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o500)
    try:
        result, done = probe(cache)
    finally:
        cache.chmod(0o700)
    assert result["available"], result["failure"]
    assert list(cache.iterdir()) == []  # nothing written into it
    assert "is read-only" in done.stderr


@pytest.mark.parametrize("damage", ["truncated", "empty", "foreign"])
def test_damaged_cached_library_is_rebuilt(built, tmp_path, damage):
    """A truncated library killed every later process with a bus error; an empty or a
    foreign one turned native code off for good."""
    cache = seeded(built, tmp_path / "cache")
    foreign = _compile(tmp_path, "int foreign(void) { return 1; }\n")
    for lib in libraries(cache):
        data = lib.read_bytes()
        lib.write_bytes(
            {"truncated": data[: len(data) // 2], "empty": b"", "foreign": foreign}[damage]
        )
    result, _ = probe(cache)
    assert result["available"], result["failure"]
    assert len(valid_manifests(cache)) == 2


@pytest.mark.parametrize("start", ["empty", "built by plain cc"])
def test_compiler_given_with_flags_and_a_new_compiler_rebuilds(built, tmp_path, start):
    """``CC='cc -pipe'`` builds (it was run as one file name); a library built by another
    compiler command is rebuilt."""
    cache = tmp_path / "cache"
    if start != "empty":
        seeded(built, cache)
    cc = shutil.which("cc") or shutil.which("gcc")
    result, _ = probe(cache, CC=f"{cc} -pipe")
    assert result["available"], result["failure"]
    manifests = valid_manifests(cache)
    assert len(manifests) == 2
    assert all("-pipe" in m["compiler"] for m in manifests)


# -- 18: planted libraries ------------------------------------------------------------


def _compile(tmp_path: Path, source: str, name: str = "foreign") -> bytes:
    c, so = tmp_path / f"{name}.c", tmp_path / f"{name}.so"
    c.write_text(source)
    cc = shutil.which("cc") or shutil.which("gcc")
    subprocess.run([cc, "-shared", "-fPIC", str(c), "-o", str(so)], check=True)
    return so.read_bytes()


def _planted(tmp_path: Path, marker: Path) -> bytes:
    """A library whose constructor writes ``marker`` when it is loaded."""
    source = (
        "#include <stdio.h>\n"
        "__attribute__((constructor)) static void planted(void) {\n"
        f'  FILE *f = fopen("{marker}", "w"); if (f) {{ fputs("ran", f); fclose(f); }}\n'
        "}\n"
    )
    return _compile(tmp_path, source, "planted")


def plant(directory: Path, lib: bytes, good_hash: bool = True) -> None:
    """Put ``lib`` under every name the native module loads from, with a manifest that
    describes it as this build (the library's hash correct, or not)."""
    directory.mkdir(parents=True, exist_ok=True)
    source = _native._SOURCE.read_bytes()
    for real in ("double", "float"):
        parts = [source, " ".join(_native._COMPILE).encode(), real.encode()]
        parts.append(_native._cpu_signature().encode())
        key = hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]
        (directory / f"native-{real}-{key}.so").write_bytes(lib)  # the first layout's name
        if hasattr(_native, "_build_name"):
            fields = _native._fields(real)
            name = _native._build_name(real, fields)
            (directory / f"{name}-planted.so").write_bytes(lib)
            digest = hashlib.sha256(lib).hexdigest() if good_hash else "0" * 64
            manifest = {"library": f"{name}-planted.so", "sha256": digest, "fields": fields}
            manifest["compiler"] = _native._compiler()[1]
            (directory / f"{name}.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("how", ["group-other-writable", "other-owner", "bad-hash"])
def test_planted_library_is_never_loaded(tmp_path, how):
    if how == "other-owner" and os.geteuid() != 0:
        pytest.skip("making a directory of another user needs root")
    marker = tmp_path / "constructor-ran"
    lib = _planted(tmp_path, marker)
    cache = tmp_path / "cache"
    plant(cache, lib, good_hash=how != "bad-hash")
    if how == "group-other-writable":
        cache.chmod(0o777)
    elif how == "other-owner":
        cache.chmod(0o755)
        os.chown(cache, 65534, 65534)
    else:
        cache.chmod(0o700)
    try:
        result, done = probe(cache)
    finally:
        if how == "other-owner":
            os.chown(cache, os.geteuid(), os.getegid())
    assert not marker.exists(), "the planted library's constructor ran"
    assert result["available"], result["failure"]
    if how != "bad-hash":
        assert "not using the cache directory" in done.stderr


def test_fallback_temporary_cache_of_another_writer_is_never_loaded(tmp_path):
    """``~/.cache`` cannot be created: the fallback ``<tmp>/rnngraph-<uid>`` that another
    user made (group/other-writable, a library planted in it) is refused."""
    marker = tmp_path / "constructor-ran"
    lib = _planted(tmp_path, marker)
    tmp = tmp_path / "tmp"
    fallback = tmp / f"rnngraph-{os.getuid()}"
    plant(fallback, lib)
    fallback.chmod(0o777)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    env = {"XDG_CACHE_HOME": str(not_a_dir), "TMPDIR": str(tmp)}
    result, done = probe(None, **env)
    assert not marker.exists(), "the planted library's constructor ran"
    assert result["available"], result["failure"]
    assert "writable by its group or others" in done.stderr


def test_new_cache_directories_are_private(tmp_path):
    cache = tmp_path / "a" / "b" / "cache"
    result, _ = probe(cache)
    assert result["available"], result["failure"]
    for d in (tmp_path / "a", tmp_path / "a" / "b", cache):
        assert (d.stat().st_mode & 0o777) == 0o700
    assert all((p.stat().st_mode & 0o022) == 0 for p in cache.iterdir())


def test_native_module_docstring_names_the_settings():
    doc = _native.__doc__
    for name in ("RNNGRAPH_CACHE_DIR", "RNNGRAPH_NATIVE", "$CC", "manifest", "0700"):
        assert name in doc


def test_library_built_for_another_glibc_is_rebuilt(built, tmp_path):
    """The manifest records the glibc a library was built against; another one rebuilds."""
    cache = seeded(built, tmp_path / "cache")
    for m in cache.glob("*.json"):
        data = json.loads(m.read_text())
        data["fields"]["glibc"] = "glibc 2.17"
        m.write_text(json.dumps(data))
    result, _ = probe(cache, **no_compiler(tmp_path))
    assert not result["available"]  # no compiler: the mismatched library is not loaded
    result, _ = probe(cache)
    assert result["available"], result["failure"]
    assert len(valid_manifests(cache)) == 2
    assert all(m["fields"]["glibc"] == _native._glibc() for m in valid_manifests(cache))


def test_python_numbers_reach_the_native_loop_in_float64() -> None:
    """A Python float handed to a float64 native call is not rounded through float32."""
    got = _native.vector("t", "lr", 0.1, 3, torch.float64)
    assert got.tolist() == [0.1, 0.1, 0.1]
    assert _native.vector("t", "lr", [0.1, 0.2, 0.3], 3, torch.float64).tolist() == [0.1, 0.2, 0.3]


def test_set_enabled_takes_a_bool_only() -> None:
    with pytest.raises(TypeError, match=r"set_enabled.*'yes'"):
        rg.native.set_enabled("yes")
    assert rg.native.enabled() in (True, False)


def test_a_compiler_without_openmp_builds_the_loops_without_it(tmp_path):
    """Where ``-fopenmp`` fails to compile, the library is built without it (the row groups
    of a batch run one after another): native code stays available, with one notice."""
    cc = shutil.which("cc") or shutil.which("gcc")
    wrapper = tmp_path / "cc-no-openmp"
    wrapper.write_text(
        '#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && { echo "no OpenMP" >&2; exit 1; }; '
        f'done\nexec {cc} "$@"\n'
    )
    wrapper.chmod(0o700)
    cache = tmp_path / "cache"
    result, done = probe(cache, CC=str(wrapper))
    assert result["available"], result["failure"]
    assert "without -fopenmp" in done.stderr
    flags = [m["fields"]["flags"] for m in valid_manifests(cache)]
    assert flags and not any("-fopenmp" in f for f in flags)
    result, _ = probe(tmp_path / "cache2")  # the plain compiler builds with OpenMP
    assert result["available"]
    flags = [m["fields"]["flags"] for m in valid_manifests(tmp_path / "cache2")]
    assert flags and all("-fopenmp" in f for f in flags)
