"""Retraining: windows drawn from the series' histories, trained off the hot path.

A :class:`RetrainJob` takes copies of everything it reads when it is created, so it can
run in a background thread (the kernels release the GIL) while the model keeps learning
events. Its result is applied at a fixed event count, so a run gives the same outputs
whether the job ran in a thread or inline.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from forecaster.config import ForecasterConfig
from forecaster.core import F64Array, GRUSpec, Loss, Trainer, gru_step, step_workspace
from forecaster.core.params import I64Array
from forecaster.series import SeriesTable


@dataclass(frozen=True)
class Windows:
    """Training windows: inputs ``x (B, T, D)``, targets and weights ``(B, T, K)``."""

    x: F64Array
    y: F64Array
    w: F64Array

    def take(self, sel: slice | I64Array) -> Windows:
        """A subset of the windows."""
        return Windows(self.x[sel], self.y[sel], self.w[sel])


def sample_windows(
    table: SeriesTable, cfg: ForecasterConfig, rng: np.random.Generator, n: int
) -> Windows | None:
    """Draw ``n`` windows uniformly over every window the histories hold.

    Targets are ``(y[t+k] - y[t]) / scale[t]``; weights are 0 for the first ``burn_in``
    positions and where ``t + k`` is not yet in the history. ``None`` when no series has
    a full window yet.
    """
    rows = table.active_rows()
    counts = table.count[rows]
    avail = np.minimum(counts, cfg.history)
    per_row = np.maximum(avail - cfg.window + 1, 0)
    if per_row.sum() == 0:
        return None
    pick = rng.choice(rows.size, size=n, p=per_row / per_row.sum())
    r = rows[pick]
    first = counts[pick] - avail[pick]  # oldest event index still held
    start = first + rng.integers(0, per_row[pick])
    k, t = cfg.horizon, cfg.window
    idx = start[:, None] + np.arange(t)[None, :]  # event indices (B, T)
    h = cfg.history
    x = table.hist_x[r[:, None], idx % h]
    y_now = table.hist_y[r[:, None], idx % h]
    scale = table.hist_scale[r[:, None], idx % h]
    fut = idx[:, :, None] + np.arange(1, k + 1)[None, None, :]
    known = fut < counts[pick][:, None, None]
    y_fut = table.hist_y[r[:, None, None], np.where(known, fut, 0) % h]
    target = np.where(known, (y_fut - y_now[:, :, None]) / scale[:, :, None], 0.0)
    weight = known.astype(np.float64)
    weight[:, : cfg.burn_in] = 0.0
    return Windows(x, target, weight)


def rebuild_states(
    params: F64Array, spec: GRUSpec, inputs: F64Array, lengths: I64Array, start: F64Array
) -> F64Array:
    """Run each row's last ``lengths[i]`` inputs from state ``start[i]``; return the states.

    ``inputs`` is ``(n, R, D)``, right-aligned: row i's events are ``inputs[i, R-len:]``.
    Rows run in lockstep, each joining when its events begin.
    """
    state = start.copy()
    steps = inputs.shape[1]
    work = step_workspace(spec)
    d, hsz, layers = spec.input_size, spec.hidden_size, spec.num_layers
    for s in range(steps):
        rows = np.flatnonzero(lengths >= steps - s)
        if rows.size:
            x = np.ascontiguousarray(inputs[rows, s])
            gru_step(
                params, x, state, rows.astype(np.int64), work, d, hsz, layers, spec.reset_after
            )
    return state


def recent_inputs(
    table: SeriesTable, rows: I64Array, length: int, history: int
) -> tuple[F64Array, I64Array]:
    """Right-aligned last ``length`` inputs of each row (fewer if it has fewer events)."""
    counts = table.count[rows]
    lengths = np.minimum(counts, length)
    idx = counts[:, None] - length + np.arange(length)[None, :]
    x = table.hist_x[rows[:, None], np.maximum(idx, 0) % history]
    x[idx < 0] = 0.0
    return x, lengths


@dataclass
class RetrainResult:
    """What a retrain produced, and the evidence for accepting it."""

    params: F64Array
    opt_state: F64Array
    accepted: bool
    train_loss: float
    val_loss_before: float
    val_loss_after: float
    states: F64Array  # rebuilt states of ``rows`` under the new weights
    rows: I64Array
    ids: list[str | None]
    counts: I64Array  # events each row had when the job started


class RetrainJob:
    """Train a copy of the weights on windows sampled at creation; rebuild states.

    Everything read is copied in ``__init__``: the job never touches the live model.
    """

    def __init__(
        self,
        cfg: ForecasterConfig,
        spec: GRUSpec,
        params: F64Array,
        opt_state: F64Array,
        table: SeriesTable,
        seed: tuple[int, int],
    ) -> None:
        rng = np.random.default_rng(list(seed))
        n_train = cfg.train_steps * cfg.batch_windows
        # Enough to judge a retrain, few enough not to cost more than a share of it.
        n_val = min(4 * cfg.batch_windows,
                    max(cfg.batch_windows, round(n_train * cfg.validation_fraction)))  # fmt: skip
        drawn = sample_windows(table, cfg, rng, n_train + n_val)
        self.ready = drawn is not None
        self.cfg, self.spec = cfg, spec
        self.params, self.opt_state = params.copy(), opt_state.copy()
        if drawn is not None:
            self.val = drawn.take(slice(0, n_val))
            self.train = drawn.take(slice(n_val, None))
        self.rows = table.active_rows()
        self.ids = [table.ids[r] for r in self.rows]
        self.counts = table.count[self.rows].copy()
        self.recent, self.lengths = recent_inputs(table, self.rows, cfg.rebuild_steps, cfg.history)
        self._result: RetrainResult | None = None
        self._thread: threading.Thread | None = None

    def start(self, background: bool) -> None:
        """Run now, or in a daemon thread when ``background``."""
        if background:
            self._thread = threading.Thread(
                target=self._run, name="forecaster-retrain", daemon=True
            )
            self._thread.start()
        else:
            self._run()

    def result(self) -> RetrainResult:
        """Wait for the job and return its result."""
        if self._thread is not None:
            self._thread.join()
        assert self._result is not None
        return self._result

    def _run(self) -> None:
        cfg, spec = self.cfg, self.spec
        trainer = Trainer(
            spec, cfg.make_optimizer(), Loss.parse(cfg.loss), cfg.huber_delta, cfg.clip_norm
        )
        old = self.params.copy()
        new, opt = self.params, self.opt_state
        b, train = cfg.batch_windows, self.train
        loss = float("nan")
        for step in range(cfg.train_steps):
            sel = slice(step * b, (step + 1) * b)
            loss = trainer.step(new, opt, train.x[sel], train.y[sel], train.w[sel])
        before, _ = trainer.loss_and_grad(old, self.val.x, self.val.y, self.val.w)
        after, _ = trainer.loss_and_grad(new, self.val.x, self.val.y, self.val.w)
        ok = bool(np.isfinite(after) and np.all(np.isfinite(new)) and after <= before)
        zeros = np.zeros((self.rows.size, spec.state_size))
        states = rebuild_states(new, spec, self.recent, self.lengths, zeros) if ok else zeros
        self._result = RetrainResult(
            new, opt, ok, float(loss), float(before), float(after), states, self.rows, self.ids,
            self.counts,
        )  # fmt: skip
