"""cluster.yaml is a valid Ray cluster-launcher config (checked offline with Ray's own schema)."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_validates_with_ray_schema(raw):
    cfg = prepare_config(copy.deepcopy(raw))
    validate_config(cfg)
    assert cfg["provider"]["type"] == "aws"


def test_cluster_yaml_has_cpu_head_and_autoscaling_gpu_workers(raw):
    types = raw["available_node_types"]
    head = types[raw["head_node_type"]]
    assert not head["node_config"]["InstanceType"].startswith(("g", "p"))  # a CPU machine
    workers = [t for n, t in types.items() if n != raw["head_node_type"]]
    assert len(workers) == 1
    gpu = workers[0]
    assert gpu["node_config"]["InstanceType"].startswith(("g", "p"))
    assert gpu["min_workers"] == 0 and gpu["max_workers"] >= 1


def test_cluster_yaml_installs_project_and_keeps_dashboard_local(raw):
    assert "." in raw["file_mounts"].values()
    mount = next(k for k, v in raw["file_mounts"].items() if v == ".")
    assert any("pip install" in c and mount in c for c in raw["setup_commands"])
    head_start = " ".join(raw["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start and "0.0.0.0" not in head_start


def test_broken_cluster_yaml_is_rejected(raw):
    bad = copy.deepcopy(raw)
    bad["available_node_types"]["gpu_worker"]["min_workers"] = "zero"
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(bad))
