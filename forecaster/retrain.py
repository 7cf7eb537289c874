"""Retraining off the hot path, on windows drawn from the series' histories (windows.py).

A :class:`RetrainJob` takes copies of everything it reads when it is created, so it can
run in a background thread (the kernels release the GIL) while the model keeps learning
events. Its result is applied at a fixed event count, so a run gives the same outputs
whether the job ran in a thread or inline.
"""

from __future__ import annotations

import math
import threading
import traceback
from dataclasses import dataclass

import numpy as np

from forecaster.blend import (
    BLEND_MEMORY,
    MixKernel,
    anchors,
    blend_combos,
    blend_losses,
    pick_blend,
)
from forecaster.config import ForecasterConfig
from forecaster.core import (
    F64Array,
    GRUSpec,
    Loss,
    Trainer,
    Workspace,
    forward,
    gru_step,
    step_workspace,
)
from forecaster.core.backprop import output_grad
from forecaster.core.blend import mix_losses
from forecaster.core.params import I64Array
from forecaster.series import SeriesTable
from forecaster.windows import TrainBatches, draw_windows, sample_windows


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
    blend: F64Array  # (K, M): how each step's forecast mixes the candidates
    blend_losses: F64Array  # (K, C): running record the blend was picked from
    accepted: bool
    train_loss: float
    val_loss_before: float
    val_loss_after: float
    states: F64Array  # rebuilt states of ``rows`` under the new weights
    rows: I64Array
    ids: list[str | None]
    counts: I64Array  # events each row had when the job started
    error: str = ""  # the traceback of a retrain that raised (its weights are not used)
    steps: int = 0  # training steps taken (fewer than train_steps: stopped early)


