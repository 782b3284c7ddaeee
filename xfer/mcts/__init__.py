"""Batched MCTS over ``B`` roots with EfficientZero semantics (Ye et al. 2021; MuZero appendix B).

numpy backend: the tree lives in flat arrays (:mod:`xfer.mcts.tree`) and each simulation is a few
vectorised operations over all roots (:mod:`xfer.mcts.search`). XTRA (Xu et al. 2022) uses this
search unchanged; its planning ablations set ``MCTSConfig.max_depth`` and where search is used.
Box actions search over sampled actions (Sampled MuZero, Hubert et al. 2021): the same tree with
the edge table :class:`xfer.mcts.edges.SampledEdges` and the Gaussian policy of
:mod:`xfer.mcts.gaussian`.
"""

from xfer.mcts.edges import DiscreteEdges, SampledEdges, root_prior
from xfer.mcts.search import (
    RecurrentStep,
    RootInputs,
    SearchModel,
    SearchResult,
    run_search,
    select_action,
)
from xfer.mcts.tree import TIE_EPS, Selection, Tree, clear_workspace_cache, masked_softmax, puct_coefficients

__all__ = [
    "DiscreteEdges",
    "SampledEdges",
    "RecurrentStep",
    "RootInputs",
    "SearchModel",
    "SearchResult",
    "Selection",
    "TIE_EPS",
    "clear_workspace_cache",
    "Tree",
    "masked_softmax",
    "puct_coefficients",
    "root_prior",
    "run_search",
    "select_action",
]
