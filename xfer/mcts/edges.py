"""What each edge of the search tree stands for: the tree works on edge indices, the model on actions.

The tree (:mod:`xfer.mcts.tree`) gives every node ``E`` edge slots and selects, expands and backs up
by edge index. An edge table turns the edges a simulation selected into the actions the model's
dynamics network takes. Discrete actions: edge ``k`` is action id ``k`` (``E = A``, nothing
stored). Sampled MuZero (Hubert et al. 2021; continuous control, Meta-World) samples ``K`` actions
per expanded node; its table stores those vectors (``[B, N, K, D]`` float32, written when a node is
expanded) and returns the selected ones, so the tree needs no rewrite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DiscreteEdges:
    """Edge ``k`` of every node is action id ``k`` of a ``Discrete(num_edges)`` space."""

    num_edges: int

    def actions(self, parent: np.ndarray, edge: np.ndarray) -> np.ndarray:
        """The actions of the selected edges: ``parent [B]`` int32 node ids (unused: every node has the
        same edges), ``edge [B]`` int64 -> ``[B]`` int64 action ids."""
        return edge
