"""What fixed policies score on a game, under the evaluation and under the learning objective.

For a uniformly random agent and for every legal action held constant (with ``--epsilon`` random
actions mixed in, so the agent does not get stuck), plays ``--envs`` environments for ``--steps``
agent steps and prints

- the raw score of the first ``--cap`` agent steps of play (what the ``cpu`` preset's greedy
  evaluation measures: episodes capped at 500 agent steps, raw game score; an episode that ends
  sooner continues into the next one here);
- per life: agent steps, the clipped reward sum and the discounted clipped return
  ``sum_t discount**t * sign(r_t)`` (what EfficientZero's value learns: clipped rewards, a life loss
  as a learning-only terminal, discount 0.997^4 per agent step by default).

A game on which the two orderings differ will pull a learning agent away from the policy the
evaluation prefers (benchmarks/results/learning.md, seventh round: on UpNDown holding UP scores 1,084
raw under the cap but 2.6 discounted per life; NOOP 648 raw but 5.1 per life).

    python benchmarks/probe_actions.py --game UpNDown
"""

from __future__ import annotations

import argparse

import numpy as np

from xfer.config import DISCOUNT, AtariConfig
from xfer.envs.atari import VectorAtari, action_mask


def life_returns(rewards: list[float], discount: float) -> tuple[int, float, float]:
    """(agent steps, clipped reward sum, discounted clipped return) of one life's raw rewards."""
    r = np.sign(np.asarray(rewards, dtype=np.float64))
    return len(r), float(r.sum()), float((r * discount ** np.arange(len(r))).sum())


def play(game: str, action: int | None, envs: int, steps: int, cap: int, epsilon: float,
         discount: float, seed: int) -> dict[str, float]:
    """Play ``action`` (``None``: uniform random over legal actions) in ``envs`` environments for
    ``steps`` agent steps; return mean raw score over the first ``cap`` agent steps and per-life means."""
    rng = np.random.default_rng(seed)
    lives: list[tuple[int, float, float]] = []
    current: list[list[float]] = [[] for _ in range(envs)]
    capped = np.zeros(envs)
    with VectorAtari(AtariConfig(game=game), envs, seed) as vec:
        vec.reset(seed=seed)
        legal = np.flatnonzero(vec.action_mask)
        for t in range(steps):
            a = rng.choice(legal, size=envs)
            if action is not None:
                a = np.where(rng.random(envs) < epsilon, a, action)
            st = vec.step(a)
            if t < cap:
                capped += st.reward
            ended = st.life_loss | st.terminated | st.truncated
            for i in range(envs):
                current[i].append(float(st.reward[i]))
                if ended[i]:
                    lives.append(life_returns(current[i], discount))
                    current[i] = []
    per_life = np.array(lives) if lives else np.zeros((1, 3))
    return {"capped_score": float(capped.mean()), "lives": len(lives), "steps_per_life": float(per_life[:, 0].mean()),
            "clipped_per_life": float(per_life[:, 1].mean()), "discounted_per_life": float(per_life[:, 2].mean())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--game", required=True)
    ap.add_argument("--envs", type=int, default=8, help="environments played side by side (default 8)")
    ap.add_argument("--steps", type=int, default=1500, help="agent steps per environment (default 1500)")
    ap.add_argument("--cap", type=int, default=500, help="evaluation cap in agent steps (default 500, the cpu preset)")
    ap.add_argument("--epsilon", type=float, default=0.2, help="random-action fraction of the fixed policies (default 0.2)")
    ap.add_argument("--discount", type=float, default=DISCOUNT, help="per agent step (default 0.997^4, EfficientZero)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    legal = [int(a) for a in np.flatnonzero(action_mask(args.game))]
    print(f"{args.game}: {args.envs} envs x {args.steps} agent steps; fixed policies take a random action "
          f"with probability {args.epsilon}; raw score over the first {args.cap} agent steps")
    print("| policy | raw score, capped | lives | agent steps per life | clipped reward per life | discounted per life |")
    print("|---|---:|---:|---:|---:|---:|")
    for action in [None, *legal]:
        s = play(args.game, action, args.envs, args.steps, args.cap, args.epsilon, args.discount, args.seed)
        name = "uniform random" if action is None else f"hold action {action}"
        print(f"| {name} | {s['capped_score']:.0f} | {s['lives']} | {s['steps_per_life']:.0f} | "
              f"{s['clipped_per_life']:.1f} | {s['discounted_per_life']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
