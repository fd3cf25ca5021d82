"""Stream-ordered ring storage behind `ReplayBuffer`: one ring of C slots per env, flat index = env * C + slot.

Each env writes its ring in time order, so a transition's successors (an n-step window; Sutton & Barto, 2018,
Eq. 7.1) and predecessors (a frame stack; Mnih et al., 2015) are its ring neighbours. ``written[e]`` counts the slots
env e has ever written: its newest slot is (written - 1) % C, and a slot's *age* (how many slots of its ring are
newer) is (written - 1 - slot) % C. A window or stack is intact when it stays within the written, not yet
overwritten part of the ring. Small metadata lives in numpy; observations/frames in a `DeviceArray`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from qlearn.errors import QlearnError


class ReplayBufferError(QlearnError, ValueError):
    """Bad input to a `ReplayBuffer` (shapes, sizes, a state from another buffer)."""


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return torch.zeros(0, dtype=dtype).numpy().dtype


class DeviceArray:
    """``[E, C, *shape]`` values: numpy on CPU (cheapest slice writes; batches leave through `torch.from_numpy`),
    a torch tensor elsewhere, so observations stay on the training device."""

    def __init__(self, num_envs: int, ring: int, shape: tuple[int, ...], dtype: np.dtype, device: torch.device) -> None:
        self.device, self.cpu = device, device.type == "cpu"
        full = (num_envs, ring, *shape)
        if self.cpu:
            self.data: np.ndarray | Tensor = np.zeros(full, dtype=dtype)
        else:
            self.data = torch.zeros(full, dtype=torch_dtype(dtype), device=device)
        self.flat = self.data.reshape(num_envs * ring, *shape)  # a view: [E * C, *shape]
        self.single = num_envs == 1

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes) if self.cpu else self.data.numel() * self.data.element_size()

    def _tensor(self, values: np.ndarray) -> Tensor:
        return torch.as_tensor(values).to(self.device, self.data.dtype)

    def write_column(self, slot: int, *parts: np.ndarray) -> None:
        """Every env's ``slot`` <- ``parts`` [E, ...] each, stacked along the first value axis when several."""
        if self.cpu:
            if len(parts) == 1:
                self.data[:, slot] = parts[0]
            elif self.single:  # one env: item writes into the slot's row cost ~40% less than column slices
                row = self.flat[slot]
                for j, part in enumerate(parts):
                    row[j] = part[0]
            else:
                for j, part in enumerate(parts):
                    self.data[:, slot, j] = part
        else:  # one host-to-device copy
            self.data[:, slot] = self._tensor(parts[0] if len(parts) == 1 else np.stack(parts, axis=1))

    def write(self, envs: np.ndarray, slots: np.ndarray, values: np.ndarray) -> None:
        """``(envs[i], slots[i])`` <- values[i]."""
        if self.cpu:
            self.data[envs, slots] = values
            return
        src = self._tensor(values)  # one host-to-device copy
        if envs.size <= 8:  # a few device-side copies are cheaper than shipping index tensors
            for i, (e, s) in enumerate(zip(envs.tolist(), slots.tolist())):
                self.data[e, s] = src[i]
        else:
            self.data[torch.from_numpy(envs).to(self.device), torch.from_numpy(slots).to(self.device)] = src

    def gather(self, ix: np.ndarray | Tensor, *sub: int) -> Tensor:
        """``flat[ix, *sub]``: ``ix`` a numpy array on CPU, an int64 tensor on the device otherwise."""
        return torch.from_numpy(self.flat[(ix, *sub)]) if self.cpu else self.flat[(ix, *sub)]

    def state(self, high: int) -> Tensor:
        return torch.from_numpy(self.data[:, :high].copy()) if self.cpu else self.data[:, :high].cpu().clone()

    def load(self, values: Tensor) -> None:
        high = values.shape[1]
        self.data[:, :high] = values.numpy() if self.cpu else values.to(self.device)


