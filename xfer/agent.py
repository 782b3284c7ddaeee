"""One builder for every stage and ``xfer train``: the world model, its learner (with the target
network) and checkpoint sidecars, all sized from an :class:`~xfer.envs.spec.EnvSpec`.

Nothing here knows a suite: the policy head's width is the spec's action count, the representation
network's input the spec's observation shape. What an agent needs of the run's configuration is
passed in as the config sections (``net``, ``optim``, ``loss``) so the stages keep reading their
params as ``p.section`` (``tests/stages/test_dvc_yaml.py`` checks those reads against dvc.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from xfer.checkpoint import ModelMeta
from xfer.config import LossConfig, NetConfig, OptimConfig
from xfer.envs.spec import EnvSpec
from xfer.learner import Learner
from xfer.nets.efficientzero import EfficientZeroNet, build_network


def build_model(env: EnvSpec, net: NetConfig, device: str | torch.device = "cpu", size: str | None = None,
                zero_init_heads: bool = False, seed: int | None = None) -> EfficientZeroNet:
    """The world model for ``env``: :func:`xfer.nets.efficientzero.build_network` with the policy head
    over ``env.num_actions`` actions (a :class:`~xfer.envs.spec.Box` space: a Gaussian over its
    ``env.action_dim`` entries, Sampled MuZero) and the representation network over
    ``env.observation.shape`` (convolutional for pixels, an MLP for state vectors).

    Args:
        net: the ``net`` section (size, supports, precision, action encoding, latent scaling).
        size: a size other than ``net.size`` (the pipeline's student or a baseline's).
        zero_init_heads: EfficientZero's zero-initialised output layers (``net.zero_init_heads`` for a
            network that is trained from its initialisation; off for copies whose weights are loaded).
        seed: initial weights as a function of ``seed`` alone; ``None`` draws from torch's global RNG.

    Raises:
        ValueError: an unknown size.
    """
    return build_network(net.spec(size), env.policy_actions, env.observation.shape, net.precision, device,
                         zero_init_heads, seed, env.action_dim)


@dataclass
class Agent:
    """What a training stage trains: the learner (which owns the network and its target network)
    for tasks of one spec."""

    env: EnvSpec
    learner: Learner

    @property
    def net(self) -> EfficientZeroNet:
        """The trained network (``learner.net``)."""
        return self.learner.net


def build_agent(env: EnvSpec, net: NetConfig, optim: OptimConfig, loss: LossConfig, value_prefix_horizon: int,
                train_steps: int, device: str | torch.device = "cpu", augment: bool = True,
                size: str | None = None, zero_init_heads: bool | None = None, seed: int | None = None) -> Agent:
    """A freshly initialised agent for ``env``: :func:`build_model` plus a :class:`~xfer.learner.Learner`
    (optimiser, schedule over ``train_steps`` gradient steps, target network).

    ``zero_init_heads`` defaults to ``net.zero_init_heads``; ``augment`` (random shift and intensity)
    applies to pixel observations only; other arguments as :func:`build_model` and
    :class:`~xfer.learner.Learner`.
    """
    model = build_model(env, net, device, size, net.zero_init_heads if zero_init_heads is None else zero_init_heads,
                        seed)
    # the random shift and intensity augmentation is for images; a state vector is learned from as it is
    augment = augment and env.observation.kind == "pixels"
    return Agent(env, Learner(model, optim, loss, value_prefix_horizon, train_steps, device, augment))


def model_meta(env: EnvSpec, net: NetConfig, tasks: dict[str, EnvSpec], step: int, env_steps: int,
               config_hash: str, size: str | None = None) -> ModelMeta:
    """The sidecar of a model for ``env`` trained on ``tasks`` (task name -> its spec): the network's
    spec and input shape from ``env`` and ``net``, each task's legal actions as its action map."""
    size = size or net.size
    return ModelMeta(
        size=size,
        spec=net.spec(size).to_dict(),
        num_actions=env.policy_actions,
        action_dim=env.action_dim,
        obs_shape=list(env.observation.shape),
        games=list(tasks),
        action_maps={name: list(spec.legal_actions or ()) for name, spec in tasks.items()},
        step=step,
        env_steps=env_steps,
        config_hash=config_hash,
        weights_sha256="",
    )
