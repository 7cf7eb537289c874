from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest

from pipelines.bench.datasets import data_root
from pipelines.service.feed import feed, load_recordings
from tests.conftest import needs_compiled_speed

ROOT = Path(__file__).resolve().parents[3]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_recordings_interleave_by_progress_and_keep_their_times(tmp_path: Path) -> None:
    a = write(tmp_path / "pump.csv", "timestamp,value\n2024-01-01 00:00:00,1\n"
              "2024-01-01 00:05:00,2\n2024-01-01 00:10:00,3\n2024-01-01 00:15:00,4\n")  # fmt: skip
    b = write(tmp_path / "fan.csv", "timestamp,value\n2020-06-01T00:00:00Z,10.5\n"
              "2020-06-01T01:00:00Z,11.5\n")  # fmt: skip
    events = load_recordings([a, b])
    assert events.series == ["pump", "fan", "pump", "pump", "fan", "pump"]
    assert events.values == [1.0, 10.5, 2.0, 3.0, 11.5, 4.0]
    assert events.ts_ms[:2] == [1704067200000, 1590969600000]
    key, value = events.messages(1, 2)[0]
    assert key == b"fan"
    assert orjson.loads(value) == {"series": "fan", "ts": 1590969600000, "value": 10.5}
    assert len(load_recordings([a, b], limit=3)) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,reading\n1,2\n", "needs the columns timestamp and value"),
        ("timestamp,value\n2024-01-01,abc\n", r"row 1 \(line 2\), column 'value': 'abc' is not a"),
        ("timestamp,value\nnot a date,1\n", "not a date"),
        ("", "the file is empty"),
    ],
)
def test_a_bad_recording_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=message) as info:
        load_recordings([path])
    assert str(path) in str(info.value)


def test_feed_keeps_to_the_rate_on_an_injected_clock(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "timestamp,value\n" + "".join(
        f"2024-01-01 00:{m:02d}:00,{m}\n" for m in range(50)))  # fmt: skip
    sent: list[bytes] = []
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    n = feed(lambda k, v: sent.append(v), lambda: None, load_recordings([path]), rate=100.0,
             clock=lambda: now[0], sleep=sleep)  # fmt: skip
    assert n == len(sent) == 50
    assert now[0] == pytest.approx(0.5)  # 50 events at 100/s
    assert len(sleeps) == 10  # in steps of rate / 20 events


@pytest.mark.kafka
@needs_compiled_speed
def test_the_demo_runs_end_to_end(tmp_path: Path) -> None:
    if not (data_root() / "NAB").is_dir():
        pytest.fail(f"the demo needs the recordings in {data_root()}")
    env = {**os.environ, "FORECASTER_DATA": str(data_root())}
    demo = [ROOT / "scripts" / "demo", "--limit", "3000", "--rate", "3000"]
    out = subprocess.run(demo, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "fed 3000 events of 5 series" in out.stdout
    assert "stopped: 3000 events, 3000 forecasts, rejected: none" in out.stdout
    # Live forecasts were printed: a line per series shown, named, with its +12 forecast.
    # Which series the first print shows depends on which partition's batch comes first
    # (nyc_taxi has a partition of its own), and a run this short may print only once.
    names = ("machine_temperature_system_failure", "ambient_temperature_system_failure",
             "nyc_taxi", "cpu_utilization_asg_misconfiguration",
             "ec2_request_latency_system_failure")  # fmt: skip
    live = [ln for ln in out.stdout.splitlines() if "+12:" in ln]
    assert live and all(ln.startswith(names) for ln in live), out.stdout[-2000:]
    assert "metrics: http://127.0.0.1:" in out.stdout  # where to see them (issue 5.5)
    lines = (ROOT / ".cache" / "demo" / "forecasts.jsonl").read_bytes().splitlines()
    assert len(lines) == 3000
