"""``forecaster replay`` (issue 6): files through the service's loop, scores, errors, report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from click.testing import CliRunner

from forecaster import ForecasterConfig, OnlineForecaster
from pipelines.cli import main
from pipelines.engine.loop import Runner
from pipelines.engine.memory import ListDeadLetters, ListSink, MemorySource, NullStore
from pipelines.engine.recorded import Columns, RecordedSource
from pipelines.engine.records import Message
from pipelines.engine.runstate import LoopSettings
from pipelines.engine.task import PartitionTask
from pipelines.files.source import parse_file
from pipelines.replay.run import run_loop
from tests.conftest import needs_jit
from tests.pipelines.streams import MODEL, write_settings

T0 = np.datetime64("2024-01-01T00:00:00", "s")
# No retraining: the GRU's zero head forecasts "no change", i.e. the last value, exactly.
LAST_VALUE = {**MODEL, "retrain_every": 0, "first_retrain": 0}


def csv_file(path: Path, ts: list[str], values: list[str], header: str = "timestamp,value") -> Path:
    lines = [header] + [f"{t},{v}" for t, v in zip(ts, values, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def hourly(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    ts = [str(T0 + np.timedelta64(i * 3600, "s")) for i in range(n)]
    y = 10 + np.sin(2 * np.pi * np.arange(n) / 24) + 0.1 * rng.standard_normal(n)
    return ts, [f"{v:.6f}" for v in y]


def config(tmp: Path, model: dict[str, Any], name: str = "m") -> Path:
    return write_settings(tmp / f"{name}.toml", {"model": model})


def replay_cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["replay", *args, "--quiet"])


def test_replay_writes_forecasts_and_scores_beside_the_baselines(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "pump.csv", *hourly(240))
    out = tmp_path / "out"
    cfg = config(tmp_path, MODEL)
    result = CliRunner().invoke(main, ["replay", str(data), "--config", str(cfg), "--out",
                                       str(out), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    scores = pd.DataFrame(doc["scores"])
    assert set(scores["model"]) == {"m", "last value", "seasonal naive", "ewma"}
    assert sorted(scores["step"].unique()) == [1, 2, 3]
    assert set(scores.columns) >= {"mae", "rmse", "smape", "mase", "coverage", "n"}
    summary = doc["summary"]
    assert summary["rows"] == summary["events"] == 240
    assert summary["season"] == 24 and summary["events_per_second"] > 0
    assert summary["configs"][0]["retrains"] >= 2  # the schedule of the live service
    fc = pd.read_parquet(out / "forecasts.parquet")
    assert len(fc) == 240 and list(fc["offset"]) == list(range(240))
    assert (fc["series"] == "pump").all()
    assert [c for c in fc.columns if c.startswith("yhat")] == ["yhat_1", "yhat_2", "yhat_3"]
    assert pd.read_csv(out / "scores.csv").shape[0] == scores.shape[0]
    page = (out / "report.html").read_text()
    for name in ("forecast.png", "error_by_horizon.png", "training_loss.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"src='{name}'" in page
    assert "href='forecasts.parquet'" in page and "href='scores.csv'" in page


def test_two_runs_give_byte_identical_forecast_files(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "pump.csv", *hourly(200, seed=1))
    cfg = config(tmp_path, MODEL)
    for fmt in ("parquet", "csv"):
        a, b = tmp_path / f"a-{fmt}", tmp_path / f"b-{fmt}"
        for out in (a, b):
            result = replay_cli(str(data), "--config", str(cfg), "--out", str(out),
                                "--format", fmt)  # fmt: skip
            assert result.exit_code == 0, result.output
        assert (a / f"forecasts.{fmt}").read_bytes() == (b / f"forecasts.{fmt}").read_bytes()


def test_alignment_last_value_errors_at_plus_1_and_plus_3_are_hand_computed(
    tmp_path: Path,
) -> None:
    y = [1.0, 2.0, 4.0, 7.0, 11.0, 16.0]
    data = csv_file(tmp_path / "s.csv", [str(T0 + np.timedelta64(60 * i, "s")) for i in range(6)],
                    [str(v) for v in y])  # fmt: skip
    result = CliRunner().invoke(main, [
        "replay", str(data), "--config", str(config(tmp_path, LAST_VALUE, "lv")), "--warmup", "0",
        "--out", str(tmp_path / "out"), "--json", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = pd.DataFrame(json.loads(result.stdout)["scores"]).set_index(["model", "step"])
    # +1: forecast y[t] for y[t+1]: errors 1, 2, 3, 4, 5. +3: y[t+3] - y[t]: 6, 9, 12.
    for model in ("lv", "last value"):
        assert rows.loc[(model, 1), "mae"] == 3.0
        assert rows.loc[(model, 1), "rmse"] == pytest.approx(math.sqrt(55 / 5))
        assert rows.loc[(model, 1), "n"] == 5
        assert rows.loc[(model, 3), "mae"] == 9.0
        assert rows.loc[(model, 3), "rmse"] == pytest.approx(math.sqrt((36 + 81 + 144) / 3))
        assert rows.loc[(model, 3), "n"] == 3
    # MASE: the mean absolute one-step change over the series is 3, so +1 MASE is 1.
    assert rows.loc[("lv", 1), "mase"] == pytest.approx(1.0)


def irregular_rows() -> tuple[list[str], list[str]]:
    """Hourly, with a 5-hour gap, a duplicated time, a late event and a blank value."""
    hours = [*range(0, 30), *range(35, 60)]
    ts = [str(T0 + np.timedelta64(h * 3600, "s")) for h in hours]
    values = [f"{10 + math.sin(h / 4):.4f}" for h in hours]
    ts.insert(40, ts[39])  # a duplicate timestamp: another event, as in the service
    values.insert(40, "10.5")
    ts.insert(45, str(T0 + np.timedelta64(2 * 3600, "s")))  # late: older than the series' last
    values.insert(45, "9.0")
    values[50] = ""  # no value
    return ts, values


def test_gaps_duplicates_and_late_events_are_counted_and_skipped_as_the_service_does(
    tmp_path: Path,
) -> None:
    ts, values = irregular_rows()
    data = csv_file(tmp_path / "s.csv", ts, values)
    result = CliRunner().invoke(main, ["replay", str(data), "--config",
                                       str(config(tmp_path, MODEL)), "--out",
                                       str(tmp_path / "out"), "--json", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    assert summary["rejected"] == {"missing_field": 1, "out_of_order": 1}
    assert summary["duplicate_times"] == 1 and summary["gaps"] == 1
    assert summary["rows"] == len(ts) and summary["events"] == len(ts) - 2
    # The same rows as JSON messages through the live decoder: the same forecasts.
    msgs = []
    for i, (t, v) in enumerate(zip(ts, values, strict=True)):
        doc = {"series": "s", "ts": t + "Z", "value": float(v) if v else None}
        msgs.append(Message("in", 0, i, b"s", orjson.dumps(doc)))
    live = live_forecasts({("in", 0): msgs}, MODEL)
    fc = pd.read_parquet(tmp_path / "out" / "forecasts.parquet")
    assert list(fc["offset"]) == live["offsets"]
    np.testing.assert_array_equal(fc[[f"yhat_{k}" for k in (1, 2, 3)]].to_numpy(), live["yhat"])
    assert live["rejected"] == {"missing_field": 1, "out_of_order": 1}


def live_forecasts(parts: dict[tuple[str, int], list[Message]], model: dict[str, Any]) -> Any:
    """The run loop over messages (the live service's path), fed in small polls."""
    sink, dead = ListSink(), ListDeadLetters()
    runner = Runner(MemorySource(parts, batch=7), sink, dead, NullStore(),  # type: ignore[arg-type]
                    lambda: OnlineForecaster(model),
                    LoopSettings(every_events=10**12, every_seconds=1e12))  # fmt: skip
    runner.start()
    while not runner.source.exhausted or any(t.backlog for t in runner.tasks.values()):  # type: ignore[attr-defined]
        runner.run_once()
    return {
        "offsets": [int(o) for b in sink.batches for o in b.offsets],
        "yhat": np.concatenate([b.yhat for b in sink.batches]),
        "rejected": dict(runner.stats.rejected),
    }


def test_file_source_feeds_the_loop_in_any_batch_size_with_the_same_result(
    tmp_path: Path,
) -> None:
    ts, values = irregular_rows()
    parsed = parse_file(csv_file(tmp_path / "s.csv", ts, values), Columns())
    from pipelines.configs import load_model_config

    cfg = load_model_config(config(tmp_path, MODEL))
    a, b = run_loop([parsed], cfg, batch=5), run_loop([parsed], cfg, batch=1000)
    np.testing.assert_array_equal(a.forecasts.yhat, b.forecasts.yhat)
    assert a.forecasts.offsets.tolist() == b.forecasts.offsets.tolist()
    assert [r.record.offset for r in a.dead_letters] == [45, 50]
    assert a.dead_letters[1].reason == "missing_field"


def test_a_partition_task_takes_part_of_its_backlog_and_keeps_offsets_in_order() -> None:
    model = OnlineForecaster({**MODEL, "retrain_every": 0, "first_retrain": 0})
    from pipelines.engine.decode import Decoder

    task = PartitionTask("t", 0, model, None, Decoder())
    msgs = [Message("t", 0, i, b"s", orjson.dumps({"series": "s", "ts": 1000 * i, "value": i}))
            for i in range(7)]  # fmt: skip
    msgs[3] = Message("t", 0, 3, b"s", b"not json")
    task.add(msgs[:6])
    model.events_before_wait = lambda ts=None: 2  # type: ignore[method-assign]
    batch, rejected = task.process()
    assert batch is not None and batch.offsets.tolist() == [0, 1] and not rejected
    assert task.next_offset == 2
    batch, rejected = task.process()
    assert batch is not None and batch.offsets.tolist() == [2, 4]
    assert [r.record.offset for r in rejected] == [3] and task.next_offset == 5
    task.add(msgs)  # offsets already queued or done are skipped
    batch, rejected = task.process()
    assert batch is not None and batch.offsets.tolist() == [5, 6] and task.next_offset == 7
    assert not task.backlog


def test_file_source_polls_rejected_rows_with_the_events_around_them(tmp_path: Path) -> None:
    ts, values = irregular_rows()
    parsed = parse_file(csv_file(tmp_path / "s.csv", ts, values), Columns())
    src = RecordedSource({("s.csv", 0): parsed.batch}, batch=50)
    got = src.poll(0)[("s.csv", 0)]
    assert got.end == 51 and [r.record.offset for r in got.rejected] == [50]
    assert src.position(("s.csv", 0)) == 51 and src.now > 0
    rest = src.poll(0)[("s.csv", 0)]
    assert rest.end == len(ts) and src.exhausted


MALFORMED = {
    "bad-date": ("timestamp,value\n2024-01-01 00:00,1.0\nnot a date,2.0\n",
                 "row 2 (line 3), column 'timestamp': 'not a date' is not a date"),
    "text-value": ("timestamp,value\n2024-01-01 00:00,1.0\n2024-01-01 01:00,1.0\n"
                   "2024-01-01 02:00,hot\n",
                   "row 3 (line 4), column 'value': 'hot' is not a number"),
    "empty": ("", "the file is empty (no header row)"),
    "header-only": ("timestamp,value\n", "no data rows (columns: timestamp, value)"),
    "missing-column": ("label,value\npump,1.0\n", "no time column"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_file_is_one_error_line_naming_file_row_and_column(
    tmp_path: Path, case: str
) -> None:
    text, expect = MALFORMED[case]
    data = tmp_path / f"{case}.csv"
    data.write_text(text)
    result = replay_cli(str(data), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0] == f"error: {data}: {expect}" or (
        case == "missing-column" and lines[0].startswith(f"error: {data}: {expect}")
    )


def test_a_named_column_that_is_not_there_is_an_error(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "s.csv", *hourly(5))
    result = replay_cli(str(data), "--value-col", "temp", "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {data}: no value column 'temp' (columns: timestamp, value)"
    )


@needs_jit  # interpreted kernels would take minutes; the maths is tested elsewhere
def test_bench_replay_reports_throughput_and_scores_beside_river(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "s.csv", *hourly(400))
    cfg = config(tmp_path, MODEL)
    result = CliRunner().invoke(main, ["bench", "replay", "--file", str(data), "--config",
                                       str(cfg), "--horizon", "3", "--panel", "none",
                                       "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    names = [r["name"] for r in report["rows"]]
    assert names[:2] == ["replay (shipped config)", "replay, retraining off"]
    assert any("SNARIMAX" in n for n in names) and any("HoltWinters" in n for n in names)
    snarimax = next(r for r in report["rows"] if "SNARIMAX" in r["name"])
    for r in report["rows"]:
        assert r["events"] == 400 and r["events_per_second"] > 0
        assert r["vs_snarimax"] == pytest.approx(
            r["events_per_second"] / snarimax["events_per_second"]
        )
        assert math.isfinite(r["mae_1"]) and math.isfinite(r["mae_3"])
    assert report["ratio"] == report["rows"][0]["vs_snarimax"]
    assert report["ratio_no_retrain"] == report["rows"][1]["vs_snarimax"]
    assert report["panel"] is None
    b, shipped = report["budget"], report["rows"][0]
    assert b["goal_allows_seconds"] == pytest.approx(400 / snarimax["events_per_second"])
    # MODEL retrains at events 60 (first_retrain), 150 and 300 of the 400; one retrain
    # costs the difference between the runs with and without retraining, shared out.
    no_retrain = report["rows"][1]
    assert b["retrains"] == 3
    assert b["seconds_per_retrain"] == pytest.approx(
        max(0.0, shipped["seconds"] - no_retrain["seconds"]) / 3
    )
    assert b["one_retrain_over_allowed"] == pytest.approx(
        b["seconds_per_retrain"] / b["goal_allows_seconds"]
    )
    assert shipped["seconds"] > 0


def test_several_configs_are_scored_in_one_run_and_ranked(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "s.csv", *hourly(200, seed=2))
    a = config(tmp_path, MODEL, "gru")
    b = config(tmp_path, LAST_VALUE, "frozen")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["replay", str(data), "--config", str(a), "--config",
                                       str(b), "--out", str(out), "--json", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    ranking = doc["summary"]["ranking"]
    assert sorted(r["config"] for r in ranking) == ["frozen", "gru"]
    assert [r["rank"] for r in ranking] == [1, 2]
    assert ranking[0]["mase"] <= ranking[1]["mase"]
    scores = pd.DataFrame(doc["scores"])
    assert {"gru", "frozen", "last value"} <= set(scores["model"])
    for label in ("gru", "frozen"):
        assert len(pd.read_parquet(out / f"forecasts-{label}.parquet")) == 200
        assert (out / f"forecast-{label}.png").exists()
    # The frozen GRU forecasts the last value: it scores exactly as the baseline does.
    by = scores[scores["series"] == "*"].set_index(["model", "step"])
    assert by.loc[("frozen", 1), "mae"] == by.loc[("last value", 1), "mae"]


def test_input_is_a_file_or_a_topic_not_both_nor_neither(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "s.csv", *hourly(5))
    for args in ([str(data), "--topic", "t"], []):
        result = replay_cli(*args, "--out", str(tmp_path / "o"))
        assert result.exit_code == 2
        assert result.stderr.strip() == (
            "error: give either INPUT (a file or folder) or --topic, not both"
        )


def test_a_folder_of_csv_and_parquet_files_is_one_partition_and_series_each(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    csv_file(folder / "pump-a.csv", *hourly(120, seed=3))
    ts, values = hourly(100, seed=4)
    pd.DataFrame({"date": ts, "load": 1.0, "OT": [float(v) for v in values]}).to_parquet(
        folder / "pump-b.parquet"
    )
    out = tmp_path / "out"
    result = replay_cli(str(folder), "--config", str(config(tmp_path, MODEL)), "--out",
                        str(out), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    cols = doc["summary"]["columns"]
    assert cols["pump-b.parquet"]["time"] == "date" and cols["pump-b.parquet"]["value"] == "OT"
    fc = pd.read_parquet(out / "forecasts.parquet")
    assert fc.groupby("source")["series"].first().to_dict() == {
        "pump-a.csv": "pump-a", "pump-b.parquet": "pump-b"}  # fmt: skip
    assert fc.groupby("series")["offset"].max().to_dict() == {"pump-a": 119, "pump-b": 99}
    scores = pd.DataFrame(doc["scores"])
    assert set(scores["series"]) == {"*", "pump-a", "pump-b"}
    per = scores[(scores["model"] == "m") & (scores["step"] == 1)].set_index("series")
    n = per["n"]
    assert n["*"] == n["pump-a"] + n["pump-b"]
    pooled = per.loc["pump-a", "mae"] * n["pump-a"] + per.loc["pump-b", "mae"] * n["pump-b"]
    assert per.loc["*", "mae"] == pytest.approx(pooled / n["*"])


def test_events_polled_again_after_a_seek_back_are_skipped(tmp_path: Path) -> None:
    from pipelines.engine.decode import Decoder

    ts, values = irregular_rows()
    parsed = parse_file(csv_file(tmp_path / "s.csv", ts, values), Columns())
    tp = ("s.csv", 0)
    src = RecordedSource({tp: parsed.batch}, batch=52)
    task = PartitionTask("s.csv", 0, OnlineForecaster(LAST_VALUE), None, Decoder())
    task.add(src.poll(0)[tp])
    end = src.position(tp)
    batch, rejected = task.process()
    assert batch is not None and task.next_offset == end > 50
    assert [r.record.offset for r in rejected] == [45, 50]  # late, and no value
    src.seek(tp, 40)  # a source re-reading from an earlier offset
    task.add(src.poll(0)[tp])  # offsets 40 on: the ones before ``end`` are skipped
    assert task.backlog.chunks[0].offsets[0] == end and not task.backlog.rejected
    while not src.exhausted:
        task.add(src.poll(0)[tp])
    batch, _ = task.process()
    assert batch is not None and batch.offsets[0] == end and task.next_offset == len(ts)


def test_json_without_out_writes_nothing_and_without_json_the_report_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = csv_file(tmp_path / "s.csv", *hourly(60))
    cfg = config(tmp_path, LAST_VALUE)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    result = replay_cli(str(data), "--config", str(cfg), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["configs"][0]["forecasts"] is None
    assert list(work.iterdir()) == []
    result = replay_cli(str(data), "--config", str(cfg))  # the documented default folder
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in work.iterdir()) == ["replay-report"]
    assert (work / "replay-report" / "forecasts.parquet").is_file()


def test_a_topic_replay_reaches_kafka_with_the_service_client_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.kafka import topics
    from pipelines.kafka.options import consumer_options

    asked: list[topics.TopicRange] = []

    def read_topic(rng: topics.TopicRange, features: Any = ()) -> Any:
        asked.append(rng)
        msg = "stop here"
        raise topics.InputError(msg)

    monkeypatch.setattr(topics, "read_topic", read_topic)
    cfg = write_settings(tmp_path / "c.toml", {
        "model": MODEL, "kafka": {"api_version": "0.9", "client": {
            "security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
            "sasl_plain_username": "forecaster"}},
    })  # fmt: skip
    monkeypatch.setenv("FORECASTER_KAFKA__CLIENT__SASL_PLAIN_PASSWORD", "s3cret")
    result = replay_cli("--topic", "events", "--config", str(cfg), "--bootstrap", "k:9092",
                        "--from-offset", "5")  # fmt: skip
    assert result.exit_code == 2 and "stop here" in result.stderr
    [rng] = asked
    assert (rng.topic, rng.from_offset) == ("events", 5)
    opts = consumer_options(rng.kafka, group_id=None)
    assert opts["bootstrap_servers"] == ["k:9092"] and opts["api_version"] == (0, 9)
    assert opts["security_protocol"] == "SASL_SSL" and opts["sasl_plain_password"] == "s3cret"
    bad = write_settings(tmp_path / "b.toml", {"model": MODEL, "kafka": {"api_version": "x"}})
    result = replay_cli("--topic", "events", "--config", str(bad))
    assert result.exit_code == 2
    assert "api_version must be 'auto' or like '0.9'" in result.stderr and not asked[1:]


def test_a_replay_with_expert_aggregation_plots_the_pooled_weights_over_time(
    tmp_path: Path,
) -> None:
    from pipelines.replay.run import read_input

    # Noise around a level: the running means and medians beat the GRU's forecast of
    # changes, so the pooled weights move off the model alone they start from.
    ts, _ = hourly(3000)
    noise = 10 + np.random.default_rng(0).standard_normal(len(ts))
    data = csv_file(tmp_path / "pump.csv", ts, [f"{v:.6f}" for v in noise])
    files, _ = read_input(data, Columns())
    cfg = ForecasterConfig(**{**MODEL, "aggregation": "mlpoly", "seasons": (86400.0,)})
    run = run_loop(files, cfg, batch=500)
    hist = run.history
    assert hist.expert_names == OnlineForecaster(cfg).expert_names
    events = [n for n, _ in hist.expert_weights]
    assert events == sorted(events) and events[-1] == 3000 and len(events) == 6
    for _, w in hist.expert_weights:
        assert w.shape == (3, len(hist.expert_names))
        np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert hist.expert_weights[0][1][:, 0].tolist() == [1.0] * 3
    assert (hist.expert_weights[-1][1][:, 0] < 0.5).all(), hist.expert_weights[-1][1]
    out = tmp_path / "out"
    cfg_file = config(tmp_path, {**MODEL, "aggregation": "mlpoly", "seasons": [86400.0]})
    result = replay_cli(str(data), "--config", str(cfg_file), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "expert_weights.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "src='expert_weights.png'" in (out / "report.html").read_text()


def test_the_report_marks_where_each_retrain_started_by_its_reason(tmp_path: Path) -> None:
    from pipelines.replay.report import retrain_starts
    from pipelines.replay.run import read_input

    # Two files, two partitions: each model's retrains are placed on its own events' times.
    a = csv_file(tmp_path / "a.csv", *hourly(400, seed=1))
    b = csv_file(tmp_path / "b.csv", *hourly(250, seed=2))
    files = [f for path in (a, b) for f in read_input(path, Columns())[0]]
    run = run_loop(files, ForecasterConfig(**MODEL), batch=64)
    log = run.history.retrain_log
    fc = run.forecasts
    for source, n_events in (("a.csv", 400), ("b.csv", 250)):
        mine = [e for e in log if e["source"] == source]
        # first_retrain 60, then retrain_every 150: 60, 150, 300 and 60, 150.
        expected = [60.0, 150.0, 300.0][: 1 + n_events // 150]
        assert [e["started_at"] for e in mine] == expected
        row = fc.source.index(source)
        starts = retrain_starts(run, row)
        assert sorted(starts) == ["first", "schedule"]
        # The n-th event of an hourly file is n - 1 hours after its first.
        hours = 3600.0 * (np.array(expected) - 1)
        np.testing.assert_array_equal(starts["first"], fc.ts[row] + hours[:1])
        np.testing.assert_array_equal(starts["schedule"], fc.ts[row] + hours[1:])


def test_bench_replay_sets_each_panel_stream_beside_snarimax(tmp_path: Path) -> None:
    from pipelines.bench.replay import run_panel

    # A NAB-like file and an ETTh1-like one (its target column is OT).
    nab = tmp_path / "NAB" / "x"
    nab.mkdir(parents=True)
    csv_file(nab / "a.csv", *hourly(300, seed=1))
    (tmp_path / "ETDataset").mkdir()
    ts, values = hourly(200, seed=2)
    csv_file(tmp_path / "ETDataset" / "ETTh1.csv", ts, [f"{v},1.0" for v in values],
             header="date,OT,HUFL")  # fmt: skip
    cfg = ForecasterConfig(**{**MODEL, "horizon": 3})
    seen: list[str] = []
    p = run_panel(cfg, ["NAB/x/a.csv", "ETDataset/ETTh1.csv"], tmp_path, progress=seen.append)
    assert seen == ["NAB/x/a.csv", "ETDataset/ETTh1.csv"]
    assert [(r["stream"], r["events"]) for r in p["rows"]] == [("a", 300), ("ETTh1", 200)]
    for r in p["rows"]:
        assert r["ratio"] == pytest.approx(r["events_per_second"] / r["river_events_per_second"])
        assert r["retrains"] >= 1
    assert p["events"] == 500
    total = sum(r["seconds"] for r in p["rows"]), sum(r["river_seconds"] for r in p["rows"])
    assert p["ratio"] == pytest.approx(total[1] / total[0])
    assert p["events_per_second"] == pytest.approx(500 / total[0])
    assert p["streams_at_or_above_1x"] == sum(r["ratio"] >= 1.0 for r in p["rows"])
