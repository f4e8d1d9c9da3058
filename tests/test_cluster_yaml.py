"""The Ray cluster-launcher configs (cluster.yaml for AWS, cluster-onprem.yaml for machines you own)
are valid for Ray 2.60, install pinned versions on every node and use token authentication.

Everything here runs offline: Ray's own schema (ray/autoscaler/ray-schema.json), Ray's own config
preparation (``prepare_config``, which also applies the ``local`` provider's rules), and the start
commands run through bash with a stand-in ``ray`` to see the environment that ``ray start`` gets.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import click
import jsonschema
import pytest
import ray.autoscaler
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from ray.autoscaler._private.util import prepare_config, validate_config, with_envs, with_head_node_ip

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["cluster.yaml", "cluster-onprem.yaml"]
CONSTRAINTS = "constraints.txt"
TOKEN_PATH_SUFFIX = ".ray/auth_token"  # Ray's default token file, relative to the home directory


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


@pytest.fixture(scope="module")
def raw():
    return _load("cluster.yaml")


@pytest.fixture(scope="module")
def onprem():
    return _load("cluster-onprem.yaml")


@pytest.fixture(scope="module")
def ray_schema():
    path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    return json.loads(path.read_text())


def _pins() -> dict[str, tuple[str, Requirement]]:
    """canonical name -> (pinned version, requirement) of every line of constraints.txt."""
    pins: dict[str, tuple[str, Requirement]] = {}
    for n, line in enumerate((ROOT / CONSTRAINTS).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, (
            f"{CONSTRAINTS}:{n}: {line!r} is not an exact pin (name==version)")
        assert not req.extras and req.marker is None and req.url is None, f"{CONSTRAINTS}:{n}: {line!r}"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{CONSTRAINTS}:{n}: {req.name} pinned twice"
        pins[name] = (specs[0].version, req)
    return pins


def _runtime_requirements() -> list[Requirement]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [Requirement(d) for d in pyproject["project"]["dependencies"]]


# ----------------------------------------------------------------------------- schema

@pytest.mark.parametrize("name", CONFIGS)
def test_config_validates_with_rays_json_schema(name, ray_schema):
    """The file as written, and as Ray prepares it for `ray up`, passes Ray's own schema."""
    cfg = _load(name)
    jsonschema.validate(cfg, ray_schema)
    prepared = prepare_config(copy.deepcopy(cfg))
    validate_config(prepared)
    jsonschema.validate(prepared, ray_schema)


def test_cluster_yaml_is_aws(raw):
    assert prepare_config(copy.deepcopy(raw))["provider"]["type"] == "aws"


def test_cluster_yaml_has_cpu_head_and_autoscaling_gpu_workers(raw):
    types = raw["available_node_types"]
    head = types[raw["head_node_type"]]
    assert not head["node_config"]["InstanceType"].startswith(("g", "p"))  # a CPU machine
    workers = [t for n, t in types.items() if n != raw["head_node_type"]]
    assert len(workers) == 1
    gpu = workers[0]
    assert gpu["node_config"]["InstanceType"].startswith(("g", "p"))
    assert gpu["min_workers"] == 0 and gpu["max_workers"] >= 1


def test_broken_cluster_yaml_is_rejected(raw):
    bad = copy.deepcopy(raw)
    bad["available_node_types"]["gpu_worker"]["min_workers"] = "zero"
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(bad))


# ----------------------------------------------------------------------------- on-prem (local provider)

def test_onprem_uses_the_local_provider_without_node_types(onprem):
    provider = onprem["provider"]
    assert provider["type"] == "local"
    assert isinstance(provider["head_ip"], str) and provider["head_ip"]
    assert provider["worker_ips"] and all(isinstance(ip, str) and ip for ip in provider["worker_ips"])
    assert onprem["auth"]["ssh_user"] and onprem["auth"]["ssh_private_key"]
    for field in ("available_node_types", "head_node_type", "head_node", "worker_nodes"):
        assert field not in onprem, f"the local provider builds its own node type; drop {field}"
    # Ray's preparation turns it into its single internal node type, with every listed worker.
    prepared = prepare_config(copy.deepcopy(onprem))
    assert list(prepared["available_node_types"]) == ["local.cluster.node"]
    node_type = prepared["available_node_types"]["local.cluster.node"]
    assert node_type["min_workers"] == node_type["max_workers"] == len(provider["worker_ips"])


