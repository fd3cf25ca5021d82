"""OnlineTrainer with mocked and real agents: update counts, cadences, NaN stop, exact resume."""

from __future__ import annotations

import gc
import json
import os
import signal
import threading
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from qlearn.agents import DQN, Agent
from qlearn.buffers import ReplayBuffer
from qlearn.checkpoint import list_checkpoints
from qlearn.envs import make_env
from qlearn.errors import NonFiniteError, QlearnError
from qlearn.exploration import EpsilonGreedy, LinearSchedule
from qlearn.single_vector import SingleEnvVector
from qlearn.trainers import OnlineTrainer, TrainingInterrupted
from qlearn.types import Batch, EnvSpec, Metrics
from qlearn.updaters import PolyakUpdate


class CountingAgent(Agent):
    """Acts 0 and counts updates; its loss turns NaN at update ``nan_at`` (if given)."""

    def __init__(self, nan_at: int | None = None) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.nan_at = nan_at
        self.batch_sizes: list[int] = []

    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return torch.zeros(obs.shape[0], dtype=torch.int64)

    def update(self, batch: Batch) -> Metrics:
        self.num_updates += 1
        self.batch_sizes.append(len(batch))
        bad = self.nan_at is not None and self.num_updates >= self.nan_at
        loss = torch.tensor(float("nan") if bad else 1.0)
        return {"train/loss": loss, "train/q_mean": torch.tensor(0.0)}


def make_trainer(agent: Agent, num_envs: int = 1, run_dir: Path | None = None, **kwargs) -> OnlineTrainer:
    env = make_env("CartPole-v1", num_envs=num_envs, seed=0)
    options = dict(total_steps=400, learning_starts=100, train_every=4, batch_size=8, eval_every=0, log_every=100)
    options.update(kwargs)
    return OnlineTrainer(agent, env, ReplayBuffer(1000, seed=0), run_dir=run_dir, seed=0, progress=False, **options)


@pytest.mark.parametrize("num_envs", [1, 4])
def test_update_count_follows_learning_starts_train_every_and_utd(num_envs: int) -> None:
    agent = CountingAgent()
    trainer = make_trainer(agent, num_envs=num_envs, updates_per_step=3)
    trainer.run()
    assert trainer.env_step == 400
    assert agent.num_updates == (400 - 100) * 3 // 4
    assert set(agent.batch_sizes) == {8}


def test_eval_and_checkpoint_cadence(tmp_path: Path) -> None:
    agent = CountingAgent()
    trainer = make_trainer(
        agent, run_dir=tmp_path, eval_env=make_env("CartPole-v1", seed=1), eval_every=100, eval_episodes=1,
        checkpoint_every=150, keep_checkpoints=10,
    )
    results = trainer.run()
    assert [e["step"] for e in results["evaluations"]] == [100, 200, 300, 400]
    assert [int(p.stem.split("_")[1]) for p in list_checkpoints(tmp_path)] == [150, 300, 400]
    saved = json.loads((tmp_path / "results.json").read_text())
    for key in ("agent", "env_id", "seed", "total_steps", "final_eval", "wall_time_s", "steps_per_sec"):
        assert key in saved
    assert saved["final_eval"]["episodes"] == 1


def test_non_finite_loss_stops_training_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    agent = CountingAgent(nan_at=60)  # update 60 happens at env step 100 + 59 * 4 + 4 = 340
    trainer = make_trainer(agent, run_dir=tmp_path, checkpoint_every=100, keep_checkpoints=10)
    with pytest.raises(NonFiniteError, match="env step 340"):
        trainer.run()
    steps = [int(p.stem.split("_")[1]) for p in list_checkpoints(tmp_path)]
    assert steps == [100, 200, 300]
    assert not (tmp_path / "results.json").exists()


def test_epsilon_greedy_skips_the_network_while_fully_random() -> None:
    calls = []

    class Spy(CountingAgent):
        def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
            calls.append(1)
            return super().act(obs)

    trainer = make_trainer(Spy(), exploration=EpsilonGreedy(LinearSchedule(1.0, 1.0, 10), num_actions=2, seed=0))
    trainer.run()
    assert calls == []


def dqn_trainer(run_dir: Path, total_steps: int) -> OnlineTrainer:
    torch.manual_seed(0)
    spec = EnvSpec(obs_shape=(4,), obs_dtype="float32", action_shape=(), num_actions=2)
    agent = DQN.from_spec(spec, network={"hidden_sizes": [32]}, target_updater=PolyakUpdate(1.0, every=10))
    return OnlineTrainer(
        agent,
        make_env("CartPole-v1", num_envs=2, seed=0),
        ReplayBuffer(500, seed=0),  # smaller than the run: the ring wraps before the checkpoint
        exploration=EpsilonGreedy(LinearSchedule(1.0, 0.1, 600), num_actions=2, seed=0),
        run_dir=run_dir,
        total_steps=total_steps,
        learning_starts=100,
        train_every=2,
        batch_size=16,
        eval_every=0,
        checkpoint_every=600,
        keep_checkpoints=10,
        seed=0,
        progress=False,
    )