class RingStorage:
    """Per-slot metadata and n-step windows, shared by both layouts."""

    def __init__(self, num_envs: int, ring: int, action_shape: tuple[int, ...], action_dtype: np.dtype) -> None:
        E, C = num_envs, ring
        self.num_envs, self.ring = E, C
        self.written = np.zeros(E, dtype=np.int64)  # [E] slots ever written per env
        self.count = 0  # transitions currently stored
        self.env_base = np.arange(E, dtype=np.int64) * C  # [E] flat index of each ring's slot 0
        self.action = np.zeros((E * C, *action_shape), dtype=action_dtype)
        self.reward = np.zeros(E * C, dtype=np.float32)
        self.terminated = np.zeros(E * C, dtype=np.bool_)
        self.done = np.zeros(E * C, dtype=np.bool_)  # terminated | truncated: ends windows and stacks
        self.prev_next: np.ndarray | None = None  # last next_obs per env, to spot a broken stream

    def arrays(self) -> dict[str, np.ndarray | DeviceArray]:
        return {"action": self.action, "reward": self.reward, "terminated": self.terminated, "done": self.done}

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self.arrays().values())

    def age(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(env, age) [B] each: age = how many slots of the ring were written after ``idx``."""
        env, slot = np.divmod(idx, self.ring)
        return env, (self.written[env] - 1 - slot) % self.ring

    def window_slots(self, idx: np.ndarray, n: int) -> np.ndarray:
        """Flat indices [B, n] of the n ring slots from each start ``idx`` [B]."""
        env, slot = np.divmod(idx, self.ring)
        return (env * self.ring)[:, None] + (slot[:, None] + np.arange(n)) % self.ring

    def window(self, idx: np.ndarray, n: int) -> np.ndarray:
        """m [B]: transitions in the n-step window from each start, n or fewer when a done comes first.

        Slots newer than the newest written one are stale and a done read there may cut m short, but then the
        window also reaches past the newest slot, so `check` rejects it as incomplete either way.
        """
        slots = self.window_slots(idx, n)  # [B, n]
        stop = self.done[slots] | self.terminated[slots]  # a learning-only terminal (life loss) also ends it
        return np.where(stop.any(axis=1), stop.argmax(axis=1) + 1, n)

    def nstep(self, idx: np.ndarray, m: np.ndarray, gammas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R = sum_{k<m} gamma^k r_{t+k} [B] and the flat index of each window's last transition [B]."""
        slots = self.window_slots(idx, gammas.size)  # [B, n]
        discounts = np.where(np.arange(gammas.size) < m[:, None], gammas, np.float32(0.0))  # [B, n]
        return (self.reward[slots] * discounts).sum(axis=1), slots[np.arange(idx.size), m - 1]

    def stream_breaks(self, obs: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """[E] envs among ``candidates`` whose ``obs`` is not the previous ``next_obs`` (e.g. a reset mid-episode)."""
        if self.prev_next is None:
            return np.zeros(self.num_envs, dtype=bool)
        return candidates & (obs != self.prev_next).reshape(self.num_envs, -1).any(axis=1)

    def state_dict(self) -> dict[str, Any]:
        E, C = self.num_envs, self.ring
        high = int(min(self.written.max(), C))  # rings fill from slot 0; nothing past `high` was written
        out: dict[str, Tensor] = {}
        for name, a in self.arrays().items():
            if isinstance(a, DeviceArray):
                out[name] = a.state(high)
            else:
                out[name] = torch.from_numpy(a.reshape(E, C, *a.shape[1:])[:, :high].copy())
        return {
            "num_envs": E,
            "ring": C,
            "written": torch.from_numpy(self.written.copy()),
            "count": self.count,
            "prev_next": None if self.prev_next is None else torch.from_numpy(self.prev_next.copy()),
            "arrays": out,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        E, C = self.num_envs, self.ring
        if int(state["num_envs"]) != E or int(state["ring"]) != C:
            raise ValueError(f"storage state is for {state['num_envs']} rings of {state['ring']}, not {E} of {C}.")
        self.written[:] = state["written"].numpy()
        self.count = int(state["count"])
        self.prev_next = None if state["prev_next"] is None else state["prev_next"].numpy().copy()
        for name, a in self.arrays().items():
            values = state["arrays"][name]
            if isinstance(a, DeviceArray):
                a.load(values)
            else:
                a.reshape(E, C, *a.shape[1:])[:, : values.shape[1]] = values.numpy()


class TransitionStorage(RingStorage):
    """One transition per slot, obs and next_obs each stored (vector observations). All envs add in lockstep,
    so every ring has the same cursor and a write is one column slice per field."""

    def __init__(
        self,
        num_envs: int,
        ring: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype,
        action_shape: tuple[int, ...],
        action_dtype: np.dtype,
        device: torch.device,
        track_breaks: bool = False,
    ) -> None:
        super().__init__(num_envs, ring, action_shape, action_dtype)
        self.obs = DeviceArray(num_envs, ring, (2, *obs_shape), obs_dtype, device)  # [E, C, 2, ...]: obs, next_obs
        self.track_breaks = track_breaks  # only n-step windows can cross a broken stream
        E, C = num_envs, ring
        self._columns = [a.reshape(E, C, *a.shape[1:]) for a in (self.action, self.reward, self.terminated, self.done)]

    def arrays(self) -> dict[str, np.ndarray | DeviceArray]:
        return {**super().arrays(), "obs": self.obs}

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, done: np.ndarray, indices: bool = True) -> tuple[np.ndarray | None, None]:
        """Write one transition per env; returns the flat indices written [E] (``None`` unless ``indices``) and
        ``None``: nothing else is invalidated."""
        C = self.ring
        written = int(self.written[0])
        slot = written % C
        if self.track_breaks:
            if written:
                prev = self.env_base + (slot - 1) % C
                cut = self.stream_breaks(obs, ~self.done[prev])
                if cut.any():  # close the previous episode as truncated: no window crosses the break
                    self.done[prev[cut]] = True
            self.prev_next = next_obs.copy()
        self.obs.write_column(slot, obs, next_obs)
        if self.num_envs == 1:  # flat index = slot; item writes cost ~40% less than one-element column slices
            self.action[slot], self.reward[slot] = action[0], reward[0]
            self.terminated[slot], self.done[slot] = terminated[0], done[0]
        else:
            action_column, reward_column, terminated_column, done_column = self._columns
            action_column[:, slot] = action
            reward_column[:, slot] = reward
            terminated_column[:, slot] = terminated
            done_column[:, slot] = done
        written += 1
        self.written.fill(written)  # lockstep rings; fill is ten times cheaper than += 1 on a small array
        if written <= C:
            self.count = self.num_envs * written
        return (self.env_base + slot if indices else None), None

    def all_valid(self, n: int) -> bool:
        """Whether every slot starts a valid sample: one-step samples from full rings (`check` is then skipped)."""
        return n == 1 and int(self.written[0]) >= self.ring

    def check(self, idx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Valid starts [B] and window lengths m [B] (None for n = 1): written, with a complete window."""
        _, age = self.age(idx)
        ok = age < min(int(self.written[0]), self.ring)
        if n == 1:
            return ok, None
        m = self.window(idx, n)
        return ok & (m - 1 <= age), m  # the window's last transition, t + m - 1, is written

    def obs_index(self, idx: np.ndarray, last: np.ndarray) -> np.ndarray:
        """[2, B]: where obs (start) and next_obs (the window's last transition) are."""
        return np.stack((idx, last))

    def gather_obs(self, ix: np.ndarray | Tensor) -> tuple[Tensor, Tensor]:
        return self.obs.gather(ix[0], 0), self.obs.gather(ix[1], 1)

    def gather_obs_at(self, idx: np.ndarray, last: np.ndarray) -> tuple[Tensor, Tensor]:
        """CPU: obs at ``idx`` and next_obs at ``last``; one-step samples (``last is idx``) take both rows in
        one ``np.take``, as strided views of one [B, 2, ...] block."""
        if last is not idx or not self.obs.cpu:
            return self.gather_obs(self.obs_index(idx, last))
        both = torch.from_numpy(self.obs.flat.take(idx, axis=0))  # [B, 2, *obs_shape]
        return both[:, 0], both[:, 1]


class FrameStorage(RingStorage):
    """Each frame of K-frame stacked observations stored once (Mnih et al., 2015 stack K = 4 frames).

    An episode of L steps takes L + 1 consecutive slots: slot j holds frame j (the newest frame of the j-th
    observation) and, for j < L, transition j's action/reward/flags; the final frame's slot starts no transition.
    A stack is rebuilt from K consecutive slots, clamped at the episode start (``step`` = frame index within its
    episode), which repeats the reset frame exactly like gymnasium's ``FrameStackObservation`` padding.
    """

    def __init__(
        self,
        num_envs: int,
        ring: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype,
        action_shape: tuple[int, ...],
        action_dtype: np.dtype,
        device: torch.device,
    ) -> None:
        super().__init__(num_envs, ring, action_shape, action_dtype)
        self.stack = obs_shape[0]  # K
        self.frames = DeviceArray(num_envs, ring, obs_shape[1:], obs_dtype, device)
        self.has_transition = np.zeros(num_envs * ring, dtype=np.bool_)
        self.step = np.zeros(num_envs * ring, dtype=np.int32)
        self.open = np.zeros(num_envs, dtype=np.bool_)  # [E] newest slot holds the obs of an unfinished episode
        self.envs = np.arange(num_envs, dtype=np.int64)
        self.back = np.arange(self.stack - 1, -1, -1)  # [K] distance of each stack position from the newest frame

    def arrays(self) -> dict[str, np.ndarray | DeviceArray]:
        return {**super().arrays(), "frames": self.frames, "has_transition": self.has_transition, "step": self.step}

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, done: np.ndarray, indices: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Write one transition per env; returns (transition starts written [E], slots invalidated [E]), computed
        whatever ``indices`` says."""
        C = self.ring
        cut = self.stream_breaks(obs, self.open)
        if cut.any():  # obs does not continue the stream (reset mid-episode): close the episode as truncated
            self.done[self.env_base[cut] + (self.written[cut] - 2) % C] = True
            self.open &= ~cut
        self.prev_next = next_obs.copy()
        cur = (self.written - 1) % C  # [E] open episodes: the newest slot already holds obs[:, -1]
        if not self.open.all():  # episode starts: the reset frame gets a fresh slot
            s = self.envs[~self.open]
            if (obs[s] != obs[s, -1:]).any():
                raise ReplayBufferError(
                    "frame_stack storage rebuilds an episode's first stacks by repeating its reset frame "
                    "(FrameStackObservation's default padding_type='reset'), but a first obs has differing frames."
                )
            slot = self.written[s] % C
            cur[s] = slot
            self.written[s] += 1
            f = self.env_base[s] + slot
            self.count -= int(np.count_nonzero(self.has_transition[f]))
            self.step[f] = 0
            self.frames.write(s, slot, obs[s, -1])
        fc = self.env_base + cur  # [E]
        self.action[fc], self.reward[fc], self.terminated[fc], self.done[fc] = action, reward, terminated, done
        self.has_transition[fc] = True
        nxt = self.written % C
        fn = self.env_base + nxt  # [E] next frame's slot: overwrites the oldest slot of each ring
        self.count += self.num_envs - int(np.count_nonzero(self.has_transition[fn]))
        self.has_transition[fn] = False
        self.done[fn] = False
        self.step[fn] = self.step[fc] + 1
        self.frames.write(self.envs, nxt, next_obs[:, -1])
        self.written += 1
        self.open = ~done
        return fc, fn

    def all_valid(self, n: int) -> bool:
        """Never: final frames and the oldest stacks' slots start no sample."""
        return False

    def check(self, idx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Valid starts [B] and m [B] (None for n = 1): a transition whose stack history is not overwritten
        (oldest frame needed: min(K - 1, step) slots back) and whose window's frames are written."""
        env, age = self.age(idx)
        filled = np.minimum(self.written[env], self.ring)
        ok = self.has_transition[idx] & (age + np.minimum(self.stack - 1, self.step[idx]) < filled)
        if n == 1:  # the next frame is written by the same add as the transition
            return ok, None
        m = self.window(idx, n)
        return ok & (m <= age), m  # the next frame of the window's last transition, slot t + m, is written

    def stack_index(self, flat: np.ndarray) -> np.ndarray:
        """[B, K] slots of the stacks whose newest frames sit at ``flat`` [B], clamped at the episode start."""
        env, slot = np.divmod(flat, self.ring)
        back = np.minimum(self.back, self.step[flat][:, None])  # [B, K]
        return (env * self.ring)[:, None] + (slot[:, None] - back) % self.ring

    def obs_index(self, idx: np.ndarray, last: np.ndarray) -> np.ndarray:
        """[2, B, K]: frames of obs (at the start) and of next_obs (the slot after the window's last transition)."""
        env, slot = np.divmod(last, self.ring)
        return np.stack((self.stack_index(idx), self.stack_index(env * self.ring + (slot + 1) % self.ring)))

    def gather_obs(self, ix: np.ndarray | Tensor) -> tuple[Tensor, Tensor]:
        both = self.frames.gather(ix)  # [2, B, K, *frame]
        return both[0], both[1]

    def gather_obs_at(self, idx: np.ndarray, last: np.ndarray) -> tuple[Tensor, Tensor]:
        return self.gather_obs(self.obs_index(idx, last))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "open": torch.from_numpy(self.open.copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.open[:] = state["open"].numpy()
