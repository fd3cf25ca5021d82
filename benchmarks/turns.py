"""Run workloads in turns of a few thousand env steps, so the drifts of a shared machine hit all of them alike.

cpu2's speed drifts by up to 2x within a minute, with nothing visible in the guest (no steal time; CPU time
drifts with wall time). Whole runs back to back gave per-round qlearn/bare ratios from 0.84 to 1.36 on CartPole;
workloads that take turns every couple of seconds see the same machine, and their ratio held within 1.15-1.19
over four rounds on the same stretch.

Each workload runs in its own thread and calls ``tick(env_step)`` before every env step; at each multiple of
``chunk`` it hands the baton to the next workload and waits for its turn. Only one thread runs at a time, and a
workload is timed over its own turns from its first ``tick`` (set-up is not timed) to its return, leaving out the
turns that start before ``timed_from``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym

Tick = Callable[[int], None]


class Turns:
    """One round: every workload runs its ``total_steps`` env steps in turns of ``chunk``; ``run`` returns env-steps/s."""

    def __init__(self, chunk: int, total_steps: int, timed_from: int = 0) -> None:
        self.chunk, self.total_steps, self.timed_from = int(chunk), int(total_steps), int(timed_from)
        self._order: list[str] = []
        self._go: dict[str, threading.Event] = {}
        self._finished: set[str] = set()
        self.seconds: dict[str, float] = {}
        self.steps: dict[str, int] = {}

    def run(self, workloads: dict[str, Callable[[Tick], Any]]) -> dict[str, float]:
        """Run ``name -> fn(tick)`` in turns (in this order); env steps per second of each, over its timed turns."""
        self._order = list(workloads)
        self._go = {name: threading.Event() for name in workloads}
        self.seconds = dict.fromkeys(workloads, 0.0)
        self.steps = dict.fromkeys(workloads, 0)
        errors: list[BaseException] = []
        threads = [threading.Thread(target=self._play, args=(name, fn, errors)) for name, fn in workloads.items()]
        for thread in threads:
            thread.start()
        self._go[self._order[0]].set()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return {name: self.steps[name] / self.seconds[name] for name in workloads}

    def _play(self, name: str, fn: Callable[[Tick], Any], errors: list[BaseException]) -> None:
        state = {"start": None, "from_step": 0, "last": -1}  # the current turn's start time and env step

        def tick(env_step: int) -> None:
            if state["start"] is None:  # the first env step: timing starts here, not at set-up
                state["start"], state["from_step"] = time.perf_counter(), env_step
            elif env_step // self.chunk != state["last"] // self.chunk:  # crossed a multiple of chunk
                self._close_turn(name, state, env_step)
                self._pass(name)
                self._go[name].wait()
                self._go[name].clear()
                state["start"], state["from_step"] = time.perf_counter(), env_step
            state["last"] = env_step

        self._go[name].wait()
        self._go[name].clear()
        try:
            fn(tick)
            self._close_turn(name, state, self.total_steps)
        except BaseException as error:  # noqa: BLE001 - re-raised by run() in the main thread
            errors.append(error)
        finally:
            self._finished.add(name)
            self._pass(name)

    def _close_turn(self, name: str, state: dict[str, Any], env_step: int) -> None:
        if state["start"] is not None and state["from_step"] >= self.timed_from:
            self.seconds[name] += time.perf_counter() - state["start"]
            self.steps[name] += env_step - state["from_step"]

    def _pass(self, name: str) -> None:
        """Wake the next unfinished workload after ``name`` (``name`` itself if it is the only one left)."""
        i = self._order.index(name)
        for k in range(1, len(self._order) + 1):
            nxt = self._order[(i + k) % len(self._order)]
            if nxt not in self._finished:
                self._go[nxt].set()
                return


class TickingEnv(gym.vector.VectorWrapper):
    """Calls ``tick(env steps so far)`` before each ``step``: how a trainer's loop takes part in `Turns`."""

    def __init__(self, env: gym.vector.VectorEnv, tick: Tick) -> None:
        super().__init__(env)
        self._tick, self._env_steps, self._num_envs = tick, 0, env.num_envs

    def step(self, actions: Any) -> Any:
        self._tick(self._env_steps)
        self._env_steps += self._num_envs
        return self.env.step(actions)
