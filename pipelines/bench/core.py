"""``forecaster bench core``: the GRU kernels against PyTorch on this machine.

Every figure is measured in the same process, alternating between the contenders
(see :mod:`pipelines.bench.timing`), with PyTorch and BLAS limited to one thread
and both sides in float64. PyTorch is only needed here and in tests; it is imported
lazily so the service never depends on it.
"""

from __future__ import annotations

import importlib
import platform
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from forecaster.core import Adam, GRUSpec, Trainer, gru_step, step_workspace
from pipelines.bench.timing import per_call_seconds, side_by_side

INPUT_SIZE = 4


@dataclass(frozen=True)
class Row:
    """One comparison: our time per unit, theirs, and the arithmetic lower bound."""

    name: str
    unit: str
    ours_s: float
    torch_s: float
    bound_s: float

    @property
    def speedup(self) -> float:
        """How many times faster we are than PyTorch (>1 is faster)."""
        return self.torch_s / self.ours_s

    @property
    def fraction_of_bound(self) -> float:
        """The lower bound as a fraction of our time (1.0 would be peak matmul speed)."""
        return self.bound_s / self.ours_s

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "name": self.name,
            "unit": self.unit,
            "ours_us": self.ours_s * 1e6,
            "torch_us": self.torch_s * 1e6,
            "speedup": self.speedup,
            "bound_us": self.bound_s * 1e6,
            "fraction_of_bound": self.fraction_of_bound,
        }


def load_torch() -> Any:
    """Import torch for the comparison, or fail with the command that installs it."""
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        msg = "the benchmark compares against PyTorch: pip install torch==2.13.0"
        raise SystemExit(msg) from None
    torch.set_num_threads(1)
    return torch


def step_flops(spec: GRUSpec) -> float:
    """Multiply-adds x2 of one GRU step, all layers (the matrix products dominate)."""
    g, h = 3 * spec.hidden_size, spec.hidden_size
    return 2.0 * g * (spec.input_size + h) + 2.0 * g * 2 * h * (spec.num_layers - 1)


def matmul_gflops(size: int = 384, calls: int = 20) -> float:
    """One-thread float64 matrix-multiply rate of this machine (the lower bound's divisor)."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(size, size)), rng.normal(size=(size, size))
    seconds = min(per_call_seconds(lambda: a @ b, calls) for _ in range(5))
    return 2.0 * size**3 / seconds / 1e9


def bench_single_event(torch: Any, hidden: int, gflops: float, calls: int, rounds: int) -> Row:
    """One event of one series per Python call: our step vs ``GRUCell`` (inference mode)."""
    spec = GRUSpec(input_size=INPUT_SIZE, hidden_size=hidden)
    params, state = spec.init_params(0), np.zeros((1, hidden))
    x, rows, work = np.full((1, INPUT_SIZE), 0.5), np.zeros(1, dtype=np.int64), step_workspace(spec)
    cell = torch.nn.GRUCell(INPUT_SIZE, hidden, dtype=torch.float64)
    xt, ht = (
        torch.full((1, INPUT_SIZE), 0.5, dtype=torch.float64),
        torch.zeros(1, hidden, dtype=torch.float64),
    )

    def ours() -> None:
        gru_step(params, x, state, rows, work, INPUT_SIZE, hidden, 1, True)

    def theirs() -> None:
        with torch.inference_mode():
            cell(xt, ht)

    t = side_by_side({"ours": ours, "torch": theirs}, calls, rounds)
    return Row(f"1 series, 1 event/call, H={hidden}", "us/event", t["ours"], t["torch"],
               step_flops(spec) / (gflops * 1e9))  # fmt: skip


def bench_batched(torch: Any, hidden: int, series: int, gflops: float, rounds: int) -> Row:
    """One event for each of ``series`` series in one call: our step vs ``GRUCell`` on a batch."""
    spec = GRUSpec(input_size=INPUT_SIZE, hidden_size=hidden)
    params, state = spec.init_params(0), np.zeros((series, hidden))
    rng = np.random.default_rng(1)
    x, rows = rng.normal(size=(series, INPUT_SIZE)), np.arange(series, dtype=np.int64)
    work = step_workspace(spec)
    cell = torch.nn.GRUCell(INPUT_SIZE, hidden, dtype=torch.float64)
    xt, ht = torch.from_numpy(x.copy()), torch.zeros(series, hidden, dtype=torch.float64)

    def ours() -> None:
        gru_step(params, x, state, rows, work, INPUT_SIZE, hidden, 1, True)

    def theirs() -> None:
        with torch.inference_mode():
            cell(xt, ht)

    t = side_by_side({"ours": ours, "torch": theirs}, 5, rounds)
    return Row(f"{series:,} series, 1 event each, H={hidden}", "us/event", t["ours"] / series,
               t["torch"] / series, step_flops(spec) / (gflops * 1e9))  # fmt: skip


def bench_training(torch: Any, gflops: float, rounds: int) -> Row:
    """One Adam step on MSE over 32 windows x 64 events, D=4, H=32, horizon 12."""
    nb, nt, hidden, horizon = 32, 64, 32, 12
    spec = GRUSpec(input_size=INPUT_SIZE, hidden_size=hidden, horizon=horizon)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(nb, nt, INPUT_SIZE)), rng.normal(size=(nb, nt, horizon))
    trainer = Trainer(spec, Adam(lr=1e-3))
    params, opt_state = spec.init_params(0), trainer.init_state()

    gru = torch.nn.GRU(INPUT_SIZE, hidden, batch_first=True, dtype=torch.float64)
    head = torch.nn.Linear(hidden, horizon, dtype=torch.float64)
    opt = torch.optim.Adam([*gru.parameters(), *head.parameters()], lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def ours() -> None:
        trainer.step(params, opt_state, x, y)

    def theirs() -> None:
        opt.zero_grad()
        out, _ = gru(xt)
        loss = torch.nn.functional.mse_loss(head(out), yt)
        loss.backward()
        opt.step()

    t = side_by_side({"ours": ours, "torch": theirs}, 3, rounds)
    # forward + backward ~ 3x the forward's multiply-adds, for every window position
    flops = 3.0 * (step_flops(spec) + 2.0 * hidden * horizon) * nb * nt
    return Row(f"train step, {nb} windows x {nt} steps, H={hidden}", "us/window",
               t["ours"] / nb, t["torch"] / nb, flops / nb / (gflops * 1e9))  # fmt: skip


def run(quick: bool = False) -> dict[str, Any]:
    """Run every comparison; ``quick`` uses fewer rounds (for smoke tests)."""
    torch = load_torch()
    rounds = 3 if quick else 9
    with threadpool_limits(limits=1):
        gflops = matmul_gflops()
        rows = [
            bench_single_event(torch, 32, gflops, 2000 if quick else 20000, rounds),
            bench_single_event(torch, 64, gflops, 2000 if quick else 20000, rounds),
            bench_batched(torch, 32, 10_000, gflops, rounds),
            bench_training(torch, gflops, rounds),
        ]
    return {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numba": importlib.import_module("numba").__version__,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "matmul_gflops_1thread": gflops,
        },
        "rows": [r.as_dict() for r in rows],
    }
