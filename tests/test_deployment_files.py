"""The compose file, Dockerfile and Prometheus config agree with the code.

No Docker engine runs where the suite runs, so these checks are what stands
between a renamed setting or command and a compose stack that silently ignores
it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cefpipe.cli import build_parser
from cefpipe.settings import Settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
CEFPIPE_SERVICES = ("topics", "emulator", "ingest", "enrich", "sink")
METRICS_PORTS = {"ingest": 9101, "enrich": 9102, "sink": 9103, "emulator": 9104}


def cli_commands() -> set[str]:
    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.dest == "command")
    return set(subparsers.choices)  # type: ignore[arg-type]


def test_every_component_and_the_broker_and_prometheus_are_services() -> None:
    assert set(SERVICES) == {*CEFPIPE_SERVICES, "kafka", "prometheus"}


@pytest.mark.parametrize("service", CEFPIPE_SERVICES)
def test_each_cefpipe_service_runs_a_real_command(service: str) -> None:
    spec = SERVICES[service]
    assert spec["image"] == "cefpipe:local"
    assert spec["command"][0] in cli_commands()
    assert spec["command"][0] == service


@pytest.mark.parametrize("service", CEFPIPE_SERVICES)
def test_each_setting_the_compose_file_gives_is_one_the_code_reads(
    service: str,
) -> None:
    known = Settings.variable_names()
    given = set(SERVICES[service].get("environment", {}))
    assert given - known == set()


def test_compose_settings_parse() -> None:
    for service in CEFPIPE_SERVICES:
        env = {k: str(v) for k, v in SERVICES[service]["environment"].items()}
        Settings.from_env(env)


@pytest.mark.parametrize("service", ["enrich", "sink"])
def test_workers_can_scale_out(service: str) -> None:
    spec = SERVICES[service]
    assert "container_name" not in spec
    assert "ports" not in spec


def test_ingest_publishes_syslog_on_514_over_tcp_and_udp() -> None:
    ingest = SERVICES["ingest"]
    assert set(ingest["ports"]) == {"514:514/tcp", "514:514/udp"}
    assert str(ingest["environment"]["SYSLOG_PORT"]) == "514"
    assert ingest["environment"]["SYSLOG_BIND_HOST"] == "0.0.0.0"


def test_kafka_runs_kraft_with_a_healthcheck_that_talks_kafka() -> None:
    kafka = SERVICES["kafka"]
    assert kafka["image"].startswith("apache/kafka:4.")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])
    bootstrap = SERVICES["ingest"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert bootstrap in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def test_topics_are_created_once_before_the_workers_start() -> None:
    topics = SERVICES["topics"]
    assert topics["restart"] == "no"
    assert topics["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    for service in ("ingest", "enrich", "sink"):
        depends = SERVICES[service]["depends_on"]
        assert depends["topics"] == {"condition": "service_completed_successfully"}


def test_sink_trusts_the_emulator_it_reaches() -> None:
    settings = Settings.from_env(
        {k: str(v) for k, v in SERVICES["sink"]["environment"].items()}
    )
    assert settings.sink.endpoint == "https://emulator:8443"
    emulator_names = SERVICES["emulator"]["environment"]["EMULATOR_CERT_HOSTNAMES"]
    assert "emulator" in emulator_names.split(",")
    shared = {v.split(":")[0] for v in SERVICES["emulator"]["volumes"]}
    assert shared & {v.split(":")[0] for v in SERVICES["sink"]["volumes"]}


def test_prometheus_scrapes_every_replica_of_every_component() -> None:
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    scraped = {
        target["names"][0]: target["port"]
        for job in config["scrape_configs"]
        for target in job["dns_sd_configs"]
    }
    assert scraped == METRICS_PORTS
    defaults = Settings.from_env({})
    assert defaults.ingest.metrics_port == METRICS_PORTS["ingest"]
    assert defaults.enrich.metrics_port == METRICS_PORTS["enrich"]
    assert defaults.sink.metrics_port == METRICS_PORTS["sink"]
    assert defaults.emulator.metrics_port == METRICS_PORTS["emulator"]
    for service, port in METRICS_PORTS.items():
        spec = SERVICES[service]
        assert str(port) in spec["expose"]
        assert f":{port}/healthz" in " ".join(spec["healthcheck"]["test"])


def test_dockerfile_installs_the_package_and_runs_the_cli() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["cefpipe"]' in dockerfile
    for package in ("cefpipe", "ingest", "enrich", "sink", "emulator"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme
    assert "make test" in readme
    assert (REPO / ".ci" / "run").read_text().strip().endswith("make test")
