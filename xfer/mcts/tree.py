"""Array-based search tree for batched MCTS over ``B`` roots (numpy backend).

Implements the tree statistics, pUCT selection and backup of EfficientZero (Ye et al. 2021,
section 3 and its released search), which follows MuZero (Schrittwieser et al. 2020, appendix B)
with two changes: edge rewards come from a *value prefix* (``r = prefix(child) - prefix(parent)``,
with the prefix LSTM reset every ``value_prefix_horizon`` depths), and an unvisited child is scored with
the parent's *mean Q* instead of 0. The planning-depth cut (``max_depth``) is the "One-Step" knob
of the planning ablations (Hamrick et al. 2021) used by XTRA's seed-001 experiments.

Layout
------
A :class:`Tree` holds ``B`` trees of ``N = num_simulations + 1`` node slots. Node ``0`` of each
tree is its root; simulation ``s`` (0-based) writes its new leaf into slot ``s + 1``. All arrays
are flat and *node-major*: node ``n`` of root ``b`` is row ``n * B + b``, so the ``B`` roots are
rows ``0..B-1`` and the ``B`` leaves made by one simulation are the contiguous rows
``(s+1)*B .. (s+2)*B - 1``. Row ``M = N * B`` is a write-only dummy that pads ragged paths.

* node arrays ``[M + 1]``: ``visits`` int64, ``value_sum`` float64, ``value_prefix`` float64,
  ``reward`` float64 (reward of the edge *into* the node), ``depth`` int32;
* ``children [M + 1, A]`` int32: local id of the child (``0`` = unexpanded; the root is never a
  child);
* ``edges [M + 1, 3 * A + 3]`` float64, the packed statistics one descent step reads with a
  single row gather: ``PW = prior / (1 + n)`` (``A`` columns; ``n`` = child visits), ``Q`` of the
  child edge (``A`` columns, 0 while unvisited), ``UNVISITED`` 1.0 / 0.0 (``A`` columns), then
  three node scalars: ``COEF = puct_coefficients[visits - 1]`` (a non-root node's children-visit
  sum is ``visits - 1``), ``QSUM`` = sum of ``Q`` over visited children, ``NVIS`` = number of
  visited children + 1 (the denominator of the mean-Q rule below the root). ``PW`` is updated as ``PW * n / (n + 1)`` on each visit (relative rounding
  drift ~1e-16 per visit); the prior itself is ``PW * (1 + n)``;
* per-root min-max statistics ``min_q``, ``max_q [B]`` float64 (``+inf`` / ``-inf`` when empty).

Arithmetic is float64 (so the ``TIE_EPS = 1e-9`` tie rule is meaningful); the driver returns
float32. :func:`xfer.mcts.run_search` keeps these arrays in a small per-thread cache and reuses
them across searches of the same shape, which avoids page-faulting fresh memory on every call;
every slot a search reads is written by that search first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from xfer.config import SearchConfig

TIE_EPS = 1e-9
"""Scores within this of each other are ties; ties are broken uniformly at random (see ``select``)."""

_WORKSPACE_SLOTS = 4
_cache = threading.local()
try:  # einsum's C entry point, without the Python wrapper's per-call overhead (~2 us)
    from numpy.core.multiarray import c_einsum as _einsum
except ImportError:  # pragma: no cover
    _einsum = np.einsum


def clear_workspace_cache() -> None:
    """Drop this thread's cached tree arrays (they are reused by :func:`xfer.mcts.run_search`)."""
    _cache.__dict__.pop("lru", None)