class RetrainJob:
    """Train a copy of the weights on windows sampled at creation; rebuild states.

    Everything read is copied in ``__init__``: the job never touches the live model.
    """

    lazy_windows: bool | None = None  # how TrainBatches gathers (None: the cheaper way)
    mix_kernel: MixKernel = staticmethod(mix_losses)  # scores the blend's mixes (blend_losses)

    def __init__(
        self,
        cfg: ForecasterConfig,
        spec: GRUSpec,
        params: F64Array,
        opt_state: F64Array,
        blend: F64Array,
        blend_record: F64Array,
        table: SeriesTable,
        seed: tuple[int, int],
    ) -> None:
        rng = np.random.default_rng(list(seed))
        n_train = cfg.train_steps * cfg.batch_windows
        # Enough to judge a retrain, few enough not to cost more than a share of it.
        n_val = 4 * cfg.batch_windows
        # Validation is the recent past, training what came before: a retrain is judged
        # on how it would have forecast data it did not see.
        val = sample_windows(table, cfg, rng, n_val, recent=True)
        train = draw_windows(table, cfg, rng, n_train, recent=False)
        self.ready = val is not None and train is not None
        self.cfg, self.spec = cfg, spec
        self.params, self.opt_state, self.blend = params.copy(), opt_state.copy(), blend.copy()
        combos = blend_combos(blend.shape[1]).shape[0]
        # A record from before pairs were blended (an older snapshot) has another shape:
        # the blend it chose stays, the evidence starts afresh.
        fits = blend_record.shape == (cfg.horizon, combos)
        self.record = blend_record.copy() if fits else np.zeros((cfg.horizon, combos))
        if val is not None and train is not None:
            self.val, self.train = val, TrainBatches(table, train, cfg, self.lazy_windows)
        self.rows = table.active_rows()
        self.ids = [table.ids[r] for r in self.rows]
        self.counts = table.count[self.rows].copy()
        self.recent, self.lengths = recent_inputs(table, self.rows, cfg.rebuild_steps, cfg.history)
        self._result: RetrainResult | None = None
        self._thread: threading.Thread | None = None
        self._ws: Workspace | None = None  # the validation passes'
        # (weights, outputs) of the latest validation pass, and of the two judge() reuses
        self._last_pass: tuple[F64Array, F64Array] | None = None
        self._passes: list[tuple[F64Array, F64Array] | None] = [None, None]

    def start(self, background: bool) -> None:
        """Run now, or in a daemon thread when ``background``."""
        if background:
            self._thread = threading.Thread(
                target=self._run, name="forecaster-retrain", daemon=True
            )
            self._thread.start()
        else:
            self._run()

    def done(self) -> bool:
        """Whether the result is ready (``result`` will not wait)."""
        return self._result is not None

    def result(self) -> RetrainResult:
        """Wait for the job and return its result."""
        if self._thread is not None:
            self._thread.join()
        assert self._result is not None
        return self._result

    def _run(self) -> None:
        # An exception must end the job too: a stream waiting on a job that never
        # finishes would hang. A failed retrain is judged like a rejected one (the old
        # weights stay) and carries its traceback for the application to report.
        try:
            self._result = self._train()
        except Exception:
            self._result = self._failed(traceback.format_exc())

    def _failed(self, error: str) -> RetrainResult:
        nan = float("nan")
        return RetrainResult(
            self.params, self.opt_state, self.blend, self.record, False, nan, nan, nan,
            np.zeros((self.rows.size, self.spec.state_size)), self.rows, self.ids, self.counts,
            error,
        )  # fmt: skip

    def _train(self) -> RetrainResult:
        trainer = self.trainer()
        old = self.params.copy()
        loss, steps = self.fit(trainer)
        ok, before, after, blend, record = self.judge(trainer, old)
        # The validation passes' arrays (tens of MB with fleets' 128 windows) are not
        # kept while the result waits for its swap.
        self._ws, self._last_pass, self._passes = None, None, [None, None]
        states = self.states(ok)
        return RetrainResult(
            self.params, self.opt_state, blend, record, ok, loss, before, after, states,
            self.rows, self.ids, self.counts, steps=steps,
        )  # fmt: skip

    # The phases of a retrain, in order (``forecaster bench retrain`` times each).
    def trainer(self) -> Trainer:
        """The trainer of this job's settings."""
        cfg = self.cfg
        return Trainer(
            self.spec, cfg.make_optimizer(), Loss.parse(cfg.loss), cfg.huber_delta, cfg.clip_norm
        )

    def fit(self, trainer: Trainer) -> tuple[float, int]:
        """Train the job's weights in place; the last step's loss and the steps taken.

        With ``early_stop_every``, the GRU's loss on the validation windows is taken
        before the first step, every that many steps and after the last; training stops
        once ``early_stop_patience`` of them in a row are no better than the best (by
        ``early_stop_min_delta``, relative, than the last that was), and the weights
        and optimiser state of the best stay.
        """
        cfg = self.cfg
        new, opt = self.params, self.opt_state
        train = self.train
        every, patience = cfg.early_stop_every, cfg.early_stop_patience
        gain = 1.0 - cfg.early_stop_min_delta
        best, mark, waited = math.inf, math.inf, 0
        kept: tuple[F64Array, F64Array] | None = None
        loss, step = float("nan"), 0
        for step in range(cfg.train_steps + 1):
            if every and (step % every == 0 or step == cfg.train_steps):
                val = self.gru_val_loss(trainer, new)
                if val < best:
                    best, kept = val, (new.copy(), opt.copy())
                    # judge() scores these forecasts again: the starting weights' and
                    # the kept ones'.
                    self._passes[0 if step == 0 else 1] = self._last_pass
                if val < mark * gain:  # a gain worth training on for (mark: the last one)
                    mark, waited = val, 0
                else:
                    waited += 1
                    if waited >= patience:
                        break
            if step == cfg.train_steps:
                break
            w = train.batch(step)
            loss = trainer.step(new, opt, w.x, w.y, w.w)
        if kept is not None:
            new[:], opt[:] = kept
        return float(loss), step

    def gru_val_loss(self, trainer: Trainer, params: F64Array) -> float:
        """The GRU's own loss (no blend) on the validation windows.

        One forward pass over every window (as many in lockstep as there are: cheaper than
        a pass a training batch), the loss summed a training batch at a time as before.
        """
        v, b = self.val, self.cfg.batch_windows
        out = self._forward(params)
        dy = self._eval_ws(v.x.shape[0]).dy
        total = weight = 0.0
        for lo in range(0, v.x.shape[0], b):
            sel = slice(lo, lo + b)
            wsum = float(v.w[sel].sum())
            loss = output_grad(out[:, sel], v.y[sel], v.w[sel], dy[:, sel], int(trainer.loss),
                               trainer.huber_delta)  # fmt: skip
            total += wsum * loss
            weight += wsum
        return total / weight if weight > 0 else math.inf

    def _eval_ws(self, n: int) -> Workspace:
        """The validation passes' workspace (apart from training's, whose batch is smaller)."""
        if self._ws is None or self._ws.batch != n:
            self._ws = Workspace(self.spec, n, self.val.x.shape[1])
        return self._ws

    def _forward(self, params: F64Array) -> F64Array:
        """The GRU's outputs ``(T, N, K)`` on the validation windows under ``params``.

        A pass made earlier with the same weights (early stopping's first and best) is
        not made again.
        """
        for memo in self._passes:
            if memo is not None and np.array_equal(memo[0], params):
                self._last_pass = memo
                return memo[1]
        v, spec = self.val, self.spec
        ws = self._eval_ws(v.x.shape[0])
        forward(spec, params, v.x, np.zeros((spec.num_layers, v.x.shape[0], spec.hidden_size)), ws)
        self._last_pass = (params.copy(), ws.out.copy())
        return ws.out

    def judge(
        self, trainer: Trainer, old: F64Array
    ) -> tuple[bool, float, float, F64Array, F64Array]:
        """Score the old and new weights' blends on the validation windows.

        Returns whether the new weights are accepted, the validation losses before and
        after, and the blend and record the new weights would deploy.
        """
        cfg, new = self.cfg, self.params
        before = self._val_loss(self._candidates(old), self.blend, trainer.loss)
        ok = bool(np.all(np.isfinite(new)))
        blend, record = self.blend, self.record
        after = float("nan")
        if ok:
            cand = self._candidates(new)
            losses = blend_losses(cand, self.val.y, self.val.w, trainer.loss, self.mix_kernel)
            # Judged on these windows alone; a tie gains nothing, so the old weights stay.
            m, tol = self.blend.shape[1], cfg.blend_tolerance
            after = self._val_loss(cand, pick_blend(losses, m, tol), trainer.loss)
            ok = bool(np.isfinite(after) and after < before)
            # Deployed: the choice over this and earlier retrains' evidence, less noisy
            # than one retrain's few recent windows.
            record = np.where(np.isfinite(losses), losses, np.inf)
            if self.record.any():
                record = BLEND_MEMORY * self.record + (1.0 - BLEND_MEMORY) * record
            blend = pick_blend(record, m, tol)
        return ok, float(before), float(after), blend, record

    def states(self, ok: bool) -> F64Array:
        """Hidden states of the job's rows rebuilt under the new weights (zeros if rejected)."""
        zeros = np.zeros((self.rows.size, self.spec.state_size))
        if not ok:
            return zeros
        return rebuild_states(self.params, self.spec, self.recent, self.lengths, zeros)

    def _candidates(self, params: F64Array) -> F64Array:
        """Candidate forecasts on the validation windows (a forward pass, no gradients)."""
        return anchors(np.array(self._forward(params).transpose(1, 0, 2)), self.val.x, self.cfg)

    def _val_loss(self, cand: F64Array, blend: F64Array, kind: Loss) -> float:
        """Validation loss of the blended forecasts (the ones the model would issue)."""
        v = self.val
        err = np.einsum("btkm,km->btk", cand, blend) - v.y
        loss = err**2 if kind == Loss.MSE else np.abs(err)
        return float((loss * v.w).sum() / max(v.w.sum(), 1e-300))