def test_local_provider_rejects_available_node_types(onprem):
    """What Ray 2.60 does with the AWS-style layout on the local provider: it refuses it."""
    bad = copy.deepcopy(onprem)
    bad["available_node_types"] = {"head": {"node_config": {}, "resources": {}}}
    bad["head_node_type"] = "head"
    with pytest.raises(click.ClickException, match="available_node_types"):
        prepare_config(bad)


# ----------------------------------------------------------------------------- start commands

def _run_start(commands: list[str], tmp_path: Path, *, head: bool) -> list[dict[str, str]]:
    """Runs start commands the way the launcher does (its env prefixes, bash) with a stand-in
    ``ray`` (on PATH and at ~/avtune-venv/bin/ray) that records its arguments and environment."""
    home = tmp_path / "home"
    log = tmp_path / "ray_calls.jsonl"
    fake = tmp_path / "bin" / "ray"
    fake.parent.mkdir(parents=True, exist_ok=True)
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    keys = ('RAY_AUTH_MODE', 'RAY_enable_autoscaler_v2')\n"
        "    call = {'args': sys.argv[1:], **{k: os.environ.get(k) for k in keys}}\n"
        "    f.write(json.dumps(call) + '\\n')\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    venv_bin = home / "avtune-venv" / "bin"
    venv_bin.mkdir(parents=True, exist_ok=True)
    (venv_bin / "ray").symlink_to(fake)
    cmds = with_head_node_ip(commands, "127.0.0.1")
    if head:
        # What `ray up` prefixes to the head's start commands in Ray 2.60 (autoscaler v2 default).
        cmds = with_envs(cmds, {"RAY_enable_autoscaler_v2": "1", "RAY_CLOUD_INSTANCE_ID": "head",
                                "RAY_NODE_TYPE_NAME": "head"})
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), PATH=f"{fake.parent}{os.pathsep}{env.get('PATH', '')}")
    for cmd in cmds:
        subprocess.run(["bash", "-c", cmd], env=env, check=True, timeout=60,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    starts = [c for c in calls if c["args"][:1] == ["start"]]
    assert len(starts) == 1, calls
    return starts


@pytest.mark.parametrize("name", CONFIGS)
def test_every_ray_start_uses_token_auth(name, tmp_path):
    cfg = _load(name)
    head = _run_start(cfg["head_start_ray_commands"], tmp_path / "head", head=True)[0]
    worker = _run_start(cfg["worker_start_ray_commands"], tmp_path / "worker", head=False)[0]
    assert head["RAY_AUTH_MODE"] == "token"
    assert worker["RAY_AUTH_MODE"] == "token"
    assert "--head" in head["args"] and "--port=6379" in head["args"]
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head["args"]
    assert "--address=127.0.0.1:6379" in worker["args"]


@pytest.mark.parametrize("name", CONFIGS)
def test_dashboard_stays_on_loopback(name):
    head_start = " ".join(_load(name)["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start and "0.0.0.0" not in head_start


def test_onprem_head_runs_the_v1_autoscaler_despite_ray_up(onprem, tmp_path):
    head = _run_start(onprem["head_start_ray_commands"], tmp_path, head=True)[0]
    assert head["RAY_enable_autoscaler_v2"] == "0"


def test_aws_containers_get_token_auth_for_every_command(raw):
    """ray exec / ray submit / ray job submit inside the container see RAY_AUTH_MODE=token."""
    options = [shlex.split(o) for o in raw["docker"]["run_options"]]
    flat = [tok for opt in options for tok in opt]
    assert "--env=RAY_AUTH_MODE=token" in flat or any(
        a in ("-e", "--env") and b == "RAY_AUTH_MODE=token" for a, b in zip(flat, flat[1:]))


def test_onprem_shells_get_token_auth_and_the_venv(onprem):
    init = onprem["initialization_commands"]
    assert any("export RAY_AUTH_MODE=token" in c and "~/.bashrc" in c for c in init)
    assert any("source ~/avtune-venv/bin/activate" in c and "~/.bashrc" in c for c in init)


# ----------------------------------------------------------------------------- token

@pytest.mark.parametrize("name", CONFIGS)
def test_token_is_mounted_from_outside_the_repository(name):
    """Every node gets the operator's token at Ray's default path; it never lives in the repo."""
    mounts = _load(name)["file_mounts"]
    token = {remote: local for remote, local in mounts.items() if remote.endswith(TOKEN_PATH_SUFFIX)}
    assert len(token) == 1, mounts
    (local,) = token.values()
    local_path = Path(os.path.expanduser(local)).resolve()
    assert local.startswith("~/") and local_path.name == "auth_token"
    assert ROOT not in local_path.parents and local_path != ROOT


def _repo_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=ROOT, capture_output=True, check=True).stdout.decode()
    return [ROOT / p for p in out.split("\0") if p and (ROOT / p).is_file()]


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="ignore")
    except OSError:
        return ""


def test_no_auth_token_literal_in_the_repository():
    files = _repo_files()
    assert any(p.name == "cluster.yaml" for p in files)
    # A token handed to Ray as a literal (RAY_AUTH_TOKEN=..., auth_token: ...), not a reference.
    literal = re.compile(r"""RAY_AUTH_TOKEN\s*[=:]\s*["']?(?![$<{])[A-Za-z0-9_\-+/=]{16,}""")
    # Ray's generated tokens are 64 hex digits (secrets.token_hex(32)).
    hex64 = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
    cluster_files = {"cluster.yaml", "cluster-onprem.yaml", CONSTRAINTS, "cluster.md"}
    # The token(s) on this machine, if any: they must not have been copied into a file.
    secrets_here = {os.environ.get("RAY_AUTH_TOKEN", "").strip()}
    for candidate in (Path.home() / TOKEN_PATH_SUFFIX, os.environ.get("RAY_AUTH_TOKEN_PATH")):
        if candidate and Path(candidate).is_file():
            secrets_here.add(Path(candidate).read_text().strip())
    secrets_here = {s for s in secrets_here if len(s) >= 16}
    offenders = []
    for path in files:
        text = _text(path)
        rel = path.relative_to(ROOT)
        if literal.search(text):
            offenders.append(f"{rel}: RAY_AUTH_TOKEN literal")
        if path.name in cluster_files and hex64.search(text):
            offenders.append(f"{rel}: 64-hex-digit string (looks like a Ray token)")
        if any(s in text for s in secrets_here):
            offenders.append(f"{rel}: contains this machine's Ray auth token")  # value not shown
    assert not offenders, offenders


# ----------------------------------------------------------------------------- pinned installs

def _pip_installs(command: str) -> list[list[str]]:
    """The argument lists of the `pip install` invocations in a shell command line."""
    found = []
    for part in re.split(r"&&|\|\||;|\|", command):
        try:
            toks = shlex.split(part)
        except ValueError:
            continue
        for i, tok in enumerate(toks[:-1]):
            if (tok == "pip" or tok.endswith("/pip") or tok in ("pip3",)) and toks[i + 1] == "install":
                found.append(toks[i + 2:])
            elif tok == "pip" and i >= 1 and toks[i - 1] == "-m" and toks[i + 1] == "install":
                found.append(toks[i + 2:])
    return found


def _constraint_args(args: list[str]) -> list[str]:
    out = []
    for i, a in enumerate(args):
        if a in ("-c", "--constraint") and i + 1 < len(args):
            out.append(args[i + 1])
        elif a.startswith("--constraint="):
            out.append(a.split("=", 1)[1])
        elif a.startswith("-c") and len(a) > 2:
            out.append(a[2:])
    return out


def _node_setups(cfg: dict) -> dict[str, list[str]]:
    """node -> every command the launcher runs on it before `ray start` (as Ray prepares them)."""
    prepared = prepare_config(copy.deepcopy(cfg))
    init = prepared.get("initialization_commands", [])
    setups = {"head": init + prepared["head_setup_commands"]}
    for name, node_type in prepared["available_node_types"].items():
        if name == prepared["head_node_type"] and prepared["provider"]["type"] != "local":
            continue
        cmds = node_type.get("worker_setup_commands", prepared["worker_setup_commands"])
        setups[f"worker:{name}"] = node_type.get("initialization_commands", init) + cmds
    return setups


def _setup_violations(cfg: dict) -> list[str]:
    mount = next(remote for remote, local in cfg["file_mounts"].items() if local in (".", "./"))
    constraints = f"{mount.rstrip('/')}/{CONSTRAINTS}"
    problems = []
    for node, cmds in _node_setups(cfg).items():
        installs = [args for c in cmds for args in _pip_installs(c)]
        if not any("-e" in args and mount in args for args in installs):
            problems.append(f"{node}: does not install the project ({mount})")
        for args in installs:
            if constraints not in _constraint_args(args):
                problems.append(f"{node}: pip install {' '.join(args)} without -c {constraints}")
    return problems


@pytest.mark.parametrize("name", CONFIGS)
def test_every_node_installs_with_the_constraints_file(name):
    assert (ROOT / CONSTRAINTS).is_file()
    cfg = _load(name)
    assert _node_setups(cfg), "no nodes"
    assert _setup_violations(cfg) == []


def test_unconstrained_install_is_caught(raw, onprem):
    bad = copy.deepcopy(raw)
    bad["setup_commands"] = ["pip install --no-cache-dir -e /home/ray/avtune"]
    assert any("without -c" in p for p in _setup_violations(bad))
    bad = copy.deepcopy(onprem)
    bad["setup_commands"] = ["~/avtune-venv/bin/pip install -c ~/avtune/other.txt -e ~/avtune"]
    assert len(_setup_violations(bad)) == 2  # head and the worker type


def test_constraints_pin_every_runtime_dependency():
    pins = _pins()
    requirements = _runtime_requirements()
    assert requirements
    for req in requirements:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (pyproject.toml) is not pinned in {CONSTRAINTS}"
        version = pins[name][0]
        assert req.specifier.contains(Version(version), prereleases=True), (
            f"{req.name}=={version} does not satisfy pyproject's {req.specifier}")
    # torch is pinned without a local label (+cpu), so GPU nodes get the CUDA build of it.
    assert "+" not in pins["torch"][0]


def test_constraints_pin_the_installed_dependency_closure():
    """Every distribution that the runtime dependencies pull in (per the installed metadata, with
    ray's extras) has a pin, so no transitive package is left to float between nodes."""
    seen: dict[str, set[str]] = {}
    stack = list(_runtime_requirements())
    while stack:
        req = stack.pop()
        name = canonicalize_name(req.name)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            pytest.skip(f"{req.name} is not installed here")
        extras = set(req.extras)
        if name in seen and extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(extras)
        for line in dist.requires or []:
            sub = Requirement(line)
            envs = [{"extra": e} for e in (seen[name] or {""})]
            if sub.marker is None or any(sub.marker.evaluate(e) for e in envs):
                stack.append(sub)
    missing = sorted(set(seen) - set(_pins()))
    assert not missing, f"not pinned in {CONSTRAINTS}: {missing}"


def test_constraints_file_says_how_to_regenerate_it():
    header = "\n".join(l for l in (ROOT / CONSTRAINTS).read_text().splitlines() if l.startswith("#"))
    assert "How it was produced" in header and "How to regenerate" in header


# ----------------------------------------------------------------------------- docs

def test_docs_use_ray_submit_only_for_python_scripts():
    """`ray submit CONFIG SCRIPT` runs `python SCRIPT` on the head; shell goes through ray exec."""
    command = re.compile(r"ray submit\s+(?:--?\S+\s+)*(\S+\.ya?ml)\s+(?:--?\S+\s+)*(\S+)")
    for rel in ("docs/cluster.md", *CONFIGS):
        for m in command.finditer((ROOT / rel).read_text()):
            assert m.group(2).endswith(".py"), f"{rel}: {m.group(0)!r}"
