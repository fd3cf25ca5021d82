"""Experience replay (Lin, 1992; Mnih et al., 2015, "Human-level control through deep RL", Alg. 1).

One `ReplayBuffer` covers uniform and prioritized replay (a sampler object; Schaul et al., 2016), n-step returns
folded at sample time (Sutton & Barto, 2018, Eq. 7.1; Hessel et al., 2018, "Rainbow", Sec. 3) and Atari frame
stacks stored one frame per slot. Storage is allocated at the first ``add``: a config needs only ``capacity``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from qlearn.buffers.samplers import PrioritizedSampler, UniformSampler
from qlearn.buffers.storage import FrameStorage, ReplayBufferError, TransitionStorage, numpy_dtype
from qlearn.types import Batch

__all__ = ["ReplayBuffer", "ReplayBufferError"]


class ReplayBuffer:
    """Circular replay of (s, a, r, s', terminated) transitions from E parallel envs.

    ``capacity`` is split into E rings of ``capacity // E`` slots, one per env, each written in time order
    (flat index = env * ring + slot). ``sample`` proposes indices with the sampler and re-proposes those that
    cannot start a sample yet: the newest n-step windows that are still incomplete, and (frame stacks) the few
    oldest slots whose history was overwritten. With ``n_step = n`` a sample is the window of m <= n transitions
    from t, cut after the first done: reward = sum_{k<m} gamma^k r_{t+k}, next_obs and terminated from the window's
    last transition, discount = gamma^m. Only ``terminated`` stops bootstrapping; a truncation ends the episode
    (no window or stack crosses it) but keeps terminated = 0 (Pardo et al., 2018).

    An ``add`` whose obs is not the previous ``next_obs`` of an unfinished episode (an env reset mid-episode)
    closes that episode as truncated; this is checked when windows or stacks could otherwise cross it
    (``n_step > 1`` or ``frame_stack``).

    Observations keep their dtype (uint8 frames: the network scales them) and live on ``device`` (numpy on CPU).
    Integer actions are stored as int32 and sampled as int64 ``[B]``; float actions as float32 ``[B, act_dim]``.
    """

    def __init__(
        self,
        capacity: int,
        *,
        n_step: int = 1,
        gamma: float | None = None,
        frame_stack: int | None = None,
        sampler: UniformSampler | PrioritizedSampler | None = None,
        device: str | torch.device | None = "cpu",
        seed: int | None = None,
    ) -> None:
        if capacity < 1:
            raise ReplayBufferError(f"capacity must be >= 1, got {capacity}.")
        if n_step < 1:
            raise ReplayBufferError(f"n_step must be >= 1, got {n_step}.")
        if frame_stack is not None and frame_stack < 1:
            raise ReplayBufferError(f"frame_stack must be >= 1 or None, got {frame_stack}.")
        self.capacity, self.n_step = int(capacity), int(n_step)
        self.gamma = gamma
        self.frame_stack = None if frame_stack is None else int(frame_stack)
        self.sampler = sampler if sampler is not None else UniformSampler()
        self.device = torch.device("cpu" if device is None else device)
        self._rng = np.random.default_rng(seed)
        self._storage: TransitionStorage | FrameStorage | None = None
        self._shapes: tuple[tuple[int, ...], ...] | None = None  # expected shapes of the six add() arrays

    @property
    def gamma(self) -> float | None:
        """The discount of n-step returns; ``None`` until set (a trainer sets it to its agent's gamma)."""
        return self._gamma

    @gamma.setter
    def gamma(self, gamma: float | None) -> None:
        if gamma is not None and not 0.0 <= gamma <= 1.0:
            raise ReplayBufferError(f"gamma must be in [0, 1], got {gamma}.")
        self._gamma = None if gamma is None else float(gamma)
        if gamma is None:
            self._gammas = None
        else:
            self._gammas = (self._gamma ** np.arange(self.n_step + 1)).astype(np.float32)  # [n + 1] gamma^k

    # ------------------------------------------------------------------ writing
    def _allocate(self, num_envs: int, obs_shape: tuple[int, ...], obs_dtype: np.dtype,
                  action_shape: tuple[int, ...], action_dtype: np.dtype) -> None:
        """Build storage for E envs; ``obs_shape``/``action_shape`` exclude the env dimension."""
        E, ring = num_envs, self.capacity // max(num_envs, 1)
        need = self.n_step + (self.frame_stack or 0) + 1
        if E < 1 or ring < need:
            raise ReplayBufferError(
                f"capacity={self.capacity} split over {E} envs gives {ring} slots per env; "
                f"n_step={self.n_step}, frame_stack={self.frame_stack} need at least {need}. Raise capacity."
            )
        K = self.frame_stack
        if K is not None and (len(obs_shape) < 2 or obs_shape[0] != K):
            raise ReplayBufferError(
                f"frame_stack={K} expects obs shaped [E, {K}, H, W] (newest frame last, as "
                f"FrameStackObservation gives), got [E, {', '.join(map(str, obs_shape))}]."
            )
        kind = np.dtype(action_dtype).kind
        act_dtype = np.dtype(np.int32 if kind in "biu" else np.float32)
        args = (E, ring, tuple(obs_shape), np.dtype(obs_dtype), tuple(action_shape), act_dtype, self.device)
        self._storage = FrameStorage(*args) if K is not None else TransitionStorage(*args, track_breaks=self.n_step > 1)
        self.sampler.allocate(E, ring)
        self._shapes = ((E, *obs_shape), (E, *action_shape), (E,), (E, *obs_shape), (E,), (E,))

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray, *, episode_end: np.ndarray | None = None) -> None:
        """Store one step of E envs: obs/next_obs [E, *obs_shape], action [E] or [E, act_dim], the rest [E].

        ``episode_end`` [E] says where the env's stream really ends (default: terminated | truncated). A
        terminal for learning only, such as a lost Atari life (Mnih et al., 2015), is ``terminated=True`` with
        ``episode_end=False``: bootstrapping and n-step windows stop there, but frame stacks run on.
        """
        obs, action, next_obs = np.asarray(obs), np.asarray(action), np.asarray(next_obs)
        reward = np.asarray(reward)
        terminated, truncated = np.asarray(terminated, dtype=np.bool_), np.asarray(truncated, dtype=np.bool_)
        if self._storage is None:
            if obs.ndim < 1 or action.ndim < 1:
                raise ReplayBufferError("add() takes arrays with a leading num_envs dimension: obs [E, ...].")
            self._allocate(obs.shape[0], obs.shape[1:], obs.dtype, action.shape[1:], action.dtype)
        shapes = (obs.shape, action.shape, reward.shape, next_obs.shape, terminated.shape, truncated.shape)
        if shapes != self._shapes:
            self._shape_error(shapes)
        done = terminated | truncated if episode_end is None else np.asarray(episode_end, dtype=np.bool_)
        sampler = self.sampler
        written, invalidated = self._storage.add(obs, action, reward, next_obs, terminated, done, sampler.tracks_writes)
        if written is not None:
            sampler.on_write(written)
        if invalidated is not None:
            sampler.on_invalidate(invalidated)

    def _shape_error(self, shapes: tuple[tuple[int, ...], ...]) -> None:
        names = ("obs", "action", "reward", "next_obs", "terminated", "truncated")
        E = self._shapes[0][0]
        if any(len(s) == 0 or s[0] != E for s in shapes):
            got = ", ".join(f"{n} {list(s)}" for n, s in zip(names, shapes))
            raise ReplayBufferError(f"this buffer holds E={E} envs: every add() array needs leading dim {E}; {got}.")
        if self.frame_stack is not None and shapes[0] != self._shapes[0]:
            expected, got = list(self._shapes[0]), list(shapes[0])
            raise ReplayBufferError(f"frame_stack={self.frame_stack} expects obs shaped {expected}, got {got}.")
        bad = [f"{n} {list(s)} (expected {list(e)})" for n, s, e in zip(names, shapes, self._shapes) if s != e]
        raise ReplayBufferError("add() shapes differ from the first add: " + "; ".join(bad) + ".")

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        """Transitions currently stored (the newest n-step windows may not be sampleable yet)."""
        return 0 if self._storage is None else self._storage.count

    @property
    def nbytes(self) -> int:
        """Bytes allocated by the storage arrays and the sampler (e.g. its sum tree)."""
        return 0 if self._storage is None else self._storage.nbytes + self.sampler.nbytes

    def _draw(self, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Propose indices, re-proposing invalid starts until all are valid: (index [B], window length m [B])."""
        storage, n = self._storage, self.n_step
        idx = np.asarray(self.sampler.propose(batch_size, self._rng), dtype=np.int64)  # [B]
        if storage.all_valid(n):
            return idx, None
        ok, m = storage.check(idx, n)
        rounds = 0
        while not ok.all():
            bad = np.flatnonzero(~ok)
            new = np.asarray(self.sampler.propose(bad.size, self._rng), dtype=np.int64)
            ok_new, m_new = storage.check(new, n)
            idx[bad], ok[bad] = new, ok_new
            if m is not None:
                m[bad] = m_new
            rounds += 1
            if rounds % 100 == 0:
                everything = np.arange(storage.num_envs * storage.ring, dtype=np.int64)
                if rounds >= 10_000 or not storage.check(everything, n)[0].any():
                    raise ReplayBufferError(
                        f"none of the {len(self)} stored transitions can start a sample yet (n_step={self.n_step} "
                        "needs complete windows): add more steps before sampling, i.e. raise learning_starts."
                    )
        return idx, m

    def sample(self, batch_size: int) -> Batch:
        """A `Batch` of ``batch_size`` transitions on ``device`` (index always set; weight only when prioritized).

        On CPU, one-step ``obs`` and ``next_obs`` are two strided views of one gathered ``[B, 2, ...]`` block:
        rows are contiguous, so ``reshape``/``view`` within a row work; use ``reshape`` to merge the batch dim.
        """
        if batch_size < 1:
            raise ReplayBufferError(f"batch_size must be >= 1, got {batch_size}.")
        if len(self) < batch_size:
            raise ReplayBufferError(
                f"buffer holds {len(self)} transitions, fewer than batch_size={batch_size}; "
                f"raise learning_starts to at least {batch_size} (or lower batch_size)."
            )
        if self.n_step > 1 and self._gammas is None:
            raise ReplayBufferError(
                f"n_step={self.n_step} returns need a discount: pass ReplayBuffer(gamma=...), or hand the buffer to a "
                "trainer, which gives it the agent's gamma."
            )
        storage = self._storage
        idx, m = self._draw(batch_size)
        if m is None:
            reward, last = storage.reward[idx], idx
        else:
            reward, last = storage.nstep(idx, m, self._gammas[: self.n_step])
        weight = self.sampler.weights(idx)
        rows = [reward, storage.terminated[last]]  # [B] each
        if m is not None:
            rows.append(self._gammas[m])
        if weight is not None:
            rows.append(weight)
        action = storage.action[idx]
        discrete = action.dtype.kind == "i"
        if discrete:
            action = action.astype(np.int64)
        if self.device.type == "cpu":  # every array is already a fresh [B] copy: wrap them, no stacking
            index, act = torch.from_numpy(idx), torch.from_numpy(action)
            small = [torch.from_numpy(row.astype(np.float32, copy=False)) for row in rows]
            obs, next_obs = storage.gather_obs_at(idx, last)
        else:  # two host-to-device copies in all: one int64 block, one float32 block
            floats = np.stack(rows).astype(np.float32, copy=False)  # [rows, B]
            obs_ix = storage.obs_index(idx, last)
            ints = [idx, obs_ix.reshape(-1)] + ([action.reshape(-1)] if discrete else [])
            packed = torch.from_numpy(np.concatenate(ints)).to(self.device)
            index, ix = packed[:batch_size], packed[batch_size : batch_size + obs_ix.size].view(obs_ix.shape)
            obs, next_obs = storage.gather_obs(ix)
            flat = [floats.reshape(-1)] + ([] if discrete else [action.reshape(-1)])
            packed_f = torch.from_numpy(np.concatenate(flat)).to(self.device)
            small = packed_f[: floats.size].view(floats.shape).unbind(0)
            tail = packed if discrete else packed_f
            act = tail[tail.numel() - action.size :].view(action.shape)
        return Batch(
            obs=obs,
            action=act,
            reward=small[0],
            next_obs=next_obs,
            terminated=small[1],
            discount=small[2] if m is not None else None,
            weight=small[-1] if weight is not None else None,
            index=index,
        )

    def update_priorities(self, index: Tensor, td_error: Tensor) -> None:
        """Feed |TD error| [B] of the sampled ``index`` [B] back to a prioritized sampler; a no-op otherwise."""
        if not getattr(self.sampler, "prioritized", True):
            return
        idx = index.detach().to("cpu", torch.int64).numpy()
        td = td_error.detach().to("cpu", torch.float64).numpy()
        if idx.ndim != 1 or idx.shape != td.shape:
            raise ReplayBufferError(
                f"update_priorities takes index [B] and td_error [B], got {list(idx.shape)} and {list(td.shape)}."
            )
        self.sampler.update_priorities(idx, td)

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        """Everything for an exact resume, as tensors and plain Python values (``torch.load(weights_only=True)``)."""
        return {
            "capacity": self.capacity,
            "n_step": self.n_step,
            "gamma": self.gamma,
            "frame_stack": self.frame_stack,
            "rng": self._rng.bit_generator.state,
            "sampler": self.sampler.state_dict(),
            "storage": None if self._storage is None else self._storage.state_dict(),
            "shapes": None if self._shapes is None else [list(s) for s in self._shapes],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("capacity", "n_step", "gamma", "frame_stack"):
            if state[key] != getattr(self, key):
                raise ReplayBufferError(f"buffer state has {key}={state[key]}, this buffer {key}={getattr(self, key)}.")
        self._storage, self._shapes = None, None
        storage = state["storage"]
        if storage is not None:
            shapes = [tuple(int(d) for d in s) for s in state["shapes"]]
            arrays = storage["arrays"]
            obs_dtype = numpy_dtype(arrays["frames" if self.frame_stack is not None else "obs"].dtype)
            action_dtype = numpy_dtype(arrays["action"].dtype)
            self._allocate(int(storage["num_envs"]), shapes[0][1:], obs_dtype, shapes[1][1:], action_dtype)
            if self._storage.ring != int(storage["ring"]):
                got, own = storage["ring"], self._storage.ring
                raise ReplayBufferError(f"buffer state has rings of {got} slots, this buffer {own}.")
            self._storage.load_state_dict(storage)
        self.sampler.load_state_dict(state["sampler"])
        self._rng.bit_generator.state = state["rng"]
