"""Transfer of pretrained world-model parts and XTRA's periodic task re-weighting.

- :func:`transfer_parts` copies parts of a pretrained model; the rest keeps its fresh
  initialisation. XTRA's parts (Fig. 8): the representation ``h`` (with its SimSiam projection),
  dynamics ``g`` (with its value-prefix head) and prediction ``f`` networks. The finer parts of
  reward-free exploration then transfer (Walker et al. 2023; reference.md section 6): ``encoder``
  (= ``h``), ``dynamics`` (g's trunk: the next-latent convolutions), ``reward_head`` (g's value-prefix
  head: the "dynamics heads") and ``prior_heads`` (= ``f``: policy and value).
- :func:`freeze_representation` stops gradients into ``h`` (XTRA Fig. 7b).
- :class:`TaskWeights` implements Appendix B: cycles of ``T`` gradient steps; during the first
  ``N`` steps of a cycle, count the steps where the cosine similarity between the target-task
  gradient and offline task ``i``'s gradient exceeds the threshold; at the window's end
  ``eta_i = count_i / N``. Weights are 1 until the first update, and updates start at ``start``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xfer.nets.efficientzero import EfficientZeroNet
from xfer.xtra_config import TaskWeightConfig

_ENCODER = ("representation_net", "projection", "projection_head")
_DYNAMICS = ("dynamics_net.conv", "dynamics_net.bn", "dynamics_net.blocks")
_REWARD_HEAD = ("dynamics_net.reward_conv", "dynamics_net.reward_bn", "dynamics_net.lstm", "dynamics_net.lstm_bn",
                "dynamics_net.value_prefix_head")
PARTS: dict[str, tuple[str, ...]] = {
    "h": _ENCODER,
    "g": ("dynamics_net",),
    "f": ("prediction_net",),
    "encoder": _ENCODER,
    "dynamics": _DYNAMICS,
    "reward_head": _REWARD_HEAD,
    "prior_heads": ("prediction_net",),
}
"""Transfer part -> the modules (dotted paths in :class:`EfficientZeroNet`) it copies. ``dynamics`` and
``reward_head`` together are ``g``; the decoder of the reconstruction loss is in no part."""


def transfer_parts(dst: EfficientZeroNet, src: EfficientZeroNet, parts: list[str]) -> list[str]:
    """Copy the modules of ``parts`` (names of :data:`PARTS`) from ``src`` into ``dst``: parameters and
    batch-norm statistics, exactly; every other tensor of ``dst`` stays as it was.

    Returns the copied module paths, in order, each once (``["g", "dynamics"]`` copies the dynamics
    network once). Raises ``ValueError`` for unknown parts or architectures that differ.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown transfer parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    if dst.spec != src.spec or dst.num_actions != src.num_actions or dst.action_dim != src.action_dim:
        raise ValueError(f"cannot transfer between different architectures: {src.spec} vs {dst.spec}")
    copied: list[str] = []
    for part in parts:
        for name in PARTS[part]:
            if name in copied or any(name.startswith(c + ".") for c in copied):
                continue
            dst.get_submodule(name).load_state_dict(src.get_submodule(name).state_dict())
            copied.append(name)
    return copied


def freeze_representation(net: EfficientZeroNet) -> int:
    """Disable gradients of ``h`` (representation network); returns the number of frozen tensors."""
    n = 0
    for param in net.representation_net.parameters():
        param.requires_grad_(False)
        n += 1
    return n


@dataclass
class TaskWeights:
    """Task weights ``eta`` of the offline games (XTRA Eq. 1 and Appendix B). Steps are gradient steps."""

    games: list[str]
    cfg: TaskWeightConfig
    eta: np.ndarray = field(init=False)
    counts: np.ndarray = field(init=False)
    history: list[tuple[int, list[float]]] = field(default_factory=list)

    window_index: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        self.eta = np.ones(len(self.games))
        self.counts = np.zeros(len(self.games), dtype=np.int64)

    def in_window(self, step: int) -> bool:
        """True while ``step`` lies in the measuring window of a cycle (after ``start``)."""
        return step >= self.cfg.start and (step - self.cfg.start) % self.cfg.cycle < self.cfg.window

    def observe(self, step: int, cosines: np.ndarray) -> bool:
        """Count one window step's cosines ``[m]``; at the window's last step set ``eta = count / N``.

        Counts belong to one window: the first step observed in a new window starts them from 0,
        so a window whose last step was never observed cannot carry its counts into the next one,
        and ``0 <= eta <= 1`` always.

        Returns True when ``eta`` was updated. Raises ``ValueError`` for a step outside a window or
        cosines of the wrong length.
        """
        if not self.in_window(step):
            raise ValueError(f"step {step} is outside a measuring window")
        cosines = np.asarray(cosines)
        if cosines.shape != self.counts.shape:
            raise ValueError(f"expected {len(self.games)} cosines (one per offline game), got shape {cosines.shape}")
        window = (step - self.cfg.start) // self.cfg.cycle
        if window != self.window_index:
            self.counts = np.zeros_like(self.counts)
            self.window_index = window
        self.counts += cosines > self.cfg.threshold
        if (step - self.cfg.start) % self.cfg.cycle == self.cfg.window - 1:
            self.eta = self.counts / self.cfg.window
            self.counts = np.zeros_like(self.counts)
            self.history.append((step + 1, self.eta.tolist()))
            return True
        return False

    def as_dict(self) -> dict[str, float]:
        return {g: float(e) for g, e in zip(self.games, self.eta)}

    def state(self) -> dict:
        """JSON-able state for resume."""
        return {"eta": self.eta.tolist(), "counts": self.counts.tolist(), "history": self.history,
                "window_index": self.window_index}

    def load(self, state: dict) -> None:
        self.eta = np.asarray(state["eta"], dtype=np.float64)
        self.counts = np.asarray(state["counts"], dtype=np.int64)
        self.history = [(int(s), list(e)) for s, e in state["history"]]
        self.window_index = int(state.get("window_index", -1))
