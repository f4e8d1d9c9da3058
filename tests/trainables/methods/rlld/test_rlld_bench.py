"""``python -m orchestrator.bench rlld``: its config overrides and bad options."""

import pytest

import trainables.methods.rlld.bench as B


@pytest.mark.parametrize("argv, needle", [
    (["--modes", "sync,later"], "--modes"),
    (["--epochs", "0"], "--epochs"),
])
def test_bad_options_exit_2(argv, needle, capsys):
    assert B.main(argv) == 2
    assert needle in capsys.readouterr().err


def test_set_overrides_and_presets_reach_the_config():
    args = B._parser().parse_args(["--set", "agent_lr=0.002"])
    cfg = B._cfg(args, "paper", use_inter_reward=False, epochs=1)
    assert (cfg.episode_steps, cfg.agent_lr, cfg.use_inter_reward, cfg.epochs) == (32, 0.002, False, 1)
    with pytest.raises(ValueError, match="agent_lr=x"):
        B._cfg(B._parser().parse_args(["--set", "agent_lr=x"]))
