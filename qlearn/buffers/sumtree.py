"""Sum tree for proportional prioritized replay (Schaul et al., 2016, "Prioritized Experience Replay", App. B.2.1).

Sampling i with probability P(i) = p_i / sum_k p_k takes O(log N): draw a prefix sum u ~ U[0, total) and walk down
from the root, going left when u < (sum of the left subtree) and right (subtracting it) otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

_SCALAR_MAX = 8  # update() walks up the tree in Python for at most this many indices

class SumTree:
    """A complete binary tree in one flat float64 array; every internal node holds the sum of its two children.

    Node 1 is the root, node ``i`` has children ``2i`` and ``2i + 1``, and the ``P`` leaves (``P`` = the next power of
    two >= ``capacity``) live at ``[P, 2P)``. Leaves past ``capacity`` stay 0. ``update`` and ``find`` are vectorised
    over a batch: one numpy pass per tree level, ``log2(P)`` levels.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"SumTree capacity must be >= 1, got {capacity}.")
        self.capacity = int(capacity)
        self._leaf0 = 1 << (self.capacity - 1).bit_length()  # P, index of the first leaf
        self._depth = self._leaf0.bit_length() - 1  # log2(P): levels between root and leaves
        self._tree = np.zeros(2 * self._leaf0, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all priorities (the root)."""
        return float(self._tree[1])

    @property
    def nbytes(self) -> int:
        return int(self._tree.nbytes)

    def _check(self, idx: np.ndarray) -> None:
        if idx.size and (idx.min() < 0 or idx.max() >= self.capacity):
            raise IndexError(f"SumTree index out of range [0, {self.capacity}): {idx.min()}..{idx.max()}.")

    def get(self, indices: np.ndarray) -> np.ndarray:
        """Priorities of ``indices`` (any shape)."""
        idx = np.asarray(indices, dtype=np.int64)
        self._check(idx)
        return self._tree[idx + self._leaf0]

    __getitem__ = get

    def update(self, indices: np.ndarray, priorities: np.ndarray | float) -> None:
        """Set leaves ``indices`` [n] to ``priorities`` [n] (or a scalar); with repeated indices the last write wins."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)  # [n]
        pri = np.broadcast_to(np.asarray(priorities, dtype=np.float64), idx.shape).reshape(-1)  # [n]
        if idx.size <= _SCALAR_MAX:  # an env step's few writes: a scalar walk beats numpy calls on tiny arrays
            self._update_scalar(idx.tolist(), pri.tolist())
            return
        self._check(idx)
        if not np.all((pri >= 0.0) & (pri < np.inf)):
            raise ValueError("priorities must be finite and >= 0.")
        order = np.argsort(idx, kind="stable")  # dedupe, keeping the last occurrence: the last of each run
        idx, pri = idx[order], pri[order]
        last = np.empty(idx.size, dtype=bool)
        last[:-1] = idx[1:] != idx[:-1]
        last[-1] = True
        nodes = idx[last] + self._leaf0
        self._tree[nodes] = pri[last]
        for _ in range(self._depth):  # recompute parents from children, level by level (exact, no drift)
            nodes >>= 1  # repeated parents are fine: they all receive the same sum
            left = nodes << 1
            self._tree[nodes] = self._tree[left] + self._tree[left + 1]

    def _update_scalar(self, indices: list[int], priorities: list[float]) -> None:
        tree = self._tree
        for i, p in zip(indices, priorities):
            if not 0 <= i < self.capacity:
                raise IndexError(f"SumTree index {i} out of range [0, {self.capacity}).")
            if not 0.0 <= p < float("inf"):
                raise ValueError(f"priorities must be finite and >= 0, got {p}.")
            node = i + self._leaf0
            tree[node] = p
            while node > 1:
                node >>= 1
                tree[node] = tree[2 * node] + tree[2 * node + 1]

    def find(self, prefix_sums: np.ndarray) -> np.ndarray:
        """Leaf index ``i`` per prefix sum ``u`` with ``sum_{k<i} p_k <= u < sum_{k<=i} p_k`` (vectorised descent).

        ``u`` is clipped to ``[0, total]``. The result always has positive priority: the rare walk that rounding
        (or ``u = total``) pushes into a zero-sum subtree is redone refusing to enter one.
        """
        total = self._tree[1]
        if not total > 0.0:
            raise ValueError("SumTree.find: all priorities are zero.")
        u = np.clip(np.asarray(prefix_sums, dtype=np.float64), 0.0, total)  # [n]
        leaf = self._descend(u.copy(), guarded=False)
        stray = self._tree[leaf + self._leaf0] <= 0.0
        if stray.any():
            leaf[stray] = self._descend(u[stray], guarded=True)
        return leaf

    def _descend(self, u: np.ndarray, guarded: bool) -> np.ndarray:
        node = np.ones(u.shape, dtype=np.int64)  # [n] start at the root
        for _ in range(self._depth):
            left = node << 1
            left_sum = self._tree[left]
            go_right = u >= left_sum
            if guarded:
                go_right &= self._tree[left + 1] > 0.0
            u -= left_sum * go_right
            node = left + go_right
        return node - self._leaf0

    def _rebuild(self) -> None:
        """Recompute every internal node from the leaves, bottom-up, one slice per level."""
        for level in range(self._depth - 1, -1, -1):
            lo = 1 << level
            self._tree[lo : 2 * lo] = self._tree[2 * lo : 4 * lo : 2] + self._tree[2 * lo + 1 : 4 * lo : 2]

    def state_dict(self) -> dict[str, Any]:
        leaves = self._tree[self._leaf0 : self._leaf0 + self.capacity]
        return {"capacity": self.capacity, "priorities": torch.from_numpy(leaves.copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"SumTree state has capacity {state['capacity']}, this tree {self.capacity}.")
        self._tree[:] = 0.0
        self._tree[self._leaf0 : self._leaf0 + self.capacity] = state["priorities"].numpy()
        self._rebuild()
