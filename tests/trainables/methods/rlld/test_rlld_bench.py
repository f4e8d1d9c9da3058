"""``python -m orchestrator.bench rlld --quality``: rows per method and reward preset, seeds
aggregated as mean +- std, JSON written after every run, bad options rejected."""

import json

import pytest

import trainables.methods.rlld.bench as B


def _fake_run(args, method, seed, path, dev):
    # Scores that depend on method and seed, so the aggregation is checkable by hand.
    base = {"han": 60.0, "jomold": 70.0, "rlld:paper": 62.0, "rlld:stable": 72.0}[method]
    res = {f"test/{k}": base + seed for k in B.SCORE_KEYS}
    if method != "han":
        res.update({k: 0.5 + 0.1 * seed for k in B.DENOISE_KEYS})
    res["wall_s"] = 10.0 * (seed + 1)
    return res


def test_quality_aggregates_seeds_and_writes_json_after_each_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(B, "_quality_run", _fake_run)
    out = tmp_path / "q.json"
    written = []
    real = B._write_json

    def spy(path, obj):
        written.append(sum(len(v) for v in obj["runs"].values()))
        real(path, obj)

    monkeypatch.setattr(B, "_write_json", spy)
    args = B._parser().parse_args(["--quality", "--seeds", "0,2", "--json", str(out),
                                   "--methods", "han,jomold,rlld:paper,rlld:stable"])
    args.epochs, args.data = 3, "fake"
    runs = B._quality(args, "unused", "cpu")
    assert written == list(range(1, 9))  # one write per finished run
    saved = json.loads(out.read_text())
    assert saved["seeds"] == [0, 2] and len(saved["runs"]["rlld:stable"]) == 2
    assert [r["test/seg_V"] for r in runs["jomold"]] == [70.0, 72.0]
    text = capsys.readouterr().out.split("test F-scores")[1]  # the table, after progress lines
    # Mean of seeds 0 and 2 is base + 1, sample std sqrt(2) = 1.4.
    stable_row = next(line for line in text.splitlines() if line.startswith("rlld:stable"))
    assert stable_row.split()[1] == "73.0+-1.4"
    han_den = [line for line in text.splitlines() if line.startswith("han ")]
    assert len(han_den) == 1  # HAN has no denoising row
    den_row = [line for line in text.splitlines() if line.startswith("jomold")][-1]
    assert den_row.split()[1] == "0.600+-0.141"


@pytest.mark.parametrize("argv, needle", [
    (["--quality", "--methods", "han,rlld:nope"], "--methods"),
    (["--quality", "--methods", "bogus"], "--methods"),
    (["--quality", "--seeds", "0,x"], "--seeds"),
])
def test_bad_quality_options_exit_2(argv, needle, capsys):
    assert B.main(argv) == 2
    assert needle in capsys.readouterr().err


def test_rlld_rows_name_a_preset_and_the_papers_ablations():
    assert B.parse_rlld_method("rlld:paper+no_inter") == ("paper", {"use_inter_reward": False})
    assert B.parse_rlld_method("rlld:paper+no_label+no_inter") == (
        "paper", {"use_label_input": False, "use_inter_reward": False})
    assert B.parse_rlld_method("rlld") == ("paper_avtune", {})
    for bad in ("rlld:paper+no_baseline", "rlld:nope"):
        with pytest.raises(ValueError):
            B.parse_rlld_method(bad)
    args = B._parser().parse_args(["--set", "agent_lr=0.002"])
    cfg = B._cfg(args, "paper", use_inter_reward=False, epochs=1)
    assert (cfg.episode_steps, cfg.agent_lr, cfg.use_inter_reward, cfg.epochs) == (32, 0.002,
                                                                                  False, 1)


def test_epoch_table_averages_the_seeds_per_epoch():
    def run(seed):
        return {"epochs": [{"rlld/keep_p_noisy_v": 0.5 + 0.1 * seed + 0.01 * e,
                            "rlld/keep_p_clean_v": 0.6, "rlld/keep_p_noisy_a": 0.5,
                            "rlld/keep_p_clean_a": 0.5, "rlld/noise_auc_v": 0.7,
                            "rlld/noise_auc_a": 0.5, "rlld/policy_steps": 1.0}
                           for e in range(2)]}

    lines = B.epoch_table({"rlld:paper": [run(0), run(2)]}).splitlines()
    assert len(lines) == 3
    # Epoch 1: noisy visual keep p (0.51 + 0.71) / 2 = 0.61.
    assert lines[2].split()[:4] == ["rlld:paper", "epoch", "1:", "0.610/0.600"]
