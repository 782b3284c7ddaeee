"""The Q-learning baseline's targets and action values (xfer/qlearning.py), by hand."""

import numpy as np
import pytest
import torch

from tests.specs import ATARI_INPUT
from xfer.nets.efficientzero import build_network
from xfer.nets.sizes import net_spec
from xfer.qlearning import epsilon_greedy, nstep_q_target, one_step_q_values, ql_value_target

G = 0.5


def test_the_nstep_q_target_bootstraps_only_without_a_terminal_by_hand():
    rewards = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    q = np.array([[0.0, 8.0], [0.0, 8.0]])
    # full 3 steps: 1 + 0.5*2 + 0.25*4 + 0.125*8 = 4; terminal after 2 rewards: 1 + 0.5*2 = 2
    got = nstep_q_target(rewards, q, np.array([3, 2]), G)
    assert got == pytest.approx([4.0, 2.0])


def test_the_value_target_of_eq_2_is_the_q_target_without_the_first_reward_by_hand():
    rewards = np.array([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    q = np.array([[0.0, 8.0], [-3.0, -1.0]])
    # sum_{i=1}^{2} G^{i-1} r_i + G^2 max Q = 2 + 0.5*4 + 0.25*8 = 6; second: 2 + 2 + 0.25*(-1) = 3.75
    assert ql_value_target(rewards, q, np.array([3, 3]), G) == pytest.approx([6.0, 3.75])
    # a terminal after the first reward: nothing follows
    assert ql_value_target(rewards[:1], q[:1], np.array([1]), G) == pytest.approx([0.0])


def test_one_step_q_values_expand_every_action_through_the_model():
    net = build_network(net_spec("tiny"), *ATARI_INPUT, seed=0).eval()
    with torch.no_grad():
        latent = net.represent(torch.randint(0, 255, (2, *ATARI_INPUT[1]), dtype=torch.uint8))
        q = one_step_q_values(net, latent, 0.9)
        a = 5
        out = net.recurrent_inference(latent, net.initial_lstm_state(2), torch.full((2,), a))
    assert q.shape == (2, net.num_actions)
    assert torch.allclose(q[:, a], out.value_prefix + 0.9 * out.value, atol=1e-5)


def test_epsilon_greedy_takes_the_legal_argmax_or_a_uniform_legal_action():
    q = np.array([[1.0, 9.0, 3.0], [5.0, 0.0, 2.0]])
    legal = np.array([True, False, True])
    rng = np.random.default_rng(0)
    assert epsilon_greedy(q, legal, 0.0, rng).tolist() == [2, 0]  # 9.0 is illegal
    draws = np.concatenate([epsilon_greedy(q, legal, 1.0, rng) for _ in range(200)])
    assert set(draws.tolist()) == {0, 2}
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_greedy(q, legal, 1.5, rng)


# ---- the baseline as an agent: xfer train with agent.kind = ql (real Procgen game, tiny budgets) ----

QL_SETS = ["agent.kind=ql", "loss.policy=0", "replay.unroll_steps=1"]


def _procgen_cfg(sets: list[str], env_steps: int = 80):
    from tests.test_train import TINY
    from xfer.presets import build_train_config, parse_overrides

    tiny = [a for a in TINY[TINY.index("--set"):] if a != "--set"]
    overrides = parse_overrides(tiny + sets + ["env.suite=procgen", "env.game=coinrun", f"env_steps={env_steps}"])
    return build_train_config("cpu", {**overrides, "net": {**overrides.get("net", {}), "size": "tiny"}})


def test_a_ql_agent_needs_no_policy_loss_and_n_step_targets():
    import pydantic

    with pytest.raises(pydantic.ValidationError, match="agent.kind ql learns no policy: set loss.policy: 0"):
        _procgen_cfg(["agent.kind=ql"])
    with pytest.raises(pydantic.ValidationError, match="needs replay.td_steps >= 2"):
        _procgen_cfg([*QL_SETS, "replay.td_steps=1"])


def test_ql_batches_bootstrap_on_max_q_of_the_target_network_after_n_minus_1_rewards(tmp_path, monkeypatch):
    from xfer import train as train_mod

    cfg = _procgen_cfg(QL_SETS)
    trainer = train_mod.Trainer(cfg, tmp_path / "run", progress=False)
    seen = {}

    def capture(index, K, td_steps, age_scale, total, discount, horizon, fraction, bootstrap, policy_fn, rng):
        seen.update(K=K, td=td_steps, policy_fn=policy_fn, bootstrap=bootstrap)
        raise StopIteration

    monkeypatch.setattr(train_mod, "build_batch", capture)
    monkeypatch.setattr(trainer.replay, "sample", lambda *a, **k: None)
    with pytest.raises(StopIteration):
        trainer._replay_batches(np.random.default_rng(0))
    assert (seen["K"], seen["td"], seen["policy_fn"]) == (1, cfg.replay.td_steps - 1, None)
    # the bootstrap: max over the game's legal actions of Q_xi(s, .) = r_hat + gamma V(g(s, a))
    obs = np.random.default_rng(1).integers(0, 255, size=(3, *trainer.learner.net.obs_shape), dtype=np.uint8)
    net = trainer.learner.target_net
    with torch.no_grad():
        q = one_step_q_values(net, net.initial_inference(torch.from_numpy(obs)).latent, cfg.discount).numpy()
    np.testing.assert_allclose(trainer._q_bootstrap(obs), q.max(1), rtol=1e-5)
    # acting: epsilon decays linearly from epsilon_start, evaluation takes eval_epsilon
    assert trainer.acting(0.0).epsilon == cfg.agent.epsilon_start
    assert trainer.acting(1.0).epsilon == pytest.approx(cfg.agent.epsilon_end)
    assert trainer.acting(0.5, explore=False).epsilon == cfg.agent.eval_epsilon


def test_one_step_targets_of_the_planning_ablations_replace_every_stored_policy(tmp_path, monkeypatch):
    from xfer import train as train_mod

    cfg = _procgen_cfg(["mcts.search_for_targets=false", "mcts.without_search=one_step"])
    trainer = train_mod.Trainer(cfg, tmp_path / "run", progress=False)
    seen = {}

    def capture(index, K, td_steps, age_scale, total, discount, horizon, fraction, bootstrap, policy_fn, rng):
        seen.update(fraction=fraction, policy_fn=policy_fn, td=td_steps)
        raise StopIteration

    monkeypatch.setattr(train_mod, "build_batch", capture)
    monkeypatch.setattr(trainer.replay, "sample", lambda *a, **k: None)
    with pytest.raises(StopIteration):
        trainer._replay_batches(np.random.default_rng(0))
    assert seen["fraction"] == 1.0 and seen["policy_fn"] is not None and seen["td"] == cfg.replay.td_steps
    # ... and the policy function is the depth-1 search: every legal action expanded, nothing deeper
    obs = np.zeros((2, *trainer.learner.net.obs_shape), np.uint8)
    pol = seen["policy_fn"](obs, np.ones((2, 15), bool))
    assert pol.shape == (2, 15) and np.allclose(pol.sum(1), 1.0)


def test_a_ql_run_trains_and_evaluates_on_a_procgen_game(tmp_path):
    from xfer.train import run_training

    summary = run_training(_procgen_cfg([*QL_SETS, "train_ratio=1.0"], env_steps=120), tmp_path / "run",
                           progress=False)
    assert summary["train_steps"] >= 50 and summary["final_eval_score"] is not None
    rows = (tmp_path / "run" / "metrics" / "train.tsv").read_text().splitlines()
    header = rows[0].split("\t")
    last = dict(zip(header, rows[-1].split("\t")))
    assert float(last["loss_value"]) > 0 and np.isfinite(float(last["loss"]))
