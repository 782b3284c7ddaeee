"""Probe saved models on the same Atari states: the network's value and what greedy search picks.

Plays ``--warmup`` uniformly random agent steps in ``--states`` environments (fixed seed), then for
every model prints the mean/min/max of the value head on those states, the search's root value, and
how many states choose each legal action under greedy evaluation (argmax of the completed-Q policy of
the ``cpu`` preset's search), and how much the model's one-step Q ``r(s, a) + discount * v(g(s, a))``
varies with the action (mean over states of its range over legal actions) against how much it varies
between states: a dynamics network that ignores the action cannot tell a safe move from a fatal one. A value below the game's smallest possible return (for Qbert: below 0)
is the value-offset pathology described in benchmarks/results/learning.md (fourth round).

    python benchmarks/probe_values.py --game Qbert runs/qbert/evals/model_*.safetensors
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from xfer import checkpoint as ckpt
from xfer.config import AtariConfig
from xfer.envs.atari import VectorAtari
from xfer.inference import search_policy
from xfer.nets.efficientzero import EfficientZeroNet
from xfer.nets.support import logits_to_scalar
from xfer.presets import build_train_config


def probe_states(game: str, states: int, warmup: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 observations ``[states, 12, 96, 96]`` after ``warmup`` random agent steps, and the
    game's legal-action mask ``[states, 18]`` (bool)."""
    rng = np.random.default_rng(seed)
    with VectorAtari(AtariConfig(game=game), states, seed) as envs:
        obs, _ = envs.reset(seed=seed)
        legal = np.flatnonzero(envs.action_mask)
        for _ in range(warmup):
            obs = envs.step(rng.choice(legal, size=states)).obs
        mask = np.broadcast_to(envs.action_mask, (states, len(envs.action_mask))).copy()
    return obs, mask


def one_step_q(net: EfficientZeroNet, obs: np.ndarray, legal: np.ndarray, discount: float) -> np.ndarray:
    """Model Q after one dynamics step, ``[states, len(legal)]`` float32: ``r + discount * v`` for every
    legal full-space action id in ``legal``, from uint8 observations ``[states, C, H, W]``."""
    net.eval()
    with torch.no_grad():
        latent = net.represent(torch.from_numpy(obs))
        state = net.initial_lstm_state(len(obs), latent.device)
        qs = []
        for a in legal:
            nxt, _, prefix = net.dynamics(latent, state, torch.full((len(obs),), int(a)))
            qs.append(logits_to_scalar(prefix) + discount * logits_to_scalar(net.predict(nxt)[1]))
    return torch.stack(qs, 1).numpy()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="model.safetensors files (e.g. OUT/evals/model_*.safetensors)")
    ap.add_argument("--game", required=True)
    ap.add_argument("--states", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=40, help="random agent steps before probing")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)
    obs, mask = probe_states(args.game, args.states, args.warmup, args.seed)
    legal = np.flatnonzero(mask[0])
    search = build_train_config("cpu", {}).search  # the cpu preset's search, not a copy of its settings
    print(f"{args.states} {args.game} states after {args.warmup} random agent steps; legal actions {legal.tolist()}")
    for path in args.models:
        try:
            net, _ = ckpt.load_model(path)
        except ckpt.CheckpointError as exc:
            ap.error(str(exc))
        out = search_policy(net, obs, mask, search, np.random.default_rng(1), add_noise=False, use_search=True)
        picks = np.bincount(out.policy.argmax(1), minlength=18)[legal]
        print(f"{path}: value mean {out.prior_value.mean():.2f} (min {out.prior_value.min():.2f}, "
              f"max {out.prior_value.max():.2f}), root value {out.root_value.mean():.2f}, "
              f"greedy picks per legal action {picks.tolist()}")
        q = one_step_q(net, obs, legal, search.discount)
        print(f"    one-step Q: range over actions {np.ptp(q, axis=1).mean():.3f} (mean over states), "
              f"std over states {q.mean(1).std():.3f}")


if __name__ == "__main__":
    main()