def test_resumed_run_ends_with_the_same_parameters_as_an_uninterrupted_one(tmp_path: Path) -> None:
    full = dqn_trainer(tmp_path / "full", 1400)
    full.run()
    crashed = dqn_trainer(tmp_path / "crashed", 1400)
    crashed.total_steps = 1000  # stop after the checkpoint at 600, as a crash before 1200 would
    crashed.run()
    resumed = dqn_trainer(tmp_path / "crashed", 1400)
    resumed.resume_from(tmp_path / "crashed" / "checkpoints" / "step_000000600.pt")
    assert resumed.env_step == 600
    resumed.run()
    assert resumed.agent.num_updates == full.agent.num_updates
    for a, b in zip(full.agent.state_dict().values(), resumed.agent.state_dict().values()):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b)
    # the comparison is not vacuous: the run stopped at 1,000 steps has other parameters
    assert not all(torch.equal(a, b) for a, b in zip(crashed.agent.parameters(), full.agent.parameters()))


class LivesEnv(gym.Env):
    """Obs = step count; a life is lost every 3 steps; the game ends after 9 steps (3 lives)."""

    observation_space = gym.spaces.Box(0, 100, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):  # noqa: ANN001, ANN201
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {"lives": 3}

    def step(self, action):  # noqa: ANN001, ANN201
        self.t += 1
        return np.array([self.t], np.float32), 1.0, self.t == 9, False, {"lives": 3 - self.t // 3}


def test_life_loss_is_terminal_for_learning_only() -> None:
    env = gym.vector.SyncVectorEnv([lambda: gym.wrappers.RecordEpisodeStatistics(LivesEnv())],
                                   autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    stored: list[tuple[float, bool, bool]] = []

    class SpyBuffer(ReplayBuffer):
        def add(self, obs, action, reward, next_obs, terminated, truncated, *, episode_end=None):  # noqa: ANN001
            stored.append((float(obs[0, 0]), bool(terminated[0]), bool(episode_end[0])))
            super().add(obs, action, reward, next_obs, terminated, truncated, episode_end=episode_end)

    trainer = OnlineTrainer(CountingAgent(), env, SpyBuffer(100, seed=0), total_steps=18, learning_starts=50,
                            batch_size=8, eval_every=0, terminal_on_life_loss=True, progress=False)
    trainer.run()
    # within each 9-step game: lives drop after steps 3 and 6 (terminal for learning), the game ends at 9
    first_game = stored[:9]
    assert [s for s, term, _ in first_game if term] == [2.0, 5.0, 8.0]
    assert [s for s, _, end in first_game if end] == [8.0]
    assert trainer.episodes == 2  # the logged episodes are whole games, not lives


def test_release_free_memory_returns_freed_heap_pages() -> None:
    import sys

    from qlearn.utils import release_free_memory

    if not sys.platform.startswith("linux"):
        pytest.skip("malloc_trim is glibc's")

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    release_free_memory()
    before = rss_mb()
    keep = [np.ones(12_000) for _ in range(3_300)]  # ~300 MB in 96 KB chunks, served from the heap
    del keep[:-1]
    release_free_memory()
    assert rss_mb() - before < 100


def test_stop_from_an_evaluation_callback_ends_the_run_at_that_step(tmp_path: Path) -> None:
    def stop_at_second_eval(trainer: OnlineTrainer, result: dict) -> None:
        if len(trainer.eval_history) == 2:
            trainer.stop()

    env = make_env("CartPole-v1", num_envs=1, seed=0)
    trainer = OnlineTrainer(CountingAgent(), env, ReplayBuffer(1000, seed=0), eval_env=make_env("CartPole-v1", seed=1),
                            run_dir=tmp_path, total_steps=1000, learning_starts=50, batch_size=8, eval_every=100,
                            eval_episodes=1, log_every=100, progress=False, on_evaluation=[stop_at_second_eval])
    results = trainer.run()
    assert trainer.env_step == 200 and results["total_steps"] == 200
    assert json.loads((tmp_path / "results.json").read_text())["total_steps"] == 200
    assert [e["step"] for e in trainer.eval_history] == [100, 200, 200]  # the final evaluation follows as at the end


def test_updates_come_in_bursts_of_updates_per_step_every_train_every_steps() -> None:
    seen: list[int] = []

    class SpyBuffer(ReplayBuffer):
        def sample(self, batch_size: int) -> Batch:
            seen.append(len(self))  # env steps stored so far = the env step of this update (1 env)
            return super().sample(batch_size)

    env = make_env("CartPole-v1", num_envs=1, seed=0)
    trainer = OnlineTrainer(CountingAgent(), env, SpyBuffer(1000, seed=0), total_steps=120, learning_starts=100,
                            train_every=8, updates_per_step=3, batch_size=8, eval_every=0, progress=False)
    trainer.run()
    # 3 updates in a row at env steps 108 and 116 (SB3's train_freq=8, gradient_steps=3); none in between
    assert seen == [108, 108, 108, 116, 116, 116]


class SignalAtStep(gym.Wrapper):
    """Sends this process ``signum`` from inside its ``step`` number ``at`` (as a scheduler's SIGTERM would)."""

    def __init__(self, env: gym.Env, signum: int, at: int) -> None:
        super().__init__(env)
        self.signum, self.at, self.calls = signum, at, 0

    def step(self, action):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), self.signum)
        return self.env.step(action)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_checkpoints_and_stops_at_the_end_of_the_step_it_arrived_in(tmp_path: Path, signum: int) -> None:
    """Periodic work is scheduled for the next due step; a signal must still be handled at once."""
    env = SingleEnvVector(lambda: gym.wrappers.RecordEpisodeStatistics(SignalAtStep(gym.make("CartPole-v1"), signum, 137)))
    trainer = OnlineTrainer(CountingAgent(), env, ReplayBuffer(1000, seed=0), total_steps=400, learning_starts=100,
                            train_every=4, batch_size=8, eval_every=0, log_every=1000, run_dir=tmp_path, seed=0,
                            progress=False)
    with pytest.raises(TrainingInterrupted, match="at env step 137;") as raised:
        trainer.run()
    assert raised.value.exit_code == 128 + signum
    assert [int(p.stem.split("_")[1]) for p in list_checkpoints(tmp_path)] == [137]
    assert signal.getsignal(signum) is not trainer._on_signal  # handlers restored


