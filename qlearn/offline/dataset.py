"""A fixed dataset of transitions for offline RL, sampled like a replay buffer.

The flat layout is D4RL's (Fu et al., 2020, arXiv 2004.07219; Farama-Foundation/D4RL ``collect_data.py``):
``observations``, ``actions``, ``rewards``, ``next_observations``, ``terminals`` (true termination) and
``timeouts`` (time-limit truncation), one row per transition. An episode ends at a terminal or a timeout row.
Only ``terminals`` stops bootstrapping; a timeout row still bootstraps from its next observation (Pardo et al.,
2018, "Time Limits in Reinforcement Learning").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from qlearn.errors import QlearnError
from qlearn.types import Batch, EnvSpec

__all__ = ["DatasetError", "OfflineDataset", "check_arrays"]

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")
ACTION_TOLERANCE = 1e-6  # slack on the env's action bounds (float32 round-off in stored actions)


class DatasetError(QlearnError, ValueError):
    """An offline dataset that cannot be used as it is: missing keys, wrong shapes, bad values, wrong env."""


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def check_arrays(arrays: dict[str, np.ndarray], source: str = "dataset") -> int:
    """Check that flat D4RL-layout arrays fit together; return the number of rows N.

    Needs the keys in ``REQUIRED_KEYS``; ``next_observations`` and ``timeouts`` are checked when present.
    Raises `DatasetError` naming the key at fault.
    """
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise DatasetError(
            f"{source} has no {missing[0]!r} array (keys found: {', '.join(sorted(arrays)) or 'none'}). "
            "A D4RL-format dataset needs observations, actions, rewards, terminals "
            "(timeouts and next_observations are optional)."
        )
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise DatasetError(f"{source} {key!r} holds Python objects; store a plain numeric array.")
    obs = np.asarray(arrays["observations"])
    if obs.ndim < 2:
        raise DatasetError(
            f"{source} 'observations' has shape {list(obs.shape)}; it must be [N, *obs_shape] "
            "(one row per transition; use observations.reshape(N, -1) for scalar observations)."
        )
    n = obs.shape[0]
    if n < 1:
        raise DatasetError(f"{source} is empty: 'observations' has 0 rows; a dataset needs at least one transition.")
    for key in ("actions", "rewards", "terminals", "next_observations", "timeouts"):
        if key in arrays and np.shape(arrays[key])[:1] != (n,):
            raise DatasetError(
                f"{source} {key!r} has {np.shape(arrays[key])[:1] or 'no'} rows but 'observations' has {n}; "
                "every array needs one row per transition."
            )
    for key in ("rewards", "terminals", "timeouts"):
        if key in arrays and np.ndim(arrays[key]) != 1:
            raise DatasetError(
                f"{source} {key!r} has shape {list(np.shape(arrays[key]))}; it must be 1-D [N] "
                f"(use {key}.reshape(-1))."
            )
    if "next_observations" in arrays and np.shape(arrays["next_observations"]) != obs.shape:
        raise DatasetError(
            f"{source} 'next_observations' has shape {list(np.shape(arrays['next_observations']))}, "
            f"'observations' {list(obs.shape)}; they must match."
        )
    for key in ("terminals", "timeouts"):
        if key in arrays:
            flags = np.asarray(arrays[key])
            bad = (flags != 0) & (flags != 1)
            if bad.any():
                i = _first_row(bad)
                raise DatasetError(
                    f"{source} {key!r} must hold 0/1 flags, found {flags[i].item()} at row {i} "
                    f"({int(bad.sum())} such rows); store booleans."
                )
    actions = np.asarray(arrays["actions"])
    if actions.dtype.kind == "b":
        raise DatasetError(f"{source} 'actions' are booleans; store int action indices or float vectors.")
    if actions.dtype.kind in "iu" and not (actions.ndim == 1 or actions.shape[1:] == (1,)):
        raise DatasetError(
            f"{source} 'actions' are integers shaped {list(actions.shape)}; discrete actions must be [N] indices."
        )
    if actions.dtype.kind == "f" and actions.ndim != 2:
        raise DatasetError(
            f"{source} 'actions' are floats shaped {list(actions.shape)}; continuous actions must be [N, act_dim] "
            "(reshape(-1, 1) for one dimension), discrete actions must be an integer array [N]."
        )
    return int(n)


def _as_tensor(array: np.ndarray, dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.as_tensor(np.ascontiguousarray(array)).to(device=device, dtype=dtype)


class OfflineDataset:
    """N transitions held as tensors on ``device``; `sample` draws uniformly with replacement.

    Dtypes: observations float32 (uint8 kept as uint8, e.g. Atari frames); actions int64 ``[N]`` (discrete) or
    float32 ``[N, act_dim]``; rewards and terminals float32 ``[N]``; timeouts bool ``[N]`` (zeros when not given).
    The caller's arrays are never modified: `normalize_observations` and `scale_rewards` build new tensors.
    ``metadata`` holds what the file said about the data (env_id, ref_min_score, ref_max_score, source, ...).
    """

    def __init__(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: np.ndarray,
        terminals: np.ndarray,
        timeouts: np.ndarray | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        device: str | torch.device = "cpu",
        seed: int | None = None,
    ) -> None:
        arrays = {"observations": observations, "actions": actions, "rewards": rewards,
                  "next_observations": next_observations, "terminals": terminals}
        if timeouts is not None:
            arrays["timeouts"] = timeouts
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        n = check_arrays(arrays)
        self.device = torch.device(device)
        self.metadata: dict[str, Any] = dict(metadata or {})
        obs_dtype = torch.uint8 if arrays["observations"].dtype == np.uint8 else torch.float32
        if arrays["next_observations"].dtype == np.uint8 and obs_dtype != torch.uint8:
            raise DatasetError("dataset 'next_observations' are uint8 but 'observations' are not; store both alike.")
        act = arrays["actions"]
        self.discrete = act.dtype.kind in "iu"
        self.observations = _as_tensor(arrays["observations"], obs_dtype, self.device)
        self.next_observations = _as_tensor(arrays["next_observations"], obs_dtype, self.device)
        if self.discrete:
            self.actions = _as_tensor(act.reshape(n), torch.int64, self.device)  # [N]
        else:
            self.actions = _as_tensor(act, torch.float32, self.device)  # [N, A]
        self.rewards = _as_tensor(arrays["rewards"], torch.float32, self.device)  # [N]
        self.terminals = _as_tensor(arrays["terminals"], torch.float32, self.device)  # [N]
        to = arrays.get("timeouts", np.zeros(n, dtype=bool))
        self.timeouts = _as_tensor(to, torch.bool, self.device)  # [N]
        self.obs_mean: np.ndarray | None = None  # set by normalize_observations
        self.obs_std: np.ndarray | None = None
        self._generator = torch.Generator(device=self.device)
        if seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(int(seed))

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.observations.shape[1:])

    @property
    def observation_dim(self) -> int:
        """Features per observation (the product of ``obs_shape``)."""
        return int(np.prod(self.obs_shape))

    @property
    def action_shape(self) -> tuple[int, ...]:
        """``()`` for discrete actions, ``(act_dim,)`` for continuous ones."""
        return tuple(int(d) for d in self.actions.shape[1:])

    # ------------------------------------------------------------------ sampling
    def sample(self, batch_size: int) -> Batch:
        """``batch_size`` transitions drawn uniformly with replacement, on the dataset's device.

        Indices come from a ``torch.Generator`` on that device, so a GPU dataset never syncs with the host.
        """
        if batch_size < 1:
            raise DatasetError(f"batch_size must be >= 1, got {batch_size}.")
        idx = torch.randint(len(self), (batch_size,), generator=self._generator, device=self.device)  # [B]
        return Batch(
            obs=self.observations[idx],
            action=self.actions[idx],
            reward=self.rewards[idx],
            next_obs=self.next_observations[idx],
            terminated=self.terminals[idx],
        )

    def state_dict(self) -> dict[str, Any]:
        """The sampler's generator state, for an exact resume (the data itself is reloaded from its file)."""
        return {"generator": self._generator.get_state(), "size": len(self)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["size"]) != len(self):
            raise DatasetError(f"sampler state is for a dataset of {state['size']} rows, this one has {len(self)}.")
        self._generator.set_state(state["generator"])

    # ------------------------------------------------------------------ episodes
    def _ends(self) -> np.ndarray:
        """[N] bool: the row ends an episode (terminal or timeout)."""
        return ((self.terminals > 0) | self.timeouts).cpu().numpy()

    def episode_returns(self, include_partial: bool = False) -> np.ndarray:
        """Undiscounted return of each episode, in file order, float64 ``[episodes]``.

        Episodes end at a terminal or timeout row. Rows after the last such row (an episode cut off when
        collection stopped) are left out unless ``include_partial``; IQL's reference code counts that tail as
        an episode (it sets ``dones_float[-1] = 1``), CORL's ``return_reward_range`` leaves it out.
        """
        ends = np.flatnonzero(self._ends())
        rewards = self.rewards.cpu().numpy().astype(np.float64)
        if include_partial and (ends.size == 0 or ends[-1] != len(self) - 1):
            ends = np.append(ends, len(self) - 1)
        cum = np.concatenate(([0.0], np.cumsum(rewards)))  # cum[i] = sum of rewards[:i]
        return cum[ends + 1] - cum[np.concatenate(([0], ends[:-1] + 1))]

    # ------------------------------------------------------------------ checks against an env
    def validate(self, spec: EnvSpec, env_id: str | None = None) -> None:
        """Raise `DatasetError` if the data cannot train an agent for ``spec``: run it before any training.

        Checks observation shape and dtype kind, action type and shape, NaN/inf values, and that actions lie in
        the env's action space (bounds with a 1e-6 tolerance; indices in [0, num_actions)).
        """
        env = env_id or str(self.metadata.get("env_id") or "the env")
        collected = self.metadata.get("env_id")
        hint = f" (the dataset's metadata says it was collected on {collected})" if collected else ""
        if self.obs_shape != tuple(spec.obs_shape):
            if len(self.obs_shape) == 1 and len(spec.obs_shape) == 1:
                what = f"have {self.obs_shape[0]} features but {env} observations have {spec.obs_shape[0]}"
            else:
                what = f"are shaped {list(self.obs_shape)} but {env} observations are {list(spec.obs_shape)}"
            raise DatasetError(
                f"dataset observations {what}{hint}. Load a dataset collected on this env (and version), "
                "or train on the env the dataset was collected on."
            )
        if (spec.obs_dtype == "uint8") != (self.observations.dtype == torch.uint8):
            got = "uint8" if self.observations.dtype == torch.uint8 else "float"
            raise DatasetError(
                f"dataset observations are {got} but {env} observations are {spec.obs_dtype}; "
                "store observations in the env's dtype (uint8 frames stay uint8)."
            )
        if spec.discrete and not self.discrete:
            raise DatasetError(
                f"dataset actions are float vectors {list(self.action_shape)} but {env} has {spec.num_actions} "
                "discrete actions; store integer action indices (actions.astype(np.int64)) or pick a continuous env."
            )
        if not spec.discrete and self.discrete:
            raise DatasetError(
                f"dataset actions are integer indices but {env} has continuous actions of shape "
                f"{list(spec.action_shape)}; store float action vectors [N, act_dim] or pick a discrete env."
            )
        if not spec.discrete and self.action_shape != tuple(spec.action_shape):
            raise DatasetError(
                f"dataset actions have shape {list(self.action_shape)} but {env} actions have "
                f"{list(spec.action_shape)}; load a dataset collected on this env."
            )
        self._check_finite()
        self._check_action_range(spec, env)

    def _check_finite(self) -> None:
        for key in ("observations", "actions", "rewards", "next_observations", "terminals"):
            value: Tensor = getattr(self, key)
            if not value.is_floating_point():
                continue
            bad = ~torch.isfinite(value).reshape(len(self), -1).all(dim=1)  # [N]
            count = int(bad.sum())
            if count:
                first = int(torch.nonzero(bad)[0, 0])
                raise DatasetError(
                    f"dataset {key!r} has NaN or inf in {count} row{'s' if count > 1 else ''} (first at row {first}); "
                    "drop or repair those transitions before training."
                )

    def _check_action_range(self, spec: EnvSpec, env: str) -> None:
        if spec.discrete:
            lo, hi = int(self.actions.min()), int(self.actions.max())
            if lo < 0 or hi >= spec.num_actions:
                bad = (self.actions < 0) | (self.actions >= spec.num_actions)
                raise DatasetError(
                    f"dataset actions range over [{lo}, {hi}] but {env} has {spec.num_actions} actions "
                    f"(valid indices 0..{spec.num_actions - 1}); {int(bad.sum())} rows are outside, first at row "
                    f"{int(torch.nonzero(bad)[0, 0])}. Check the action encoding or pick the env the data came from."
                )
            return
        low = torch.as_tensor(spec.action_low, dtype=torch.float32, device=self.device).reshape(self.action_shape)
        high = torch.as_tensor(spec.action_high, dtype=torch.float32, device=self.device).reshape(self.action_shape)
        flat = self.actions.reshape(len(self), -1)  # [N, A]
        bad = ((flat < low.reshape(-1) - ACTION_TOLERANCE) | (flat > high.reshape(-1) + ACTION_TOLERANCE)).any(dim=1)
        count = int(bad.sum())
        if count:
            def show(bound: Tensor) -> str:
                values = bound.reshape(-1).tolist()
                return f"{values[0]:g}" if len(set(values)) == 1 else str([round(v, 6) for v in values])

            raise DatasetError(
                f"dataset actions lie in [{float(flat.min()):g}, {float(flat.max()):g}] but {env} actions must be in "
                f"[{show(low)}, {show(high)}]; {count} rows are outside, first at row {int(torch.nonzero(bad)[0, 0])}. "
                "Clip the actions to the bounds (np.clip) or rescale them to the env's action space."
            )

    # ------------------------------------------------------------------ transforms
    def normalize_observations(self, eps: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
        """Standardise observations and next observations with the dataset's per-feature mean and std + eps.

        The statistics come from ``observations`` (population std), as in CORL's ``compute_mean_std`` /
        ``normalize_states`` (tinkoff-ai/CORL ``algorithms/offline/iql.py``; eps 1e-3). Returns ``(mean, std)``
        as float32 numpy arrays shaped like one observation: wrap the eval env with the same transform
        (`normalize_env_observations`).
        """
        if self.obs_mean is not None:
            raise DatasetError(
                "observations are already normalized; reuse the statistics of the first call "
                "(dataset.obs_mean, dataset.obs_std) instead of normalizing twice."
            )
        if self.observations.dtype == torch.uint8:
            raise DatasetError("observations are uint8 frames; image observations are scaled by the network, "
                               "not standardised. Do not call normalize_observations on them.")
        obs = self.observations.double()
        mean = obs.mean(dim=0)
        std = obs.std(dim=0, unbiased=False) + eps
        m, s = mean.float(), std.float()
        self.observations = (self.observations - m) / s
        self.next_observations = (self.next_observations - m) / s
        self.obs_mean, self.obs_std = m.cpu().numpy(), s.cpu().numpy()
        return self.obs_mean.copy(), self.obs_std.copy()

    def scale_rewards(self, scale: float = 1.0, shift: float = 0.0) -> None:
        """rewards <- rewards * scale + shift (IQL antmaze uses shift -1; locomotion `iql_reward_scale`)."""
        self.rewards = self.rewards * float(scale) + float(shift)

    def iql_reward_scale(self, include_partial: bool = False) -> float:
        """1000 / (max episode return - min episode return): IQL's locomotion reward normalisation.

        Kostrikov et al. (2022, "Offline RL with Implicit Q-Learning", App. B); reference code
        ``train_offline.py`` ``normalize``. Computed over completed episodes unless ``include_partial``
        (see `episode_returns`). Apply with ``scale_rewards(dataset.iql_reward_scale())``.
        """
        returns = self.episode_returns(include_partial=include_partial)
        if returns.size < 2 or returns.max() == returns.min():
            raise DatasetError(
                f"IQL's reward scale needs at least two episodes with different returns; this dataset has "
                f"{returns.size} completed episodes (episodes end at terminals or timeouts). Mark episode ends "
                "with timeouts, or use scale_rewards with a scale of your choice."
            )
        return float(1000.0 / (returns.max() - returns.min()))

    # ------------------------------------------------------------------ offline -> online
    def to_replay_buffer(self, buffer: Any) -> None:
        """Append every transition, in file order, to a `qlearn.buffers.ReplayBuffer` as one env stream.

        ``truncated`` is the timeout flag. The buffer is filled with ``num_envs = 1``, so online fine-tuning must
        keep adding with one env. Raises if the buffer cannot hold the whole dataset.
        """
        capacity = getattr(buffer, "capacity", None)
        if capacity is not None and capacity - len(buffer) < len(self):
            raise DatasetError(
                f"the replay buffer has room for {capacity - len(buffer)} more transitions but the dataset has "
                f"{len(self)}; the oldest would be overwritten. Raise the buffer capacity to at least "
                f"{len(buffer) + len(self)}."
            )
        obs, next_obs = self.observations.cpu().numpy(), self.next_observations.cpu().numpy()
        actions, rewards = self.actions.cpu().numpy(), self.rewards.cpu().numpy()
        terminated = self.terminals.cpu().numpy() > 0
        truncated = self.timeouts.cpu().numpy() & ~terminated
        add = buffer.add
        for i in range(len(self)):
            s = slice(i, i + 1)  # a leading num_envs dimension of 1
            add(obs[s], actions[s], rewards[s], next_obs[s], terminated[s], truncated[s])
