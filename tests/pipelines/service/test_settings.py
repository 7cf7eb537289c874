from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.kafka.options import client_options
from pipelines.service.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "config" / "sensors.toml"


def test_the_shipped_config_loads_and_documents_every_service_key() -> None:
    settings = load_settings(SHIPPED, env={})
    assert settings.forecaster_config().loss == "mae"
    text = SHIPPED.read_text()
    for name, section in Settings.model_fields.items():
        if name == "model":
            continue
        assert f"[{name}]" in text, name
        body = text.split(f"[{name}]", 1)[1].split("\n[", 1)[0]
        for key in section.annotation.model_fields:  # type: ignore[union-attr]
            assert re.search(rf"^#? ?{key} =", body, re.M), f"[{name}] {key} is not documented"


def test_environment_overrides_file_values(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[kafka]\nbootstrap_servers = "a:1"\nmax_poll_records = 10\n')
    env = {
        "FORECASTER_KAFKA__BOOTSTRAP_SERVERS": "broker-1:9093,broker-2:9093",
        "FORECASTER_KAFKA__MAX_POLL_RECORDS": "64",
        "FORECASTER_CHECKPOINT__EVERY_SECONDS": "2.5",
        "FORECASTER_MODEL__HORIZON": "6",
        "FORECASTER_KAFKA__CLIENT__SASL_PLAIN_PASSWORD": "s3cret",
        "UNRELATED": "1",
    }
    s = load_settings(path, env=env)
    assert s.kafka.bootstrap_servers == "broker-1:9093,broker-2:9093"
    assert s.kafka.max_poll_records == 64
    assert s.checkpoint.every_seconds == 2.5
    assert s.forecaster_config().horizon == 6
    assert s.kafka.client == {"sasl_plain_password": "s3cret"}


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[kafka]\nbootstrap = 'x'\n", {}, "kafka.bootstrap: unknown key"),
        ("", {"FORECASTER_TOPICS__INPT": "x"}, "topics.inpt: unknown key"),
        ("[nonsense]\na = 1\n", {}, "nonsense: unknown key"),
        ("[kafka]\nmax_poll_records = 0\n", {}, "kafka.max_poll_records"),
        ("[kafka]\napi_version = 'new'\n", {}, "api_version must be 'auto' or like '0.9'"),
        ("[kafka]\nclient = { sasl_passwrd = 'x' }\n", {}, "'sasl_passwrd' is not a kafka"),
        ("[kafka]\nclient = { group_id = 'x' }\n", {}, "'group_id' is set by the service"),
        ("[model]\nhidden_size = 0\n", {}, "[model] hidden_size must be"),
        ("[kafka\n", {}, "s.toml"),
        ("[checkpoint]\nstore = 'redis'\n", {}, "checkpoint.store: Input should be 'folder'"),
        ("", {"FORECASTER_CHECKPOINT__TOPIC": "state/x"}, "got 'state/x'"),
    ],
)
def test_bad_settings_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        load_settings(path, env=env)
    assert str(path) in str(info.value)


def test_security_settings_reach_kafka_python_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        "[kafka]\nbootstrap_servers = 'b1:9093,b2:9093'\napi_version = '3.7.0'\n"
        "client = { security_protocol = 'SASL_SSL', sasl_mechanism = 'SCRAM-SHA-512', "
        "sasl_plain_username = 'svc', ssl_cafile = '/etc/ca.pem', ssl_check_hostname = true }\n"
    )
    s = load_settings(path, env={"FORECASTER_KAFKA__CLIENT__SASL_PLAIN_PASSWORD": "pw"})
    assert client_options(s.kafka) == {
        "bootstrap_servers": ["b1:9093", "b2:9093"],
        "api_version": (3, 7, 0),
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc",
        "sasl_plain_password": "pw",
        "ssl_cafile": "/etc/ca.pem",
        "ssl_check_hostname": True,
    }


def test_api_version_auto_lets_the_client_ask_the_broker() -> None:
    s = load_settings(None, env={})
    assert "api_version" not in client_options(s.kafka)
    s = load_settings(None, env={"FORECASTER_KAFKA__API_VERSION": "0.9"})
    assert client_options(s.kafka)["api_version"] == (0, 9)


def test_environment_values_take_the_type_of_their_key() -> None:
    env = {
        "FORECASTER_KAFKA__API_VERSION": "0.10",  # text, not the number 0.1
        "FORECASTER_SERVICE__PRINT_FORECASTS": "true",
        "FORECASTER_MODEL__CALENDAR": '["hour", "weekday"]',
        "FORECASTER_KAFKA__CLIENT__SSL_CHECK_HOSTNAME": "false",
        "FORECASTER_KAFKA__CLIENT__SASL_PLAIN_PASSWORD": '"0123"',
    }
    s = load_settings(None, env=env)
    assert s.kafka.api_version == "0.10"
    assert s.service.print_forecasts is True
    assert s.forecaster_config().calendar == ("hour", "weekday")
    assert s.kafka.client == {"ssl_check_hostname": False, "sasl_plain_password": "0123"}
