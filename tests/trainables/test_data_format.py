import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trainables.data.format import (
    DATA_FILE, DataFormatError, atomic_write_bytes, fingerprint, params_key, read_meta, read_split,
    write_dataset,
)


def _write(tmp_path, **kw):
    rng = np.random.default_rng(0)
    arrays = {
        "feat": rng.standard_normal((5, 3, 4)).astype(np.float16),
        "labels": rng.integers(0, 2, (5, 25)).astype(bool),
        "idx": np.arange(5, dtype=np.int64)[:, None],
    }
    split = ["train", "val", "train", "test", "train"]
    path = write_dataset(tmp_path / "ds", video_ids=[f"v{i}" for i in range(5)], split=split,
                         arrays=arrays, kind="llp-sim", params={"seed": 1, **kw},
                         truth_splits=["val", "test"])
    return path, arrays


def test_roundtrip_per_split_contiguous(tmp_path):
    path, arrays = _write(tmp_path)
    assert path.name == DATA_FILE
    ids, got = read_split(path.parent, "train")
    assert ids == ["v0", "v2", "v4"]
    np.testing.assert_array_equal(got["feat"], arrays["feat"][[0, 2, 4]])
    assert got["feat"].dtype == np.float16 and got["feat"].flags.c_contiguous
    assert got["labels"].dtype == np.uint8
    np.testing.assert_array_equal(got["labels"], arrays["labels"][[0, 2, 4]].astype(np.uint8))
    ids, got = read_split(path, "test", ["idx"])
    assert ids == ["v3"] and list(got) == ["idx"] and got["idx"].tolist() == [[3]]


def test_metadata_and_fingerprint(tmp_path):
    path, _ = _write(tmp_path)
    meta = read_meta(path)
    assert meta["kind"] == "llp-sim" and meta["splits"] == {"train": 3, "val": 1, "test": 1}
    assert meta["shapes"]["feat"] == [3, 4] and meta["truth_splits"] == ["test", "val"]
    other, _ = _write(tmp_path / "b", extra_param=2)
    assert fingerprint(path) != fingerprint(other)
    assert fingerprint(path) == fingerprint(path.parent)
    assert params_key("llp-sim", {"a": 1, "b": 2}) == params_key("llp-sim", {"b": 2, "a": 1})


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(DataFormatError, match="no avtune data file"):
        read_meta(tmp_path)
    pq.write_table(pa.table({"x": [1]}), tmp_path / DATA_FILE)
    with pytest.raises(DataFormatError, match="no avtune metadata"):
        read_meta(tmp_path)
    path, _ = _write(tmp_path / "c")
    with pytest.raises(DataFormatError, match=r"no column\(s\) \['nope'\]"):
        read_split(path, "train", ["nope"])
    with pytest.raises(ValueError, match="unknown split"):
        read_split(path, "dev")
    with pytest.raises(ValueError, match="column 'x' has 2 rows for 3 videos"):
        write_dataset(tmp_path / "d", video_ids=["a", "b", "c"], split=["train"] * 3,
                      arrays={"x": np.zeros((2, 1), np.float32)}, kind="k", params={})
    assert not (tmp_path / "d" / DATA_FILE).exists()


def test_future_format_version_rejected(tmp_path):
    path, _ = _write(tmp_path)
    t = pq.read_table(path)
    meta = json.loads(t.schema.metadata[b"avtune"])
    meta["format_version"] = 99
    pq.write_table(t.replace_schema_metadata({b"avtune": json.dumps(meta).encode()}), path)
    with pytest.raises(DataFormatError, match="format version 99 not supported"):
        read_meta(path)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import trainables.data.format as fmt

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(fmt.pq, "write_table", boom)
    with pytest.raises(OSError):
        _write(tmp_path)
    assert list((tmp_path / "ds").iterdir()) == []


def test_atomic_write_bytes_replaces_whole_file_and_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "new" / "r.json"
    assert atomic_write_bytes(out, b'{"a": 1}') == out
    atomic_write_bytes(out, b"[2]")
    assert out.read_bytes() == b"[2]"
    assert out.stat().st_mode & 0o777 == 0o644
    with pytest.raises(TypeError):
        atomic_write_bytes(out, "not bytes")  # fails inside the write
    assert out.read_bytes() == b"[2]"
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]
