"""Ensemble disagreement (Pathak, Gandhi and Gupta 2019, "Self-Supervised Exploration via
Disagreement"; reference.md section 6): the alternative intrinsic reward of reward-free exploration
pretraining (Walker et al. 2023).

``ensemble`` forward models predict the fixed random features ``phi(o')`` of the next observation
from ``phi(o)`` and the action; where they have seen a transition often they agree, so the variance
of their predictions is a novelty bonus that, unlike a prediction error, does not stay high on
transitions whose outcome is random (every model learns the same mean).
"""

from __future__ import annotations

import numpy as np
import torch

from xfer.envs.spec import EnvSpec
from xfer.exploration.config import IntrinsicConfig
from xfer.exploration.features import (
    EnsembleMLP,
    ObservationNormaliser,
    TrainedBonus,
    action_width,
    encode_actions,
    frozen,
    input_shape,
    preprocess,
    random_network,
)
from xfer.rewards import StepRewards


class Disagreement(TrainedBonus):
    """The disagreement bonus of a task's transitions, trained online on what it scores.

    Each call on one vectorised step (``N`` transitions), in this order:

    1. preprocess ``step.obs`` and ``step.next_obs`` as RND does
       (:func:`~xfer.exploration.features.preprocess`) and merge the next observations into the running
       observation statistics (each next observation is the following step's observation, so both
       come from one population);
    2. normalise both (``clip((x - mean) / std, -cfg.rnd.obs_clip, cfg.rnd.obs_clip)``) and encode them with
       the fixed random encoder ``phi`` (RND's target architecture, ``disagreement.feature_dim``
       outputs, ``disagreement.channels``; states: the MLP ``[D, hidden, hidden, feature_dim]``);
    3. every forward model ``g_e`` (MLP ``[feature_dim + action_in, hidden, hidden, feature_dim]``,
       ``action_in`` = ``n`` one-hot for ``Discrete(n)``, ``D`` for a ``Box``) predicts ``phi(o')`` from
       ``[phi(o), a]``; the bonus is their population variance over the ensemble, averaged over
       features: ``mean_j var_e g_e(phi(o), a)_j``;
    4. each model trains one Adam step (``disagreement.lr``) on the MSE to ``phi(o')`` over its own
       bootstrap resample (``N`` draws with replacement) of the transitions, drawn from
       ``np.random.default_rng([seed, calls])`` (one ``[ensemble, N]`` draw).

    Encoder and ensemble are drawn (encoder first) from a ``torch.Generator`` seeded with ``seed``;
    torch's global generator is never used. The encoder never changes.

    Args:
        spec: the task (observation spec: pixels or states; action space: ``Discrete`` or ``Box``).
        cfg: ``cfg.disagreement`` sizes and trains the models; ``cfg.frame_size`` the pixel input;
            ``cfg.rnd.obs_clip`` the observation clip (shared with RND).
        seed: seeds the networks and the resamples, ``>= 0``.
        device: where networks and statistics live; bonuses come back as numpy.

    Raises:
        ValueError: a negative seed, or a pixel ``cfg.frame_size`` below
            :data:`~xfer.exploration.features.MIN_FRAME_SIZE`.

    Attributes:
        last_loss: the forward models' training loss (MSE per feature, averaged over the ensemble) of
            the last call; NaN before any.
        calls: calls so far.
    """

    def __init__(self, spec: EnvSpec, cfg: IntrinsicConfig, seed: int, device: str = "cpu") -> None:
        if seed < 0:
            raise ValueError(f"Disagreement needs a seed >= 0, got {seed}")
        self.spec, self.cfg, self.seed, self.device = spec, cfg, int(seed), torch.device(device)
        obs, d = spec.observation, cfg.disagreement
        generator = torch.Generator().manual_seed(self.seed)
        self.encoder = frozen(random_network(obs, cfg.frame_size, d.channels, d.hidden, d.feature_dim, generator))
        self.action_in = action_width(spec.action_space)
        self.models = EnsembleMLP(d.ensemble, d.feature_dim + self.action_in, d.hidden, d.feature_dim, generator)
        self.encoder.to(self.device)
        self.models.to(self.device)
        self.modules = {"encoder": self.encoder, "models": self.models}
        self.optimiser = torch.optim.Adam(self.models.parameters(), lr=d.lr)
        self.obs_norm = ObservationNormaliser(input_shape(obs, cfg.frame_size), cfg.rnd.obs_clip, self.device)
        self.calls = 0
        self.last_loss = float("nan")

    def features(self, obs: np.ndarray) -> torch.Tensor:
        """``phi`` of observations ``[N, *observation.shape]``: ``[N, feature_dim]`` float32, normalised
        with the current statistics (not updated here).

        Raises:
            ValueError: ``obs`` is not a batch ``[N >= 1, *observation.shape]``.
        """
        x = self.obs_norm(preprocess(obs, self.spec.observation, self.cfg.frame_size, self.device))
        with torch.no_grad():
            return self.encoder(x)

    def __call__(self, step: StepRewards) -> np.ndarray:
        """The raw disagreement bonus of each transition: ``[N]`` float32 (then one training step of every
        model; see the class for the order).

        Raises:
            ValueError: ``step.obs`` / ``step.next_obs`` not batches ``[N >= 1, *observation.shape]`` of one
                ``N``; actions not ``[N]`` ids in ``0..n-1`` (``Discrete(n)``) or ``[N, *shape]`` (``Box``).
        """
        x = preprocess(step.obs, self.spec.observation, self.cfg.frame_size, self.device)
        x1 = preprocess(step.next_obs, self.spec.observation, self.cfg.frame_size, self.device)
        if len(x) != len(x1):
            raise ValueError(f"obs and next_obs hold {len(x)} and {len(x1)} transitions")
        actions = encode_actions(step.actions, self.spec.action_space, self.device)
        if len(actions) != len(x):
            raise ValueError(f"{len(actions)} actions for {len(x)} transitions")
        self.obs_norm.update(x1)
        with torch.no_grad():
            phi, phi_next = self.encoder(self.obs_norm(x)), self.encoder(self.obs_norm(x1))
        inputs = torch.cat([phi, actions], 1)  # [N, feature_dim + action_in]
        n, members = len(inputs), self.models.members
        with torch.no_grad():
            predictions = self.models(inputs.expand(members, -1, -1))  # [E, N, feature_dim]
        bonus = predictions.var(0, unbiased=False).mean(1).cpu().numpy().astype(np.float32)
        resample = torch.as_tensor(self.call_rng().integers(0, n, size=(members, n)), device=self.device)
        per_model = (self.models(inputs[resample]) - phi_next[resample]).square().mean((1, 2))  # [E]
        self.optimiser.zero_grad(set_to_none=True)
        per_model.sum().backward()  # each model's gradient is that of its own MSE
        self.optimiser.step()
        self.last_loss = float(per_model.detach().mean())
        self.calls += 1
        return bonus