def masked_softmax(logits: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Row softmax of ``logits [B, A]`` (any float dtype) → float64 ``[B, A]``.

    With ``mask [B, A]`` bool, illegal entries get probability exactly 0 and the softmax runs over
    the legal entries only (each row needs at least one legal entry).
    """
    x = np.asarray(logits, dtype=np.float64)
    if mask is not None:
        x = np.where(mask, x, -np.inf)
    x = x - x.max(axis=1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=1, keepdims=True)
    return x


def _softmax_into(out: np.ndarray, logits: np.ndarray) -> None:
    """Unmasked row softmax of ``logits [b, A]`` written into the float64 view ``out [b, A]``.

    The max shift is skipped unless ``exp`` overflows or underflows a whole row (those rows then
    use :func:`masked_softmax`); network logits are far from that range in practice.
    """
    x = np.exp(logits, dtype=np.float64)  # (numpy warns on overflow: logits > 709 are pathological)
    tot = _einsum("ba->b", x)
    if not (np.isfinite(tot).all() and (tot > 0.0).all()):
        rows = np.flatnonzero(~np.isfinite(tot) | (tot <= 0.0))
        x[rows] = masked_softmax(np.asarray(logits)[rows])
        tot[rows] = 1.0
    np.divide(1.0, tot, out=tot)
    np.multiply(x, tot[:, None], out=out)


def puct_coefficients(num_simulations: int, c1: float, c2: float) -> np.ndarray:
    """Table ``[num_simulations + 1]`` float64 of ``sqrt(Nc) * (c1 + log((Nc + c2 + 1) / c2))``.

    ``Nc`` is the sum of the visit counts of a node's children (MuZero appendix B, pUCT); it never
    exceeds ``num_simulations`` so the exploration coefficient is a table lookup.
    """
    nc = np.arange(num_simulations + 1, dtype=np.float64)
    return np.sqrt(nc) * (c1 + np.log((nc + c2 + 1.0) / c2))


@dataclass
class Selection:
    """Outcome of one batched descent (one simulation), all arrays ``[B]``.

    ``depth`` int64: depth of the leaf reached (>= 1). ``parent`` int32 / ``edge`` int64: parent
    node id (local to its tree) and the index of the last edge (its action comes from the edge
    table, :mod:`xfer.mcts.edges`; for discrete actions the index is the action id). ``expand`` bool: True where that edge
    was unexpanded and the model must create node ``sim + 1``; False only under ``max_depth`` when
    an existing node at depth ``max_depth`` was reached (it is backed up again with its current
    value). ``reset_lstm`` bool: ``depth(parent) % value_prefix_horizon == 0``. ``any_expand`` /
    ``all_expand``: whether some / every root expands; ``max_depth``: ``depth.max()``.
    """

    depth: np.ndarray
    parent: np.ndarray
    edge: np.ndarray
    expand: np.ndarray
    reset_lstm: np.ndarray
    any_expand: bool
    all_expand: bool
    max_depth: int


class _Arrays:
    """The big per-search buffers of a :class:`Tree` (see the module docstring for the layout)."""

    def __init__(self, B: int, N: int, A: int) -> None:
        M = N * B
        self.visits = np.zeros(M + 1, np.int64)
        self.value_sum = np.zeros(M + 1, np.float64)
        self.value_prefix = np.zeros(M + 1, np.float64)
        self.reward = np.zeros(M + 1, np.float64)
        self.depth = np.zeros(M + 1, np.int32)
        self.children = np.zeros((M + 1, A), np.int32)
        self.edges = np.zeros((M + 1, 3 * A + 3), np.float64)
        # depth-major path of the current descent; unused entries hold the dummy row / edge
        self.path_node = np.full((N + 2, B), M, np.int64)
        self.path_cid = np.full((N + 2, B), M * A, np.int64)
        self.in_use = False


def _cached_arrays(B: int, N: int, A: int) -> _Arrays:
    lru: OrderedDict | None = getattr(_cache, "lru", None)
    if lru is None:
        lru = _cache.lru = OrderedDict()
    key = (B, N, A)
    arrays = lru.get(key)
    if arrays is not None and arrays.in_use:  # a search of this shape is running (nested call)
        return _Arrays(B, N, A)
    arrays = lru.pop(key, None)
    if arrays is None:
        arrays = _Arrays(B, N, A)
        while len(lru) >= _WORKSPACE_SLOTS:
            lru.popitem(last=False)
    lru[key] = arrays
    return arrays


class Tree:
    """``B`` search trees of ``num_simulations + 1`` node slots, stored as flat numpy arrays.

    Args:
        batch: number of roots ``B``.
        num_simulations: simulations ``S`` this tree will hold (``N = S + 1`` node slots per root).
        num_actions: ``A``.
        cfg: :class:`xfer.config.SearchConfig` (``c1``, ``c2``, ``discount``, ``min_max_delta``,
            ``value_prefix_horizon``, ``max_depth`` are read).
        reuse_buffers: take the arrays from this thread's cache instead of allocating them; they
            stay reserved until :meth:`release` (after which this tree must not be used).

    Call :meth:`set_roots` once, then per simulation :meth:`select`, :meth:`expand` (when
    ``Selection.any_expand``) and :meth:`backup`.
    """

    def __init__(
        self, batch: int, num_simulations: int, num_actions: int, cfg: SearchConfig, reuse_buffers: bool = False
    ) -> None:
        B, A, S = int(batch), int(num_actions), int(num_simulations)
        N = S + 1
        M = N * B
        self.B, self.A, self.S, self.N, self.M = B, A, S, N, M
        self.K = 3 * A + 3  # row width of ``edges``
        self.Q, self.UNV = A, 2 * A  # first column of the Q and UNVISITED fields (PW starts at 0)
        self.COEF, self.QSUM, self.NVIS = 3 * A, 3 * A + 1, 3 * A + 2
        self.discount = float(cfg.discount)
        self.min_max_delta = float(cfg.min_max_delta)
        self.value_prefix_horizon = int(cfg.value_prefix_horizon)
        self.max_depth = int(cfg.max_depth)
        self.root_expand_all = bool(cfg.root_expand_all)
        self.coef = puct_coefficients(S, cfg.c1, cfg.c2)
        arr = _cached_arrays(B, N, A) if reuse_buffers else _Arrays(B, N, A)
        arr.in_use = True
        self._arrays = arr
        self.visits, self.value_sum = arr.visits, arr.value_sum
        self.value_prefix, self.reward, self.depth = arr.value_prefix, arr.reward, arr.depth
        self.children, self.edges = arr.children, arr.edges
        self.path_node, self.path_cid = arr.path_node, arr.path_cid
        self._children_f = self.children.reshape(-1)
        self._edges_f = self.edges.reshape(-1)
        # a fresh row of ``edges`` after its PW columns: Q = 0, UNVISITED = 1, COEF = QSUM = 0, NVIS = 1
        self._row_tail = np.zeros(self.K - A)
        self._row_tail[A : 2 * A] = 1.0
        self._row_tail[-1] = 1.0
        self.min_q = np.full(B, np.inf)
        self.max_q = np.full(B, -np.inf)
        # normQ(x) = (x - min_q) * inv with inv = 1 / max(max_q - min_q, delta); 0 while empty
        self._inv = np.zeros(B)
        self._all_seen = False
        self.root_bias = np.zeros((B, A))  # 0 for legal actions, -inf for illegal (every depth)
        self.legal = np.ones((B, A), bool)
        self._all_legal = True
        self._arange = np.arange(B)
        self._all_true = np.ones(B, bool)
        self._reset_table = np.arange(N + 1) % self.value_prefix_horizon == 0
        self.path_node.fill(M)
        self.path_node[0] = self._arange
        self.path_cid.fill(M * A)
        self._pw_q_cols = np.array([0, self.Q])
        self._field_cols = np.array([0, self.Q, self.UNV])
        self._last_child = np.zeros(B, np.int32)
        self._sel: Selection | None = None
        self._leaf_value = np.zeros(B)

    def release(self) -> None:
        """Return cached buffers to this thread's cache (the tree must not be used afterwards)."""
        self._arrays.in_use = False

    # ------------------------------------------------------------------ roots
    def set_roots(self, prior: np.ndarray, legal: np.ndarray) -> None:
        """Expand the ``B`` roots: ``prior [B, A]`` (already masked/noised, 0 on illegal) and
        ``legal [B, A]`` bool. Roots have ``value_prefix = 0``, depth 0 and 0 visits."""
        B, A, M = self.B, self.A, self.M
        self.legal = np.asarray(legal, bool)
        self._all_legal = bool(self.legal.all())
        for arr in (self.visits, self.value_sum, self.value_prefix, self.reward, self.depth):
            arr[:B] = 0
            arr[M] = 0
        # the dummy's value is NaN so its Q is NaN, which the fmin/fmax min-max update ignores
        self.value_sum[M] = np.nan
        self.children[:B] = 0
        self.edges[:B, :A] = prior
        self.edges[:B, A:] = self._row_tail
        self.root_bias = np.where(self.legal, 0.0, -np.inf)

    # ------------------------------------------------------------------ selection
    def select(self, sim: int, jitter: np.ndarray) -> Selection:
        """Descend all ``B`` trees from their roots to an unexpanded edge (batched pUCT).

        ``jitter [B, A]`` float64 in ``[0, TIE_EPS)``, i.i.d. uniform rows the caller draws afresh
        for each simulation, is added to the scores of every node on this descent (row ``b`` for
        root ``b``), so scores within ``TIE_EPS`` count as ties and exact ties are broken uniformly
        at random, deterministically given the generator that drew the jitter.

        Score of action ``a`` at node ``p`` (EfficientZero): ``prior(a) * coef(Nc) / (1 + n(a)) +
        normQ(a)`` where ``Nc`` = sum of child visits of ``p``, ``coef`` = :func:`puct_coefficients`
        and ``normQ = clip((Q - min) / max(max - min, min_max_delta), 0, 1)`` with the root's
        min-max statistics (``normQ = 0`` while they are empty). An unvisited child's ``Q`` is
        ``mean_q(p)``: at the root ``sum Q(visited) / #visited`` (0 if none); below it
        ``(mean_q(parent) + sum Q(visited)) / (#visited + 1)``. Illegal actions (the root's
        ``legal`` mask, the game's action set) score -inf at every depth, so they are never
        selected nor expanded anywhere in the tree (XTRA; :meth:`expand` gives them prior 0).

        ``root_expand_all``: at the root only unexpanded legal actions compete (by the same score)
        while any remain, so every legal root action is expanded once before pUCT allocates the
        rest (needed for completed-Q targets with fewer simulations than a pUCT search spends
        discovering the actions).

        ``max_depth > 0``: at depth ``max_depth - 1`` only unexpanded (legal) actions compete while
        any remain; once all are expanded the pUCT choice among them ends the descent at an existing
        node of depth ``max_depth`` (``Selection.expand`` False); nothing is ever deeper.

        Implementation: per depth level, one row gather of the active nodes' packed statistics,
        one ``einsum`` (``score = PW * coef + inv * (Q + UNVISITED * mean_q)``, ``inv = 1 /
        max(max - min, min_max_delta)``, 0 while the statistics are empty) and one ``argmax`` over
        the roots still descending. Two exact simplifications: the per-root constant ``-min * inv``
        of ``normQ`` is left out (it cannot change a row's argmax, nor which scores tie), and the
        clip to ``[0, 1]`` is a no-op, because every stored Q was itself added to the min-max
        statistics and every mean Q is an average of such Qs and of the parent's mean Q (the root's
        is 0 only before the first backup, while the statistics are still empty), so all of them
        lie in ``[min, max]``.
        """
        B, A, K3 = self.B, self.A, 3 * self.A
        edges, inv = self.edges, self._inv
        cut = self.max_depth - 1 if self.max_depth > 0 else -1
        path_node, path_cid = self.path_node, self.path_cid
        depth = np.empty(B, np.int64)  # leaf depth of each root
        if cut >= 0:
            self._last_child.fill(0)  # roots that stop above the cut level expand (child 0)
        # ---- level 0: all roots, contiguous rows 0..B-1 (no gather)
        R = edges[:B]
        nvis = R[:, self.NVIS] - 1.0
        np.maximum(nvis, 1.0, out=nvis)
        meanq = R[:, self.QSUM] / nvis  # (QSUM = 0 when no child is visited yet)
        W = np.empty((B, 3))
        W[:, 0] = self.coef[sim]
        W[:, 1] = inv
        np.multiply(meanq, inv, out=W[:, 2])
        score = _einsum("bfa,bf->ba", R[:, :K3].reshape(B, 3, A), W)
        score += self.root_bias
        score += jitter
        if cut == 0 or self.root_expand_all:
            self._restrict_to_unexpanded(score, self._arange, self.legal)
        a = score.argmax(axis=1)
        act = rows = self._arange
        level = 0
        while True:
            cid = rows * A
            cid += a
            child = self._children_f.take(cid)
            if level == 0:
                path_cid[1] = cid
                depth.fill(1)
            else:
                path_cid[level + 1, act] = cid
                depth[act] = level + 1
            if level == cut:
                self._last_child[act] = child
                break
            keep = child.nonzero()[0]
            if keep.size == 0:
                break
            if keep.size == act.size:  # nobody stopped: no compaction needed
                rows = np.multiply(child, B, dtype=np.int64)
            else:
                act = act.take(keep)
                rows = np.multiply(child.take(keep), B, dtype=np.int64)
                meanq = meanq.take(keep)
            rows += act
            path_node[level + 1, act] = rows
            level += 1
            # ---- level >= 1: gather the active rows; the gathered copy's three node-scalar
            # columns [COEF, QSUM, NVIS] become the einsum weights [coef, inv, inv * mean_q]
            R = edges.take(rows, axis=0)
            meanq += R[:, self.QSUM]
            meanq /= R[:, self.NVIS]  # = #visited + 1
            W = R[:, K3:]
            inv_a = inv.take(act)
            W[:, 1] = inv_a
            np.multiply(meanq, inv_a, out=W[:, 2])
            score = _einsum("bfa,bf->ba", R[:, :K3].reshape(-1, 3, A), W)
            score += jitter.take(act, axis=0)
            if not self._all_legal:  # the game's illegal actions lose at every depth (XTRA)
                score += self.root_bias.take(act, axis=0)
            if level == cut:
                self._restrict_to_unexpanded(score, rows, None if self._all_legal else self.legal.take(act, axis=0))
            a = score.argmax(axis=1)
        L = level + 1  # deepest leaf of this simulation
        D = depth
        if cut >= 0:
            expand = self._last_child == 0
            leaf = np.where(expand, sim + 1, self._last_child) * B
            n_exp = int(np.count_nonzero(expand))
        else:
            expand = self._all_true
            leaf = self._arange * 0
            leaf += (sim + 1) * B
            n_exp = B
        at = D * B
        at += self._arange
        leaf += self._arange
        path_node.reshape(-1)[at] = leaf
        parent = path_node.reshape(-1).take(at - B)
        parent //= B
        action = path_cid.reshape(-1).take(at)
        action %= A
        reset = self._reset_table.take(D - 1)
        sel = Selection(D, parent.astype(np.int32), action, expand, reset, n_exp > 0, n_exp == B, L)
        self._sel = sel
        return sel

    def _restrict_to_unexpanded(self, score: np.ndarray, rows: np.ndarray, legal: np.ndarray | None) -> None:
        """``max_depth`` / ``root_expand_all`` rule: where a row still has an unexpanded (legal)
        action, expanded ones lose."""
        unexpanded = self.children.take(rows, axis=0) == 0
        if legal is not None:
            unexpanded &= legal
        has = unexpanded.any(axis=1)
        score[has[:, None] & ~unexpanded] = -np.inf

    # ------------------------------------------------------------------ expansion
    def expand(
        self, sim: int, value_prefix: np.ndarray, value: np.ndarray, policy_logits: np.ndarray
    ) -> None:
        """Create node ``sim + 1`` under the selected edge of every root with ``Selection.expand``.

        Inputs are the model outputs for all ``B`` roots: ``value_prefix [B]``, ``value [B]``,
        ``policy_logits [B, A]`` (rows of non-expanding roots are ignored). The new node gets
        ``reward = value_prefix - (0 if reset_lstm else value_prefix(parent))``, the softmax prior
        over the root's legal actions (illegal ones get prior 0: XTRA slices the 18 logits to the
        game's action ids at every node, so no prior mass goes to actions the game does not have;
        EfficientZero's single-game head has only the legal actions), depth = leaf depth, and its
        leaf value ``value`` is what :meth:`backup` propagates.
        """
        sel = self._sel
        assert sel is not None
        B, A = self.B, self.A
        lo = (sim + 1) * B
        vp = np.asarray(value_prefix, np.float64)
        if sel.all_expand:
            b = self._arange
            logits = np.asarray(policy_logits)
            leaf_value = value
            parent, reset, depth, action = sel.parent, sel.reset_lstm, sel.depth, sel.edge
            rows = self.edges[lo : lo + B]
            new: slice | np.ndarray = slice(lo, lo + B)
        else:
            b = np.flatnonzero(sel.expand)
            vp = vp[b]
            logits = np.asarray(policy_logits)[b]
            leaf_value = np.asarray(value)[b]
            parent, reset, depth, action = sel.parent[b], sel.reset_lstm[b], sel.depth[b], sel.edge[b]
            new = lo + b
            rows = np.empty((b.size, self.K))
        parent_flat = parent * B
        parent_flat += b
        base = self.value_prefix.take(parent_flat)
        base[reset] = 0.0
        self.value_prefix[new] = vp
        self.reward[new] = vp - base
        self.depth[new] = depth
        self.visits[new] = 0
        self.value_sum[new] = 0.0
        self.children[new] = 0
        if not self._all_legal:  # prior over the game's legal actions only (XTRA slices the logits)
            logits = np.where(self.legal[b], logits, -np.inf)
        _softmax_into(rows[:, :A], logits)
        rows[:, A:] = self._row_tail
        if not sel.all_expand:
            self.edges[new] = rows
        parent_flat *= A
        parent_flat += action
        self._children_f[parent_flat] = sim + 1
        self._leaf_value[b] = leaf_value

    # ------------------------------------------------------------------ backup
    def backup(self) -> None:
        """Back the leaf value up the path of the last :meth:`select` (EfficientZero backup).

        From the leaf up: ``value_sum += G; visits += 1``; the edge into the node gets
        ``Q = r + discount * value_sum / visits`` and updates the root's min-max statistics (the
        root has no edge and is skipped); then ``G = r + discount * G``. The leaf value is the
        model's value for a new node, or the node's current mean value for a ``max_depth`` revisit.
        Vectorised over the whole depth-major ``[depth, B]`` path at once; also refreshes the
        packed ``PW``, ``Q``, ``UNVISITED`` edge columns and the ``COEF``, ``QSUM``, ``NVIS`` node
        columns the next descent reads.
        """
        sel = self._sel
        assert sel is not None
        D = sel.depth
        M, A, K, B, gamma = self.M, self.A, self.K, self.B, self.discount
        if not sel.all_expand:
            rev = np.flatnonzero(~sel.expand)
            if rev.size:
                leaf = self.path_node[D[rev], rev]
                self._leaf_value[rev] = self.value_sum.take(leaf) / self.visits.take(leaf)
        L = sel.max_depth
        # entries past a root's leaf hold the dummy row M (reward 0, value NaN) and edge M * A
        nodes = self.path_node[: L + 1]
        cids = self.path_cid[1 : L + 1]
        rew = self.reward.take(nodes)
        # G[j] = rew[j+1] + disc[j] * G[j+1], with disc = 1 past the leaf so G stays the leaf value
        disc = np.not_equal(nodes[1:], M).astype(np.float64)
        disc *= gamma - 1.0
        disc += 1.0
        G = np.empty((L + 1, B))
        G[L] = self._leaf_value
        for j in range(L - 1, -1, -1):
            np.multiply(disc[j], G[j + 1], out=G[j])
            G[j] += rew[j + 1]
        # Q of every edge on the path (NaN for padding: the dummy's value_sum is NaN)
        nd = nodes[1:]
        q = self.value_sum.take(nd)
        q += G[1:]
        cnt = self.visits.take(nd)
        cnt += 1
        q /= cnt
        q *= gamma
        q += rew[1:]
        # scatter only the real (non-padding) entries: compact them first
        live = (nd.reshape(-1) != M).nonzero()[0]
        ndl = nd.reshape(-1).take(live)
        self.value_sum[ndl] += G[1:].reshape(-1).take(live)
        self.visits[ndl] += 1
        self.value_sum[:B] += G[0]  # the roots (level 0) are always on the path
        self.visits[:B] += 1
        cid = cids.reshape(-1).take(live)
        ql = q.reshape(-1).take(live)
        cntl = cnt.reshape(-1).take(live)
        # flat ``edges`` indices: parent row start (row * K) and the edge's PW column (+ action)
        prow = cid // A
        pe = cid - prow * A
        prow *= K
        pe += prow
        ef = self._edges_f
        old = ef.take(pe[:, None] + self._pw_q_cols)  # [n, 2]: old PW, old Q
        new = np.empty((live.size, 3))
        cntf = cntl.astype(np.float64)
        np.divide(cntf, cntf + 1.0, out=new[:, 0])  # PW = prior / (1 + n): n_old = cnt - 1 -> cnt
        new[:, 0] *= old[:, 0]
        new[:, 1] = ql
        new[:, 2] = 0.0
        ef[pe[:, None] + self._field_cols] = new
        prow += self.QSUM
        ef[prow] += ql - old[:, 1]  # parent rows are distinct within one simulation
        prow += 1
        ef[prow] += cntl == 1  # NVIS: +1 the first time a child is visited
        ndl *= K
        ndl += self.COEF
        ef[ndl] = self.coef.take(cntl - 1)
        # min-max statistics over the path's edge Q values (NaN = padding, ignored by fmin/fmax)
        np.fmin(self.min_q, np.fmin.reduce(q, axis=0), out=self.min_q)
        np.fmax(self.max_q, np.fmax.reduce(q, axis=0), out=self.max_q)
        inv = self._inv
        np.subtract(self.max_q, self.min_q, out=inv)
        np.maximum(inv, self.min_max_delta, out=inv)
        np.divide(1.0, inv, out=inv)
        if not self._all_seen:
            seen = self.max_q >= self.min_q
            self._all_seen = bool(seen.all())
            inv[~seen] = 0.0
        # restore the padding of the path entries this simulation used
        self.path_node[1 : L + 1] = M
        self.path_cid[1 : L + 1] = M * A

    # ------------------------------------------------------------------ read-out
    def node_index(self, node: np.ndarray | int, root: np.ndarray | int) -> np.ndarray:
        """Flat row (int64) of local node id(s) ``node`` of root(s) ``root``."""
        return np.asarray(node, np.int64) * self.B + np.asarray(root, np.int64)

    def node_value(self, node, root) -> np.ndarray:
        """Mean value ``value_sum / visits`` (nan when unvisited) of local node(s) of root(s)."""
        i = self.node_index(node, root)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.value_sum[i] / self.visits[i]

    def child_stats(self, node: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Visit counts ``[B, A]`` int64 and Q ``[B, A]`` float64 (nan if unvisited) of the
        children of local node ``node`` in every tree."""
        rows = self.node_index(node, self._arange)
        ch = self.children[rows]
        n = np.where(ch > 0, self.visits[ch.astype(np.int64) * self.B + self._arange[:, None]], 0)
        q = np.where(n > 0, self.edges[rows, self.Q : self.Q + self.A], np.nan)
        return n, q

    def child_prior(self, node: int = 0) -> np.ndarray:
        """Prior ``[B, A]`` float64 of the children of local node ``node`` (``PW * (1 + n)``)."""
        rows = self.node_index(node, self._arange)
        n, _ = self.child_stats(node)
        return self.edges[rows, : self.A] * (1.0 + n)