def test_the_loop_runs_with_the_objects_alive_at_its_start_frozen_and_unfreezes_them() -> None:
    seen: list[int] = []

    class Spy(CountingAgent):
        def update(self, batch: Batch) -> Metrics:
            seen.append(gc.get_freeze_count())
            return super().update(batch)

    assert gc.get_freeze_count() == 0
    make_trainer(Spy(), total_steps=200).run()
    assert seen and min(seen) > 1000  # torch, gymnasium and the test's objects are out of the collector's way
    assert gc.get_freeze_count() == 0


def test_the_agent_acts_without_autograd_and_updates_and_callbacks_run_with_it() -> None:
    modes: dict[str, set[bool]] = {"act": set(), "update": set(), "callback": set()}

    class Spy(CountingAgent):
        def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
            modes["act"].add(torch.is_grad_enabled())
            return super().act(obs, deterministic)

        def update(self, batch: Batch) -> Metrics:
            modes["update"].add(torch.is_grad_enabled())
            return super().update(batch)

    def callback(trainer: OnlineTrainer, result: dict) -> None:
        modes["callback"].add(torch.is_grad_enabled())

    exploration = EpsilonGreedy(LinearSchedule(0.0, 0.0, 1), num_actions=2, seed=0)  # always greedy: act every step
    make_trainer(Spy(), total_steps=200, eval_every=100, exploration=exploration,
                 eval_env=make_env("CartPole-v1", seed=1), eval_episodes=1, on_evaluation=[callback]).run()
    assert modes == {"act": {False}, "update": {True}, "callback": {True}}
    assert torch.is_grad_enabled()  # restored after the run


def test_a_trainer_runs_from_a_thread_other_than_the_main_one() -> None:
    outcome: dict[str, object] = {}

    def train() -> None:
        try:
            outcome["results"] = make_trainer(CountingAgent(), total_steps=150).run()
        except Exception as error:  # noqa: BLE001 - reported below: a thread's exception would not fail the test
            outcome["error"] = error

    handler = signal.getsignal(signal.SIGINT)
    worker = threading.Thread(target=train)
    worker.start()
    worker.join()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["results"]["total_steps"] == 150
    assert signal.getsignal(signal.SIGINT) is handler  # the main thread's handler is untouched


