"""The service's settings: one TOML file, environment variables on top.

Every table but ``[model]`` is validated here (pydantic: types are checked and coerced,
and an error names the key path). ``[model]`` is a :class:`forecaster.ForecasterConfig`,
and ``init``: the model file partitions without a checkpoint start from.
An environment variable ``FORECASTER_<TABLE>__<KEY>`` overrides ``[table] key`` (for
secrets and containers): ``FORECASTER_KAFKA__BOOTSTRAP_SERVERS=broker:9092``. The value
is text, converted to the key's type (``64``, ``2.5``, ``true``; ``0.9`` stays the text
"0.9" for ``api_version``); an array or table is written as TOML (``["a", "b"]``). Keys
with no declared type, in ``[model]`` and ``[kafka.client]``, read the value as TOML when
it parses as one (quote it to keep text: ``'"0123"'``). Unknown keys, in the file or the
environment, are errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from forecaster import ForecasterConfig
from pipelines.configs import INIT, ConfigFile, apply_env, model_keys, read_toml
from pipelines.kafka.options import KafkaSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicSettings(_Section):
    """Where events come from and where forecasts, anomalies and rejected records go."""

    input: str = "sensor-events"
    output: str = "sensor-forecasts"
    dead_letter: str = "sensor-events-dlq"
    anomalies: str = ""  # flagged events only; "" writes none


class CheckpointSettings(_Section):
    """Model state and partition offsets, saved together."""

    dir: Path = Path("state/checkpoints")
    every_events: int = Field(20_000, ge=1)
    every_seconds: float = Field(30.0, gt=0)
    # A checkpoint that cannot be used (damaged, another model config or format): "fail"
    # stops naming the file; "start_fresh" sets it aside as <file>.bad-N (never
    # overwritten) and starts that partition with a new model from its committed offset.
    on_error: Literal["fail", "start_fresh"] = "fail"
    # "folder": files in ``dir`` (shared by every instance: NFS, a ReadWriteMany volume);
    # "kafka": records in ``topic`` on the [kafka] cluster (compacted), no shared disk.
    store: Literal["folder", "kafka"] = "folder"
    topic: str = "forecaster-state"

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        # Kafka's own rule for topic names.
        if (
            not value
            or len(value) > 249
            or value in {".", ".."}
            or not all(c.isascii() and (c.isalnum() or c in "._-") for c in value)
        ):
            msg = f"topic must be 1-249 of the characters a-z A-Z 0-9 . _ -, got {value!r}"
            raise ValueError(msg)
        return value


class SinkSettings(_Section):
    """Extra local copies of the forecasts (the Kafka topic is always written)."""

    jsonl: Path | None = None
    csv: Path | None = None


class ServiceSettings(_Section):
    """The run loop."""

    # BLAS threads for retraining; the rest of the machine stays with the consumer.
    train_threads: int = Field(1, ge=1)
    print_forecasts: bool = False


MAX_FORECAST_SERIES = 50


class MetricsSettings(_Section):
    """The Prometheus endpoint (``/metrics``, ``/healthz``, ``/readyz``) and what it shows.

    ``forecast_series`` is the allow-list of series whose latest value and forecasts are
    exported as gauges (a series id is a label only there, so the list is bounded);
    ``forecast_steps`` are the horizon steps exported for them (checked against the
    model's horizon when the service is built).

    Examples
    --------
    >>> MetricsSettings(forecast_steps=[1, 1])
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for MetricsSettings
    forecast_steps
      Value error, forecast_steps must be distinct integers >= 1, got [1, 1] ...
    """

    enabled: bool = True
    host: str = "127.0.0.1"  # loopback only; "0.0.0.0" in a container
    port: int = Field(9464, ge=0, le=65535)  # 0: any free port (logged, and on the service)
    forecast_series: list[str] = Field(default_factory=list)
    forecast_steps: list[int] = Field(default_factory=lambda: [1])

    @field_validator("forecast_series")
    @classmethod
    def _series(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_FORECAST_SERIES:
            msg = (f"forecast_series may list at most {MAX_FORECAST_SERIES} series (each is a "
                   f"label value), got {len(value)}")  # fmt: skip
            raise ValueError(msg)
        if len(set(value)) != len(value) or not all(value):
            msg = f"forecast_series must be distinct non-empty ids, got {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("forecast_steps")
    @classmethod
    def _steps(cls, value: list[int]) -> list[int]:
        if not value or len(set(value)) != len(value) or min(value) < 1:
            msg = f"forecast_steps must be distinct integers >= 1, got {value!r}"
            raise ValueError(msg)
        return value

    def check_horizon(self, horizon: int) -> None:
        """Raise ``ValueError`` naming a forecast step beyond the model's ``horizon``.

        Examples
        --------
        >>> MetricsSettings(forecast_steps=[1, 24]).check_horizon(12)
        Traceback (most recent call last):
        ...
        ValueError: [metrics] forecast_steps: step 24 is beyond the model's horizon (12)
        """
        for step in self.forecast_steps:
            if step > horizon:
                msg = f"[metrics] forecast_steps: step {step} is beyond the model's horizon "
                msg += f"({horizon})"
                raise ValueError(msg)


class Settings(_Section):
    """The whole file."""

    model: dict[str, Any] = Field(default_factory=dict)
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    sink: SinkSettings = SinkSettings()
    service: ServiceSettings = ServiceSettings()
    metrics: MetricsSettings = MetricsSettings()

    def forecaster_config(self) -> ForecasterConfig:
        """The ``[model]`` table as a validated :class:`ForecasterConfig` (``init`` aside)."""
        return ForecasterConfig.from_dict(model_keys(self.model))

    @property
    def model_init(self) -> Path | None:
        """``[model] init``: the model file partitions without a checkpoint start from.

        >>> Settings(model={"init": "model.fcm"}).model_init
        PosixPath('model.fcm')
        """
        init = self.model.get(INIT)
        if init is not None and (not isinstance(init, str) or not init):
            msg = f"init must be the path of a model file, got {init!r}"
            raise ValueError(msg)
        return Path(init) if init else None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        text = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{where}: {text}")
    return "; ".join(lines)


def load_settings(path: ConfigFile | None, env: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (None: defaults only) with ``env`` (default ``os.environ``) on top.

    Raises ``ValueError`` naming the file and the bad key.
    """
    env = os.environ if env is None else env
    doc = read_toml(path) if path is not None else {}
    where = str(path) if path is not None else "settings"
    try:
        settings = Settings.model_validate(apply_env(doc, env))
        settings.forecaster_config()
        _ = settings.model_init
    except ValidationError as exc:
        msg = f"{where}: {_describe(exc)}"
        raise ValueError(msg) from exc
    except ValueError as exc:
        msg = f"{where}: [model] {exc}"
        raise ValueError(msg) from exc
    return settings
