"""Transfer of pretrained world-model parts and XTRA's periodic task re-weighting.

- :func:`transfer_parts` copies the representation ``h`` (with its SimSiam projection), dynamics
  ``g`` and/or prediction ``f`` networks from a pretrained model; the rest keeps its fresh
  initialisation (XTRA Fig. 8).
- :func:`freeze_representation` stops gradients into ``h`` (XTRA Fig. 7b).
- :class:`TaskWeights` implements Appendix B: cycles of ``T`` gradient steps; during the first
  ``N`` steps of a cycle, count the steps where the cosine similarity between the target-task
  gradient and offline task ``i``'s gradient exceeds the threshold; at the window's end
  ``eta_i = count_i / N``. Weights are 1 until the first update, and updates start at ``start``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xfer.config import TaskWeightConfig
from xfer.nets.efficientzero import EfficientZeroNet

PARTS = {
    "h": ("representation_net", "projection", "projection_head"),
    "g": ("dynamics_net",),
    "f": ("prediction_net",),
}


def transfer_parts(dst: EfficientZeroNet, src: EfficientZeroNet, parts: list[str]) -> list[str]:
    """Copy the modules of ``parts`` (subset of ``h``, ``g``, ``f``) from ``src`` into ``dst``.

    Returns the copied module names. Raises ``ValueError`` for unknown parts or specs that differ.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown transfer parts {sorted(unknown)}; choose from h, g, f")
    if dst.spec != src.spec or dst.num_actions != src.num_actions:
        raise ValueError(f"cannot transfer between different architectures: {src.spec} vs {dst.spec}")
    copied = []
    for part in parts:
        for name in PARTS[part]:
            getattr(dst, name).load_state_dict(getattr(src, name).state_dict())
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
