"""Random Network Distillation (Burda, Edwards, Storkey and Klimov 2019, "Exploration by Random
Network Distillation"; reference.md section 6): the default intrinsic reward of reward-free
exploration pretraining (Walker et al. 2023).

A fixed random target network ``f`` and a trained predictor ``f_hat`` map the normalised next
observation to ``feature_dim`` numbers; the bonus ``mean_j (f_hat(o')_j - f(o')_j)^2`` is large on
observations the predictor has rarely been trained on (novel ones) and decays as they are revisited.
The bonus here is raw: dividing it by the running standard deviation of its discounted return is
:class:`~xfer.exploration.running.ReturnNormaliser`'s job, composed where the reward hook is built.
"""

from __future__ import annotations

import numpy as np
import torch

from xfer.envs.spec import EnvSpec
from xfer.exploration.config import IntrinsicConfig
from xfer.exploration.features import (
    ObservationNormaliser,
    TrainedBonus,
    frozen,
    input_shape,
    preprocess,
    random_network,
)
from xfer.rewards import StepRewards


class RND(TrainedBonus):
    """The RND bonus of a task's observations, trained online on what it scores.

    Each call on one vectorised step (``N`` transitions), in this order:

    1. preprocess ``step.next_obs`` (:func:`~xfer.exploration.features.preprocess`: pixels -> the last
       frame, grey, ``frame_size x frame_size``; states as they are) and merge the batch into the
       running observation statistics;
    2. normalise it (``clip((x - mean) / std, -obs_clip, obs_clip)``, with the statistics that include
       this batch) and compute the bonus ``mean_j (f_hat(x)_j - f(x)_j)^2`` with the current predictor;
    3. train the predictor one Adam step (``cfg.rnd.lr``) on the MSE to the target over a random subset
       of ``max(1, round(update_proportion * N))`` of the transitions, drawn without replacement from
       ``np.random.default_rng([seed, calls])`` (``calls``: calls before this one).

    Networks (:func:`~xfer.exploration.features.random_network`): pixels: three convolutions
    (``c, 2c, 2c`` channels, ``c = cfg.rnd.channels``) then ``Linear(feature_dim)`` for the target, and
    ``Linear(hidden)``, LeakyReLU, ``Linear(feature_dim)`` for the predictor; states: MLPs
    ``[D, hidden, hidden, feature_dim]``. Both are drawn (target first) from a ``torch.Generator``
    seeded with ``seed``; torch's global generator is never used. The target never changes.

    Args:
        spec: the task (its observation spec chooses pixels or states).
        cfg: ``cfg.rnd`` sizes and trains the networks; ``cfg.frame_size`` the pixel input.
        seed: seeds the networks and the subsets, ``>= 0``.
        device: where networks and statistics live; bonuses come back as numpy.

    Raises:
        ValueError: a negative seed, or a pixel ``cfg.frame_size`` below
            :data:`~xfer.exploration.features.MIN_FRAME_SIZE`.

    Attributes:
        last_loss: the predictor's training loss (MSE, per feature) of the last call; NaN before any.
        calls: calls so far.
    """

    def __init__(self, spec: EnvSpec, cfg: IntrinsicConfig, seed: int, device: str = "cpu") -> None:
        if seed < 0:
            raise ValueError(f"RND needs a seed >= 0, got {seed}")
        self.spec, self.cfg, self.seed, self.device = spec, cfg, int(seed), torch.device(device)
        obs, r = spec.observation, cfg.rnd
        generator = torch.Generator().manual_seed(self.seed)
        self.target = frozen(random_network(obs, cfg.frame_size, r.channels, r.hidden, r.feature_dim, generator))
        self.predictor = random_network(obs, cfg.frame_size, r.channels, r.hidden, r.feature_dim, generator,
                                        predictor=True)
        self.target.to(self.device)
        self.predictor.to(self.device)
        self.modules = {"predictor": self.predictor, "target": self.target}
        self.optimiser = torch.optim.Adam(self.predictor.parameters(), lr=r.lr)
        self.obs_norm = ObservationNormaliser(input_shape(obs, cfg.frame_size), r.obs_clip, self.device)
        self.calls = 0
        self.last_loss = float("nan")

    def normalised(self, obs: np.ndarray) -> torch.Tensor:
        """Observations ``[N, *observation.shape]`` -> the networks' input ``[N, *input_shape]`` float32,
        preprocessed and normalised with the current statistics (not updated here).

        Raises:
            ValueError: ``obs`` is not a batch ``[N >= 1, *observation.shape]``.
        """
        return self.obs_norm(preprocess(obs, self.spec.observation, self.cfg.frame_size, self.device))

    def __call__(self, step: StepRewards) -> np.ndarray:
        """The raw bonus of each transition's next observation: ``[N]`` float32 (then one training step;
        see the class for the order).

        Raises:
            ValueError: ``step.next_obs`` is not a batch ``[N >= 1, *observation.shape]``.
        """
        x = preprocess(step.next_obs, self.spec.observation, self.cfg.frame_size, self.device)
        self.obs_norm.update(x)
        xn = self.obs_norm(x)
        n = len(xn)
        with torch.no_grad():
            target = self.target(xn)
        error = (self.predictor(xn) - target).square()  # [N, feature_dim], with grad
        bonus = error.detach().mean(1).cpu().numpy().astype(np.float32)
        k = max(1, int(round(self.cfg.rnd.update_proportion * n)))
        subset = np.sort(self.call_rng().choice(n, size=k, replace=False))
        loss = error[torch.as_tensor(subset, device=self.device)].mean()
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.optimiser.step()
        self.last_loss = float(loss.detach())
        self.calls += 1
        return bonus
