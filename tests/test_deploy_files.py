"""deploy/: every `smpc-ehr` command line in the systemd units, the Dockerfile and the
compose file is accepted by the CLI's parser, and the configs it names load (as
`config check` loads them, without keys or data) and are for the role that runs them.
The slow tier builds and runs the compose file where a Docker daemon answers."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from smpc_ehr.cli import build_parser
from smpc_ehr.cli.config_check import load_any_config
from smpc_ehr.config.party import load_party_config
from smpc_ehr.config.roster import load_roster
from smpc_ehr.study.template import load_template
from tests.federations import PROTOCOLS, ROOT

DEPLOY = ROOT / "deploy"
CONFIG = DEPLOY / "config"
SITE_CONFIG = "/etc/smpc-ehr/config/"
"""Where the units, the image and the compose file find the config folder."""
SITE_ALIASES = {"party.toml": "hospital-a.toml"}
"""The Dockerfile's default names a site's one party config `party.toml`."""
PROCESS_ROLES = ("party", "coordinator", "dealer")


def local_config(path: str) -> Path:
    """The example config behind a path in a deployment file."""
    assert path.startswith(SITE_CONFIG), f"{path} is not under {SITE_CONFIG}"
    name = path.removeprefix(SITE_CONFIG)
    return CONFIG / SITE_ALIASES.get(name, name)


def check_command(argv: list[str], where: str) -> None:
    """`argv` (program first) parses, and the config it names loads for its role."""
    assert Path(argv[0]).name == "smpc-ehr", f"{where}: runs {argv[0]}, not smpc-ehr"
    args = build_parser().parse_args(argv[1:])  # argparse exits on a line it refuses
    named = getattr(args, "config", None) or getattr(args, "file", None)
    named = named or getattr(args, "roster", None)
    assert named, f"{where}: {shlex.join(argv)} names no config"
    path = local_config(named)
    if path.name == "roster.toml":
        assert load_roster(path).parties, where
        return
    role, _config = load_any_config(path, check_files=False)
    if args.command in PROCESS_ROLES:
        assert role == args.command, f"{where}: `{args.command}` given a {role} config"
    if args.command == "templates":
        assert role == "analyst", where


def unit_commands(unit: Path) -> list[list[str]]:
    """ExecStartPre/ExecStart lines of a unit; a template unit's %i is a party id."""
    lines = []
    for line in unit.read_text().splitlines():
        key, _, value = line.partition("=")
        if key in ("ExecStart", "ExecStartPre"):
            lines.append(shlex.split(value.replace("%i", "hospital-b")))
    return lines


def dockerfile_command() -> list[str]:
    """ENTRYPOINT + CMD of the Dockerfile (exec form, JSON arrays)."""
    found: dict[str, list[str]] = {}
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        word, _, rest = line.partition(" ")
        if word in ("ENTRYPOINT", "CMD"):
            found[word] = json.loads(rest)
    return found["ENTRYPOINT"] + found["CMD"]


def compose() -> dict:
    yaml = pytest.importorskip("yaml", reason="pyyaml (the crypten extra) reads compose.yaml")
    loaded: dict = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_systemd_units() -> None:
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert {u.name for u in units} == {
        "smpc-ehr-party@.service",
        "smpc-ehr-coordinator.service",
        "smpc-ehr-dealer.service",
    }
    for unit in units:
        commands = unit_commands(unit)
        assert [c[1] for c in commands] == ["config", unit.stem.split("-")[2].rstrip("@")]
        for argv in commands:
            check_command(argv, unit.name)


def test_dockerfile() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    assert "--no-deps crypten==" in text
    check_command(dockerfile_command(), "Dockerfile")


def test_compose_services() -> None:
    services = compose()["services"]
    roster = load_roster(CONFIG / "roster.toml")
    expected = {"certs", "synth", "analyst", "coordinator", "dealer", *roster.party_ids()}
    assert set(services) == expected
    for name, service in services.items():
        assert (DEPLOY / service["build"]["dockerfile"].removeprefix("deploy/")).is_file()
        check_command(["smpc-ehr", *service["command"]], f"compose service {name}")
        if name in PROCESS_ROLES or name in roster.party_ids():
            # The service name is the host name the roster gives that member.
            assert roster.member(name).host == name
    for party in roster.party_ids():
        config = load_party_config(CONFIG / f"{party}.toml", check_files=False)
        assert config.id == party
        mounts = [v.split(":")[1] for v in services[party]["volumes"]]
        assert str(config.data.parent) in mounts and str(config.state.parent) in mounts


def test_pinned_hashes_are_todays_templates() -> None:
    current = {load_template(p).canonical_hash: p.name for p in PROTOCOLS.glob("*.toml")}
    for path in sorted(CONFIG.glob("hospital-*.toml")):
        approved = load_party_config(path, check_files=False).policy.approved_hashes
        stale = sorted(h for h in approved if h not in current)
        assert not stale, (
            f"{path.name} approves hashes no template has (re-pin with "
            f"`smpc-ehr protocol show`): {stale}"
        )
        assert len(approved) == 10


def test_the_check_refuses_wrong_lines() -> None:
    """The checks above can fail: an unknown option, a role given another's config."""
    with pytest.raises(SystemExit):
        check_command(["smpc-ehr", "party", "--config-file", SITE_CONFIG + "hospital-a.toml"], "x")
    with pytest.raises(AssertionError, match="given a party config"):
        check_command(["smpc-ehr", "coordinator", "--config", SITE_CONFIG + "party.toml"], "x")
    with pytest.raises(AssertionError, match="not smpc-ehr"):
        check_command(["python", "-m", "smpc_ehr"], "x")


def _docker_daemon() -> str | None:
    """Why the compose file cannot be run here, or None if it can."""
    if shutil.which("docker") is None:
        return "no docker command on this machine"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        return f"no Docker daemon answers: {info.stderr.strip().splitlines()[-1:]}"
    return None


def test_compose_builds_and_runs() -> None:
    """Slow tier: build the image, make certificates and data, start the federation and
    ask for health from the analyst's and a hospital's side; removes everything after."""
    reason = _docker_daemon()
    if reason:
        pytest.skip(f"compose file not run: {reason}")
    project = ["docker", "compose", "-p", "smpc-ehr-test", "-f", str(DEPLOY / "compose.yaml")]

    def run(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*project, *args], capture_output=True, text=True, timeout=timeout)

    try:
        assert run("build").returncode == 0
        assert run("run", "--rm", "certs").returncode == 0
        assert run("run", "--rm", "synth").returncode == 0
        assert run("up", "-d").returncode == 0
        for service in ("analyst", "hospital-a"):
            health = ["health", "--config", f"{SITE_CONFIG}{service}.toml", "--timeout", "10"]
            for _attempt in range(12):  # the parties load their data first
                answer = run("run", "--rm", service, *health, timeout=300)
                if answer.returncode == 0:
                    break
            assert answer.returncode == 0, answer.stdout + answer.stderr
    finally:
        run("down", "-v", timeout=300)