def test_a_damaged_newest_checkpoint_resumes_from_the_previous_one(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    trainer = dqn_trainer(tmp_path / "run", 1400)
    trainer.keep_checkpoints = 2
    trainer.run()  # checkpoints at 1,200 and 1,400 (the final one)
    newest = tmp_path / "run" / "checkpoints" / "step_000001400.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated, as a crash mid-write on a non-atomic file system
    resumed = dqn_trainer(tmp_path / "run", 1400)
    with caplog.at_level("WARNING", logger="qlearn"):
        path = resumed.resume_from()
    assert path.name == "step_000001200.pt" and resumed.env_step == 1200
    assert "step_000001400.pt is damaged" in caplog.text and "step_000001200.pt" in caplog.text
    # a checkpoint whose replay file is damaged is passed over alike
    (tmp_path / "run" / "checkpoints" / "replay_000001200.pt").write_bytes(b"not a zip file")
    with pytest.raises(QlearnError, match="none of the 2 checkpoints"):
        dqn_trainer(tmp_path / "run", 1400).resume_from()


def test_a_budget_that_ends_before_learning_starts_is_reported_at_the_start(caplog: pytest.LogCaptureFixture) -> None:
    trainer = make_trainer(CountingAgent(), total_steps=100, learning_starts=100)
    with caplog.at_level("WARNING", logger="qlearn"):
        trainer.run()
    assert trainer.updates_done == 0
    assert "learning_starts=100" in caplog.text and "no update" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="qlearn"):
        make_trainer(CountingAgent(), total_steps=104, learning_starts=100).run()  # one burst at step 104
    assert "no update" not in caplog.text


def test_the_buffer_discounts_with_the_agents_gamma_and_a_mismatch_is_refused() -> None:
    spec = EnvSpec(obs_shape=(4,), obs_dtype="float32", action_shape=(), num_actions=2)
    agent = DQN.from_spec(spec, network={"hidden_sizes": [8]}, gamma=0.9)
    env = make_env("CartPole-v1", seed=0)
    buffer = ReplayBuffer(100, n_step=3, seed=0)
    assert buffer.gamma is None
    OnlineTrainer(agent, env, buffer, total_steps=10, learning_starts=8, batch_size=8)
    assert buffer.gamma == 0.9
    with pytest.raises(QlearnError, match="differs from the agent's"):
        OnlineTrainer(agent, env, ReplayBuffer(100, n_step=3, gamma=0.99, seed=0), total_steps=10,
                      learning_starts=8, batch_size=8)


class FailingEval(gym.Wrapper):
    """An evaluation env that dies in its first ``step`` (a run killed during the final evaluation)."""

    def step(self, action):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt


def test_a_run_killed_in_its_final_evaluation_resumes_at_the_budget_and_only_evaluates(tmp_path: Path) -> None:
    def trainer(eval_env: gym.Env) -> OnlineTrainer:
        return OnlineTrainer(CountingAgent(), make_env("CartPole-v1", num_envs=1, seed=0), ReplayBuffer(1000, seed=0),
                             eval_env=eval_env, run_dir=tmp_path, total_steps=300, learning_starts=50, batch_size=8,
                             eval_every=0, eval_episodes=1, checkpoint_every=1000, progress=False)

    with pytest.raises(KeyboardInterrupt):
        trainer(FailingEval(gym.make("CartPole-v1"))).run()
    assert [p.name for p in list_checkpoints(tmp_path)][-1] == "step_000000300.pt"
    resumed = trainer(gym.make("CartPole-v1"))
    resumed.resume_from()
    assert resumed.env_step == 300
    results = resumed.run()
    assert resumed.agent.num_updates == 250 and results["final_eval"]["episodes"] == 1
    assert [e["step"] for e in resumed.eval_history] == [300]
    newest = list_checkpoints(tmp_path)[-1]  # rewritten after the evaluation, its replay file kept
    assert [e["step"] for e in torch.load(newest, weights_only=True)["trainer"]["eval_history"]] == [300]
    assert (newest.parent / newest.name.replace("step_", "replay_")).exists()


def test_the_final_evaluation_is_announced_reports_progress_and_records_its_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import qlearn.trainers.loop as loop
    monkeypatch.setattr(loop, "PROGRESS_SECONDS", 0.0)  # a progress line at every chance
    trainer = make_trainer(CountingAgent(), run_dir=tmp_path, eval_env=make_env("CartPole-v1", seed=1),
                           eval_every=0, eval_episodes=3)
    with caplog.at_level("INFO", logger="qlearn"):
        results = trainer.run()
    messages = [r.getMessage() for r in caplog.records]
    start = messages.index("final evaluation: 3 episodes, epsilon 0")
    assert messages[start + 1:start + 4] == [
        f"evaluating: {k}/3 episodes, mean return so far {np.mean(results['final_eval']['returns'][:k]):.2f}"
        for k in (1, 2, 3)]
    assert messages[start + 4].endswith(f"(3 episodes, {results['final_eval']['wall_time_s']:.1f} s)")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["final_eval"]["wall_time_s"] > 0.0
