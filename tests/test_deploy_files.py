"""The scaled set-up's files, checked by reading them (no Docker engine here): the image keeps its weights
in the data volume and fails to build without them, and no service starts before what it needs is healthy."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SERVERS = {"postgres", "qdrant-1", "qdrant-2", "qdrant-3"}


def _dockerfile_steps() -> list[str]:
    lines, joined = [], ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        joined += line.rstrip("\\") + " "
        if not line.endswith("\\"):
            lines.append(joined.strip())
            joined = ""
    return lines


def test_weights_are_installed_into_the_data_folder_and_a_failure_fails_the_build():
    steps = _dockerfile_steps()
    home = next(i for i, s in enumerate(steps) if s.startswith("ENV VISLINK_HOME=/data"))
    weights = next(i for i, s in enumerate(steps) if "vislink weights install" in s)
    assert home < weights, "VISLINK_HOME must be set before the weights are installed, or they miss the volume"
    assert "|| true" not in steps[weights], "a failed weights install must fail the build"


def test_the_image_installs_vislink_as_a_package_not_editable():
    installs = [s for s in _dockerfile_steps() if "pip install" in s]
    assert installs and all(" -e " not in s and "--editable" not in s for s in installs)
    assert any(s.startswith("COPY migrations") for s in _dockerfile_steps())


def test_services_wait_for_healthy_servers_and_the_migrated_schema():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in SERVERS:
        assert "healthcheck" in services[name], f"{name} needs a healthcheck for depends_on to wait on"
    vislink_services = {n for n, s in services.items() if s.get("image") == "vislink:latest"}
    assert {"migrate", "ui", "worker", "evaluate"} <= vislink_services
    for name in vislink_services:
        deps = services[name].get("depends_on")
        assert isinstance(deps, dict), f"{name}: depends_on must say the condition it waits for"
        for server in SERVERS:
            assert deps.get(server, {}).get("condition") == "service_healthy", (name, server)
        if name != "migrate":
            assert deps["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["command"] == "vislink db upgrade"
    assert "db upgrade" not in services["ui"]["command"], "the schema is upgraded once, by migrate"
