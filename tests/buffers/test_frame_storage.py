"""Frame-stack storage: every sampled (obs, next_obs) stack equals what a real
`gymnasium.wrappers.FrameStackObservation` returned, across episode starts, both episode ends, ring wrap-around
and n-step windows; and the memory target of one 84x84 frame per transition."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import FrameStackObservation

from qlearn.buffers import PrioritizedSampler, ReplayBuffer, ReplayBufferError

K = 4
NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, NO_CUDA])]


class CounterFrames(gym.Env):
    """6x6 uint8 frames that encode a per-env counter (distinct frames); episodes of random length 1..8 that end
    terminated or truncated at random; random integer rewards. The action is ignored (the test uses it as an id)."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, offset: int = 0) -> None:
        self.observation_space = gym.spaces.Box(0, 255, shape=(6, 6), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(1 << 30)
        self.counter = offset

    def _frame(self) -> np.ndarray:
        c = self.counter
        frame = np.full((6, 6), c & 255, dtype=np.uint8)
        frame[0, 0], frame[0, 1] = (c >> 8) & 255, (c >> 16) & 255
        return frame

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.counter += 1
        self.t, self.length = 0, int(self.np_random.integers(1, 9))
        self.ends_terminated = bool(self.np_random.random() < 0.5)
        return self._frame(), {}

    def step(self, action: int):
        self.counter += 1
        self.t += 1
        end = self.t >= self.length
        reward = float(self.np_random.integers(0, 10))
        return self._frame(), reward, end and self.ends_terminated, end and not self.ends_terminated, {}


class Recorder:
    """Drives E real FrameStackObservation envs (SAME_STEP autoreset), adds every step to the buffer and
    remembers each transition by id (= the action sent)."""

    def __init__(self, buffer: ReplayBuffer, num_envs: int, seed: int) -> None:
        self.buffer, self.E = buffer, num_envs
        self.env = gym.vector.SyncVectorEnv(
            [lambda e=e: FrameStackObservation(CounterFrames(offset=e << 20), K) for e in range(num_envs)],
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )
        self.obs, _ = self.env.reset(seed=seed)
        self.records: dict[int, tuple[np.ndarray, float, np.ndarray, bool, bool]] = {}
        self.streams: list[list[int]] = [[] for _ in range(num_envs)]
        self.next_id = 0

    def step(self) -> None:
        ids = self.next_id + np.arange(self.E)
        self.next_id += self.E
        nxt, reward, term, trunc, infos = self.env.step(ids)
        real_next = nxt.copy()
        for e in np.flatnonzero(infos.get("_final_obs", np.zeros(self.E, bool))):
            real_next[e] = infos["final_obs"][e]  # the true last observation, not the reset one
        self.buffer.add(self.obs, ids, reward, real_next, term, trunc)
        for e in range(self.E):
            done = bool(term[e] | trunc[e])
            self.records[int(ids[e])] = (self.obs[e].copy(), float(reward[e]), real_next[e].copy(), bool(term[e]), done)
            self.streams[e].append(int(ids[e]))
        self.obs = nxt

    def reset_midway(self) -> None:
        """Reset without telling the buffer; the episode so far now ends like a truncation."""
        self.obs, _ = self.env.reset()
        for stream in self.streams:
            obs, reward, next_obs, term, _ = self.records[stream[-1]]
            self.records[stream[-1]] = (obs, reward, next_obs, term, True)

    def expected(self, i: int, n: int, gamma: float) -> tuple[np.ndarray, float, np.ndarray, float, float] | None:
        """(obs, R, next_obs, terminated, discount) of the n-step sample starting at transition i; None if its
        window is not complete yet."""
        stream = self.streams[i % self.E]
        p = stream.index(i)
        R = 0.0
        for k in range(n):
            if p + k == len(stream):
                return None
            _, reward, next_obs, term, done = self.records[stream[p + k]]
            R += gamma**k * reward
            if done:
                break
        return self.records[i][0], R, next_obs, float(term), gamma ** (k + 1)

    def check(self, batch, n: int, gamma: float) -> list[int]:
        ids = batch.action.cpu().numpy().tolist()
        for row, i in enumerate(ids):
            obs, R, next_obs, term, discount = self.expected(i, n, gamma)
            np.testing.assert_array_equal(batch.obs[row].cpu().numpy(), obs)
            np.testing.assert_array_equal(batch.next_obs[row].cpu().numpy(), next_obs)
            assert batch.reward[row].item() == pytest.approx(R, rel=1e-6)
            assert batch.terminated[row].item() == term
            if n > 1:
                assert batch.discount[row].item() == pytest.approx(discount, rel=1e-6)
        return ids


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("n", "per"), [(1, False), (3, False), (3, True)])
def test_sampled_stacks_equal_what_the_env_returned(device: str, n: int, per: bool) -> None:
    ring, E, gamma = 24, 2, 0.9
    sampler = PrioritizedSampler() if per else None
    buffer = ReplayBuffer(ring * E, n_step=n, gamma=gamma, frame_stack=K, sampler=sampler, device=device, seed=0)
    rec = Recorder(buffer, E, seed=1)
    for t in range(200):  # ~8 wraps of each ring
        rec.step()
        if len(buffer) >= 16:
            batch = buffer.sample(16)
            assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (16, K, 6, 6)
            rec.check(batch, n, gamma)
    seen: set[int] = set()
    for _ in range(300):
        seen |= set(rec.check(buffer.sample(32), n, gamma))
    recent = {i for s in rec.streams for i in s[-ring // 3 :] if rec.expected(i, n, gamma) is not None}
    assert recent <= seen  # no fully stored transition is left out
    starts = [i for i in seen if (rec.records[i][0] == rec.records[i][0][-1]).all()]
    ends = [i for i in seen if rec.records[i][4]]
    assert starts and ends  # episode starts (padded stacks) and episode ends were sampled


def test_reset_mid_episode_starts_a_new_stream() -> None:
    """The trainer may reset envs without a done (e.g. at a checkpoint): the next add starts a new episode."""
    buffer = ReplayBuffer(64, frame_stack=K, n_step=2, gamma=0.5, seed=2)
    rec = Recorder(buffer, 1, seed=3)
    for t in range(40):
        rec.step()
        if t % 9 == 4:
            rec.reset_midway()
    for _ in range(100):
        rec.check(buffer.sample(16), 2, 0.5)


@pytest.mark.parametrize("per", [False, True])
def test_bytes_per_transition_84x84(per: bool) -> None:
    capacity = 2000
    buffer = ReplayBuffer(capacity, frame_stack=K, sampler=PrioritizedSampler() if per else None, seed=0)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(64, 84, 84), dtype=np.uint8)
    stack = np.repeat(frames[:1], K, axis=0)
    for t in range(capacity + 100):
        nxt = np.concatenate([stack[1:], frames[(t + 1) % 64][None]])
        done = t % 50 == 49
        buffer.add(stack[None], np.array([t % 18]), np.array([1.0]), nxt[None], np.array([done]), np.array([False]))
        stack = np.repeat(frames[(t + 2) % 64][None], K, axis=0) if done else nxt
    assert buffer.nbytes / capacity <= 7200, buffer.nbytes / capacity
    # 50-step episodes take 51 slots (the final frame starts no transition), and the newest slot waits for its step
    assert capacity - capacity // 51 - 2 <= len(buffer) <= capacity - capacity // 51
    batch = buffer.sample(32)
    assert batch.obs.shape == (32, K, 84, 84) and batch.obs.dtype == torch.uint8


def test_frame_stack_shape_errors() -> None:
    obs = np.zeros((2, 3, 6, 6), dtype=np.uint8)
    args = (np.zeros(2, np.int64), np.zeros(2), obs, np.zeros(2, bool), np.zeros(2, bool))
    with pytest.raises(ReplayBufferError, match=r"frame_stack=4 expects obs shaped \[E, 4, H, W\]"):
        ReplayBuffer(64, frame_stack=K).add(obs, *args)
    buffer = ReplayBuffer(64, frame_stack=3)
    buffer.add(obs, *args)
    bigger = np.zeros((2, 3, 7, 7), dtype=np.uint8)
    with pytest.raises(ReplayBufferError, match="frame_stack=3 expects obs shaped"):
        buffer.add(bigger, args[0], args[1], bigger, *args[3:])


def test_first_obs_must_repeat_the_reset_frame() -> None:
    """Episode starts are rebuilt by repeating the reset frame; other padding (e.g. zeros) is refused."""
    env = FrameStackObservation(CounterFrames(), K, padding_type="zero")
    obs, _ = env.reset(seed=0)
    nxt, reward, term, trunc, _ = env.step(0)
    buffer = ReplayBuffer(64, frame_stack=K)
    with pytest.raises(ReplayBufferError, match="padding_type='reset'"):
        buffer.add(obs[None], np.array([0]), np.array([reward]), nxt[None], np.array([term]), np.array([trunc]))
