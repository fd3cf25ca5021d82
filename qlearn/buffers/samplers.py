"""Samplers: which flat buffer indices a `ReplayBuffer` proposes, and with which importance weights.

The buffer owns the data and rejects proposals that are not valid transition starts; a sampler only keeps one
number per slot (or none). Protocol, all indices flat (``env * ring_size + slot``):

- ``allocate(num_envs, ring_size)``: called once, when the buffer allocates its storage;
- ``propose(n, rng) -> [n] int64``;
- ``on_write(indices)``: a new transition start was written there;
- ``on_invalidate(indices)``: the slot no longer starts a transition (overwritten, or a final frame);
- ``weights(indices) -> [n] float32 | None``: called once per ``ReplayBuffer.sample``;
- ``update_priorities(indices, td_error)``, ``state_dict()``, ``load_state_dict(state)``, ``nbytes``;
- ``prioritized``: whether ``update_priorities`` does anything (the buffer skips the device-to-host copy if not);
- ``tracks_writes``: whether ``on_write``/``on_invalidate`` do anything now (if not, the buffer skips computing
  their indices).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from qlearn.buffers.sumtree import SumTree


class UniformSampler:
    """Uniform experience replay (Mnih et al., 2015, "Human-level control through deep RL", Alg. 1).

    Proposes slots uniformly from the ``num_envs x high`` rectangle of slots written so far (rings fill from slot
    0); rejection of invalid starts by the buffer keeps the result uniform over valid transitions.
    """

    prioritized = False

    def __init__(self) -> None:
        self._num_envs = 0
        self._ring = 0
        self._high = 0  # slots [0, high) of some ring have been written

    def allocate(self, num_envs: int, ring_size: int) -> None:
        self._num_envs, self._ring, self._high = int(num_envs), int(ring_size), 0

    @property
    def nbytes(self) -> int:
        return 0

    def propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._high == 0:
            raise RuntimeError("UniformSampler.propose: nothing has been written yet.")
        r = rng.integers(0, self._num_envs * self._high, size=n)  # [n]
        if self._high == self._ring:  # full rings: r is already the flat index
            return r
        return (r // self._high) * self._ring + r % self._high

    @property
    def tracks_writes(self) -> bool:
        """Only while the rings are still filling: writes then move ``high``."""
        return self._high < self._ring

    def on_write(self, indices: np.ndarray) -> None:
        if self._high < self._ring:  # a Python loop beats numpy at E <= 64
            ring, high = self._ring, self._high
            for index in indices.tolist():
                high = max(high, index % ring + 1)
            self._high = high

    def on_invalidate(self, indices: np.ndarray) -> None:
        pass

    def weights(self, indices: np.ndarray) -> None:
        return None

    def update_priorities(self, indices: np.ndarray, td_error: np.ndarray) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"high": self._high}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "high" not in state:
            raise ValueError("UniformSampler.load_state_dict: the state comes from another kind of sampler.")
        self._high = int(state["high"])


class PrioritizedSampler:
    """Proportional prioritized replay (Schaul et al., 2016, "Prioritized Experience Replay", Alg. 1).

    P(i) = p_i^alpha / sum_k p_k^alpha (Eq. 1) with p_i = |delta_i| + eps (Sec. 3.3); new transitions get the
    largest priority seen so far (Alg. 1 line 6; 1.0 at first). Importance weights w_i = (N P(i))^-beta / max_j w_j
    (Alg. 1 line 10); beta rises linearly from ``beta`` to 1 over ``beta_steps`` calls of ``weights`` (= buffer
    ``sample`` calls), Sec. 3.4. The tree stores p^alpha, so ``max_priority`` is kept in that space too.
    """

    prioritized = True
    tracks_writes = True

    def __init__(self, alpha: float = 0.6, beta: float = 0.4, beta_steps: int = 100_000, eps: float = 1e-6) -> None:
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}.")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}.")
        if beta_steps < 0:
            raise ValueError(f"beta_steps must be >= 0, got {beta_steps}.")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}.")
        self.alpha, self.beta0, self.beta_steps, self.eps = float(alpha), float(beta), int(beta_steps), float(eps)
        self.max_priority = 1.0  # max p^alpha seen so far
        self.step = 0  # weights() calls so far
        self.tree: SumTree | None = None

    @property
    def beta(self) -> float:
        """The beta the next ``weights`` call uses."""
        if self.beta_steps == 0:
            return 1.0
        return self.beta0 + (1.0 - self.beta0) * min(1.0, self.step / self.beta_steps)

    def allocate(self, num_envs: int, ring_size: int) -> None:
        self.tree = SumTree(int(num_envs) * int(ring_size))

    @property
    def nbytes(self) -> int:
        return 0 if self.tree is None else self.tree.nbytes

    def _tree(self) -> SumTree:
        if self.tree is None:
            raise RuntimeError("PrioritizedSampler used before allocate(); add transitions to the buffer first.")
        return self.tree

    def propose(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Stratified proportional draw: one u per equal segment of [0, total) (Schaul et al., 2016, App. B.2.1)."""
        tree = self._tree()
        u = (np.arange(n) + rng.random(n)) * (tree.total / n)  # [n]
        return tree.find(u)

    def on_write(self, indices: np.ndarray) -> None:
        self._tree().update(indices, self.max_priority)

    def on_invalidate(self, indices: np.ndarray) -> None:
        self._tree().update(indices, 0.0)

    def weights(self, indices: np.ndarray) -> np.ndarray:
        """w_i = (N P(i))^-beta / max_j w_j; N cancels in the ratio, leaving (P(i) / min_j P(j))^-beta. [n]."""
        p = np.maximum(self._tree().get(indices), np.finfo(np.float64).tiny)  # [n]
        w = (p / p.min()) ** -self.beta
        self.step += 1
        return w.astype(np.float32)

    def update_priorities(self, indices: np.ndarray, td_error: np.ndarray) -> None:
        """p_i = (|delta_i| + eps)^alpha (Schaul et al., 2016, Sec. 3.3)."""
        p = (np.abs(np.asarray(td_error, dtype=np.float64)) + self.eps) ** self.alpha  # [n]
        if not np.all(np.isfinite(p)):
            raise ValueError("update_priorities: td_error has NaN or inf entries.")
        self._tree().update(indices, p)
        if p.size:
            self.max_priority = max(self.max_priority, float(p.max()))

    def state_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "beta": self.beta0,
            "beta_steps": self.beta_steps,
            "eps": self.eps,
            "max_priority": self.max_priority,
            "step": self.step,
            "tree": None if self.tree is None else self.tree.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "tree" not in state:
            raise ValueError("PrioritizedSampler.load_state_dict: the state comes from another kind of sampler.")
        self.alpha, self.beta0 = float(state["alpha"]), float(state["beta"])
        self.beta_steps, self.eps = int(state["beta_steps"]), float(state["eps"])
        self.max_priority, self.step = float(state["max_priority"]), int(state["step"])
        if state["tree"] is not None:
            if self.tree is None:
                self.tree = SumTree(int(state["tree"]["capacity"]))
            self.tree.load_state_dict(state["tree"])
