"""Offline data layer: loading/saving (D4RL HDF5, npz, Minari), validation, sampling, transforms, scores."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from qlearn.buffers import ReplayBuffer
from qlearn.offline import (
    DatasetError,
    OfflineDataset,
    load_dataset,
    load_training_dataset,
    normalize_env_observations,
    normalized_score,
    prepare_dataset,
    reference_scores,
    save_dataset,
)
from qlearn.offline import minari_store
from qlearn.offline.scores import d4rl_family
from qlearn.types import Batch, EnvSpec

h5py = pytest.importorskip("h5py")

HOPPER = EnvSpec((11,), "float32", (3,), action_low=(-1.0,) * 3, action_high=(1.0,) * 3)
CARTPOLE = EnvSpec((4,), "float32", (), num_actions=2)


def rows(n: int, dim: int = 1) -> np.ndarray:
    """Observations whose first feature is the row index, so a sampled row can be traced back."""
    obs = np.zeros((n, dim), dtype=np.float32)
    obs[:, 0] = np.arange(n)
    return obs


def flat(n: int = 6, obs_dim: int = 11, act_dim: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    return {
        "observations": obs,
        "actions": rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        "rewards": rng.normal(size=n).astype(np.float32),
        "next_observations": obs + 0.5,
        "terminals": np.zeros(n, dtype=bool),
        "timeouts": np.zeros(n, dtype=bool),
    }


def make(n: int = 6, **overrides: np.ndarray) -> OfflineDataset:
    arrays = {**flat(n), **overrides}
    return OfflineDataset(**arrays, seed=0)


# ---------------------------------------------------------------------- file round trips
def test_hdf5_round_trip_keeps_arrays_dtypes_and_metadata(tmp_path: Path) -> None:
    arrays = flat(8)
    arrays["terminals"][3] = True
    arrays["timeouts"][7] = True
    arrays["rewards"] = arrays["rewards"].astype(np.float64)  # stored as float32
    meta = {"env_id": "Hopper-v5", "ref_min_score": -20.272305, "ref_max_score": 3234.3,
            "behaviour_return_mean": np.float32(1.5), "seeds": [0, 1], "note": None}
    path = save_dataset(tmp_path / "d.hdf5", arrays, meta)
    with h5py.File(path, "r") as f:
        assert f["terminals"].dtype == np.bool_ and f["rewards"].dtype == np.float32
        assert f["observations"].compression == "gzip"
        assert f.attrs["env_id"] == "Hopper-v5"
    ds = load_dataset(path)
    assert len(ds) == 8
    for key, attr in (("observations", "observations"), ("actions", "actions"), ("rewards", "rewards"),
                      ("next_observations", "next_observations")):
        np.testing.assert_array_equal(getattr(ds, attr).numpy(), arrays[key].astype(np.float32))
    np.testing.assert_array_equal(ds.terminals.numpy(), arrays["terminals"].astype(np.float32))
    np.testing.assert_array_equal(ds.timeouts.numpy(), arrays["timeouts"])
    expected = {**meta, "behaviour_return_mean": 1.5, "source": str(path), "format": "hdf5"}
    assert ds.metadata == expected


def test_d4rl_metadata_group_and_infos_are_tolerated(tmp_path: Path) -> None:
    arrays = flat(4)
    path = tmp_path / "d4rl.hdf5"
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
        f.create_dataset("infos/qpos", data=np.zeros((4, 6)))
        f.create_dataset("metadata/algorithm", data=b"SAC")
        f.create_dataset("metadata/iteration", data=np.int32(7))
        f.create_dataset("metadata/policy/fc0/weight", data=np.zeros((256, 11)))
    ds = load_dataset(path)
    assert ds.metadata["algorithm"] == "SAC" and ds.metadata["iteration"] == 7
    assert "policy" not in ds.metadata and len(ds) == 4


def episode_file() -> dict[str, np.ndarray]:
    """Rows 0-2: episode A ending in a timeout at row 2; rows 3-4: episode B, terminal at row 4; rows 5-6: an
    unfinished episode C. Observation = row index; rewards 1, 2, 4, ... (distinct powers of two)."""
    n = 7
    return {
        "observations": rows(n),
        "actions": np.zeros((n, 3), dtype=np.float32),
        "rewards": (2.0 ** np.arange(n)).astype(np.float32),
        "terminals": np.array([0, 0, 0, 0, 1, 0, 0], dtype=bool),
        "timeouts": np.array([0, 0, 1, 0, 0, 0, 0], dtype=bool),
    }


def test_next_obs_rebuilt_from_consecutive_rows_when_absent(tmp_path: Path) -> None:
    path = save_dataset(tmp_path / "no_next.hdf5", episode_file(), {})
    ds = load_dataset(path)
    # dropped: row 2 (timeout, its successor is episode B's first obs) and row 6 (last); terminal row 4 kept
    np.testing.assert_array_equal(ds.observations[:, 0].numpy(), [0, 1, 3, 4, 5])
    np.testing.assert_array_equal(ds.next_observations[:, 0].numpy(), [1, 2, 4, 5, 6])
    np.testing.assert_array_equal(ds.rewards.numpy(), [1, 2, 8, 16, 32])
    np.testing.assert_array_equal(ds.terminals.numpy(), [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(ds.timeouts.numpy(), [0, 1, 0, 0, 0])  # row 1 now ends episode A
    np.testing.assert_array_equal(ds.episode_returns(), [1 + 2, 8 + 16])


def test_rebuild_keeps_a_terminal_last_row_with_a_placeholder_next_obs(tmp_path: Path) -> None:
    arrays = episode_file()
    arrays["terminals"][6] = True
    ds = load_dataset(save_dataset(tmp_path / "t.npz", arrays, {}))
    np.testing.assert_array_equal(ds.observations[:, 0].numpy(), [0, 1, 3, 4, 5, 6])
    assert ds.next_observations[-1, 0] == 6 and ds.terminals[-1] == 1


def d4rl_qlearning_reference(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """d4rl.qlearning_dataset(terminate_on_end=False) as documented in REFERENCES.md A1, written as a loop."""
    out: dict[str, list] = {"observations": [], "next_observations": [], "actions": [], "rewards": [], "terminals": []}
    for i in range(len(data["rewards"]) - 1):
        if data["timeouts"][i]:
            continue
        out["observations"].append(data["observations"][i])
        out["next_observations"].append(data["observations"][i + 1])
        out["actions"].append(data["actions"][i])
        out["rewards"].append(data["rewards"][i])
        out["terminals"].append(float(data["terminals"][i]))
    return {k: np.array(v) for k, v in out.items()}


def test_d4rl_mode_drops_timeout_rows_and_the_last_row(tmp_path: Path) -> None:
    arrays = episode_file()
    arrays["terminals"][6] = True  # "stored" mode would keep this row
    arrays["next_observations"] = arrays["observations"] + 0.5  # d4rl ignores stored next observations
    path = save_dataset(tmp_path / "d.hdf5", arrays, {})
    ds = load_dataset(path, next_observations="d4rl")
    np.testing.assert_array_equal(ds.observations[:, 0].numpy(), [0, 1, 3, 4, 5])
    np.testing.assert_array_equal(ds.next_observations[:, 0].numpy(), [1, 2, 4, 5, 6])
    np.testing.assert_array_equal(ds.terminals.numpy(), [0, 0, 0, 1, 0])
    stored = load_dataset(path)  # default: every row, stored next observations
    assert len(stored) == 7
    np.testing.assert_array_equal(stored.next_observations[:, 0].numpy(), np.arange(7) + 0.5)
    np.testing.assert_array_equal(stored.timeouts.numpy(), arrays["timeouts"])


def test_d4rl_mode_matches_the_qlearning_dataset_loop_on_random_flags(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = flat(200, seed=3)
    data["terminals"] = rng.random(200) < 0.05
    data["timeouts"] = (rng.random(200) < 0.05) & ~data["terminals"]
    data["timeouts"][-1] = True
    ds = load_dataset(save_dataset(tmp_path / "r.hdf5", data, {}), next_observations="d4rl")
    ref = d4rl_qlearning_reference(data)
    assert len(ds) == len(ref["rewards"]) < 199
    for key in ("observations", "next_observations", "actions", "rewards", "terminals"):
        np.testing.assert_array_equal(getattr(ds, key).numpy(), ref[key].astype(np.float32), err_msg=key)


def test_npz_round_trip_and_discrete_actions(tmp_path: Path) -> None:
    arrays = flat(5)
    arrays["actions"] = np.array([0, 1, 1, 0, 1], dtype=np.int32)
    meta = {"env_id": "CartPole-v1", "behaviour_policy": "random"}
    path = save_dataset(tmp_path / "c.npz", arrays, meta)
    ds = load_dataset(path)
    assert ds.discrete and ds.actions.dtype == torch.int64
    np.testing.assert_array_equal(ds.actions.numpy(), arrays["actions"])
    np.testing.assert_array_equal(ds.observations.numpy(), arrays["observations"])
    assert ds.metadata == {**meta, "source": str(path), "format": "npz"}


def test_npz_with_an_object_array_is_refused(tmp_path: Path) -> None:
    arrays = flat(3)
    path = tmp_path / "evil.npz"
    np.savez(path, **arrays, extra=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DatasetError, match="'extra' holds Python objects.*never unpickles"):
        load_dataset(path)


# ---------------------------------------------------------------------- Minari
def test_minari_dataset_written_by_minari(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    minari = pytest.importorskip("minari")
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    rng = np.random.default_rng(0)
    o0, o1 = rng.normal(size=(4, 4)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)
    buffers = [
        EpisodeBuffer(id=0, seed=0, observations=o0, actions=np.array([0, 1, 1]), rewards=[1.0, 1.0, 1.0],
                      terminations=[False, False, True], truncations=[False, False, False], infos={}),
        EpisodeBuffer(id=1, seed=1, observations=o1, actions=np.array([1, 0]), rewards=[1.0, 1.0],
                      terminations=[False, False], truncations=[False, True], infos={}),
    ]
    minari.create_dataset_from_buffers(dataset_id="cartpole/tiny-v0", buffer=buffers, env="CartPole-v1",
                                       ref_min_score=0.0, ref_max_score=500.0, data_format="hdf5")
    ds = load_dataset(tmp_path / "cartpole" / "tiny-v0")
    assert len(ds) == 5 and ds.discrete
    np.testing.assert_allclose(ds.observations.numpy(), np.concatenate([o0[:-1], o1[:-1]]))
    np.testing.assert_allclose(ds.next_observations.numpy(), np.concatenate([o0[1:], o1[1:]]))
    np.testing.assert_array_equal(ds.actions.numpy(), [0, 1, 1, 1, 0])
    np.testing.assert_array_equal(ds.terminals.numpy(), [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(ds.timeouts.numpy(), [0, 0, 0, 0, 1])
    assert ds.metadata["env_id"] == "CartPole-v1"
    assert (ds.metadata["ref_min_score"], ds.metadata["ref_max_score"]) == (0.0, 500.0)
    np.testing.assert_array_equal(ds.episode_returns(), [3.0, 2.0])
    ds.validate(CARTPOLE, "CartPole-v1")
    # the same dataset by its id, from the local store, through minari.load_dataset
    monkeypatch.chdir(tmp_path / "cartpole")  # no "cartpole/tiny-v0" relative to here: the id is not a path
    by_id = load_dataset("cartpole/tiny-v0")
    for key in ("observations", "next_observations", "actions", "rewards", "terminals", "timeouts"):
        np.testing.assert_array_equal(getattr(by_id, key).numpy(), getattr(ds, key).numpy())
    assert by_id.metadata["source"] == str(tmp_path / "cartpole" / "tiny-v0")
    assert by_id.metadata["env_id"] == "CartPole-v1" and by_id.metadata["ref_max_score"] == 500.0
    with pytest.raises(DatasetError, match="not found locally.*never downloads at run time"):
        load_dataset("cartpole/absent-v0")
    with pytest.raises(DatasetError, match="use next_observations='stored'"):
        load_dataset("cartpole/tiny-v0", next_observations="d4rl")


def test_minari_id_without_the_minari_package_reads_the_local_store(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "minari", None)  # import minari now raises ImportError
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)
    episode = {"observations": rows(4, 11), "actions": np.zeros((3, 3), dtype=np.float32),
               "rewards": np.ones(3), "terminations": np.array([0, 0, 1], dtype=bool),
               "truncations": np.zeros(3, dtype=bool)}
    write_fake_minari(tmp_path / "store" / "mujoco" / "hopper" / "fake-v0", {0: episode}, {"data_format": "hdf5"})
    ds = load_dataset("mujoco/hopper/fake-v0")
    assert len(ds) == 3 and ds.metadata["source"] == str(tmp_path / "store" / "mujoco" / "hopper" / "fake-v0")
    np.testing.assert_array_equal(ds.next_observations.numpy(), episode["observations"][1:])
    with pytest.raises(DatasetError, match="no Minari dataset 'mujoco/hopper/other-v0' in the local store"):
        load_dataset("mujoco/hopper/other-v0")


def test_flat_arrays_written_with_minaris_writer_read_back_equal(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    minari = pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    arrays = flat(7)  # two episodes: a terminal at row 2, then a time-out at row 6
    arrays["next_observations"][:-1] = arrays["observations"][1:]
    arrays["terminals"][:] = 0
    arrays["timeouts"][:] = 0
    arrays["terminals"][2] = 1
    arrays["timeouts"][6] = 1
    arrays["next_observations"][2] = 99.0  # a terminal's successor is its own final observation
    minari_store.write("hopper/written-v0", arrays, {"env_id": "Hopper-v5", "ref_min_score": 0.0,
                                                     "ref_max_score": 10.0}, source="test")
    assert minari.load_dataset("hopper/written-v0").total_episodes == 2
    back = load_dataset(tmp_path / "hopper" / "written-v0")
    for key in ("observations", "next_observations", "actions", "rewards", "terminals", "timeouts"):
        np.testing.assert_array_equal(getattr(back, key).numpy(), arrays[key].astype(getattr(back, key).numpy().dtype))
    assert back.metadata["env_id"] == "Hopper-v5" and back.metadata["ref_max_score"] == 10.0
    broken = {**arrays, "next_observations": arrays["next_observations"] + 1.0}
    with pytest.raises(DatasetError, match=r"rows 0\.\.2 are not one episode"):
        minari_store.write("hopper/broken-v0", broken, {"env_id": "Hopper-v5"}, source="test")


def write_fake_minari(root: Path, episodes: dict[int, dict[str, np.ndarray]], info: dict) -> Path:
    """A Minari hdf5 dataset laid out by hand (REFERENCES.md A2), so the reader is tested without minari."""
    data = root / "data"
    data.mkdir(parents=True)
    with h5py.File(data / "main_data.hdf5", "w") as f:
        for i, ep in episodes.items():
            g = f.create_group(f"episode_{i}")
            for key, value in ep.items():
                g.create_dataset(key, data=value)
            g.create_group("infos")
    (data / "metadata.json").write_text(json.dumps(info))
    return root


def test_minari_folder_read_with_h5py(tmp_path: Path) -> None:
    def episode(start: float, steps: int, term: bool, trunc: bool) -> dict[str, np.ndarray]:
        ends = np.zeros(steps, dtype=bool)
        return {"observations": rows(steps + 1, 11) + start, "actions": np.zeros((steps, 3), dtype=np.float32),
                "rewards": np.full(steps, start, dtype=np.float64),
                "terminations": np.concatenate([ends[:-1], [term]]),
                "truncations": np.concatenate([ends[:-1], [trunc]])}

    episodes = {10: episode(100, 2, False, False), 2: episode(20, 3, True, False), 0: episode(0, 1, False, True)}
    info = {"data_format": "hdf5", "dataset_id": "mujoco/hopper/fake-v0", "ref_min_score": -1.0,
            "ref_max_score": 9.0, "env_spec": json.dumps({"id": "Hopper-v5", "max_episode_steps": 1000})}
    root = write_fake_minari(tmp_path / "fake-v0", episodes, info)
    ds = load_dataset(root)
    # episodes in id order 0, 2, 10 (not string order 0, 10, 2)
    np.testing.assert_array_equal(ds.observations[:, 0].numpy(), [0, 20, 21, 22, 100, 101])
    np.testing.assert_array_equal(ds.next_observations[:, 0].numpy(), [1, 21, 22, 23, 101, 102])
    np.testing.assert_array_equal(ds.terminals.numpy(), [0, 0, 0, 1, 0, 0])
    # episode 10 stopped with neither flag: its last row still ends it
    np.testing.assert_array_equal(ds.timeouts.numpy(), [1, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(ds.episode_returns(), [0.0, 60.0, 200.0])
    assert ds.metadata["env_id"] == "Hopper-v5" and ds.metadata["ref_max_score"] == 9.0
    assert ds.metadata["format"] == "minari"
    with pytest.raises(DatasetError, match="use next_observations='stored'"):
        load_dataset(root, next_observations="d4rl")


def test_minari_arrow_format_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "arrow-v0" / "data"
    data.mkdir(parents=True)
    (data / "metadata.json").write_text(json.dumps({"data_format": "arrow"}))
    with pytest.raises(DatasetError, match="'arrow' format.*data_format='hdf5'"):
        load_dataset(tmp_path / "arrow-v0")


# ---------------------------------------------------------------------- refusals
def test_missing_key_names_the_key_and_what_a_file_needs(tmp_path: Path) -> None:
    arrays = flat(4)
    del arrays["rewards"]
    path = tmp_path / "x.hdf5"
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    with pytest.raises(DatasetError, match=r"has no 'rewards' array \(keys found: actions, next_observations, "
                                           r"observations, terminals, timeouts\)\. A D4RL-format"):
        load_dataset(path)


def test_bad_paths_and_modes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope.hdf5")
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(DatasetError, match="suffix '.csv'"):
        load_dataset(tmp_path / "data.csv")
    with pytest.raises(DatasetError, match="not a local Minari dataset"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="'stored' or 'd4rl'"):
        load_dataset(tmp_path / "data.csv", next_observations="qlearning")
    (tmp_path / "broken.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(DatasetError, match="could not read .* as HDF5"):
        load_dataset(tmp_path / "broken.hdf5")


def test_constructor_names_inconsistent_arrays() -> None:
    arrays = flat(5)
    with pytest.raises(DatasetError, match="'rewards' has \\(4,\\) rows but 'observations' has 5"):
        OfflineDataset(**{**arrays, "rewards": arrays["rewards"][:4]})
    with pytest.raises(DatasetError, match=r"'rewards' has shape \[5, 1\]; it must be 1-D"):
        OfflineDataset(**{**arrays, "rewards": arrays["rewards"][:, None]})
    with pytest.raises(DatasetError, match="'terminals' must hold 0/1 flags, found 0.5 at row 2"):
        OfflineDataset(**{**arrays, "terminals": np.array([0, 0, 0.5, 1, 0])})
    with pytest.raises(DatasetError, match="'next_observations' has shape"):
        OfflineDataset(**{**arrays, "next_observations": arrays["next_observations"][:, :3]})
    with pytest.raises(DatasetError, match="continuous actions must be \\[N, act_dim\\]"):
        OfflineDataset(**{**arrays, "actions": np.zeros(5, dtype=np.float32)})
    with pytest.raises(DatasetError, match="empty"):
        OfflineDataset(**{k: v[:0] for k, v in arrays.items()})


def test_validate_accepts_good_data_at_the_action_bounds() -> None:
    actions = np.array([[-1, 1, 0], [1 + 5e-7, -1 - 5e-7, 0.3], [0, 0, 0], [0.5, 0.5, 0.5]], dtype=np.float64)
    make(4, actions=actions).validate(HOPPER, "Hopper-v5")


def test_validate_refuses_nan_rewards_with_count_and_first_row() -> None:
    rewards = flat(6)["rewards"]
    rewards[[3, 5]] = [np.nan, np.inf]
    with pytest.raises(DatasetError, match=r"'rewards' has NaN or inf in 2 rows \(first at row 3\)"):
        make(6, rewards=rewards).validate(HOPPER, "Hopper-v5")


def test_validate_refuses_other_observation_size() -> None:
    ds = make(4, observations=np.zeros((4, 12)), next_observations=np.zeros((4, 12)))
    ds.metadata["env_id"] = "Walker2d-v5"
    with pytest.raises(DatasetError, match="dataset observations have 12 features but Hopper-v5 observations have "
                                           "11 \\(the dataset's metadata says it was collected on Walker2d-v5\\)"):
        ds.validate(HOPPER, "Hopper-v5")


def test_validate_refuses_actions_outside_bounds() -> None:
    actions = np.zeros((4, 3), dtype=np.float32)
    actions[1, 0], actions[2, 2] = -1.5, 1.2
    with pytest.raises(DatasetError, match=r"actions lie in \[-1.5, 1.2\] but Hopper-v5 actions must be in \[-1, 1\]; "
                                           r"2 rows are outside, first at row 1"):
        make(4, actions=actions).validate(HOPPER, "Hopper-v5")


def test_validate_refuses_discrete_action_out_of_range_and_kind_mismatches() -> None:
    data = flat(4, obs_dim=4)
    discrete = OfflineDataset(**{**data, "actions": np.array([0, 1, 2, 1])})
    with pytest.raises(DatasetError, match=r"range over \[0, 2\] but CartPole-v1 has 2 actions \(valid indices 0..1\)"):
        discrete.validate(CARTPOLE, "CartPole-v1")
    with pytest.raises(DatasetError, match="actions are float vectors \\[3\\] but CartPole-v1 has 2 discrete actions"):
        OfflineDataset(**data).validate(CARTPOLE, "CartPole-v1")
    spec4 = EnvSpec((4,), "float32", (3,), action_low=(-1.0,) * 3, action_high=(1.0,) * 3)
    with pytest.raises(DatasetError, match="actions are integer indices but Hopper-v5 has continuous actions"):
        discrete.validate(spec4, "Hopper-v5")
    spec4x2 = EnvSpec((4,), "float32", (2,), action_low=(-1.0,) * 2, action_high=(1.0,) * 2)
    with pytest.raises(DatasetError, match="actions have shape \\[3\\] but Pendulum2-v0 actions have \\[2\\]"):
        OfflineDataset(**data).validate(spec4x2, "Pendulum2-v0")


# ---------------------------------------------------------------------- sampling
def test_sample_shapes_dtypes_device_and_reproducibility() -> None:
    ds = make(10)
    batch = ds.sample(32)
    assert batch.obs.shape == (32, 11) and batch.next_obs.shape == (32, 11) and batch.action.shape == (32, 3)
    assert batch.reward.shape == (32,) and batch.terminated.shape == (32,)
    assert all(t.dtype == torch.float32 and t.device == torch.device("cpu")
               for t in (batch.obs, batch.action, batch.reward, batch.next_obs, batch.terminated))
    assert batch.discount is None and batch.weight is None and batch.index is None
    again = make(10).sample(32)
    torch.testing.assert_close(again.obs, batch.obs)  # same seed, same draws
    state = ds.state_dict()
    first = ds.sample(8)
    ds.load_state_dict(state)
    torch.testing.assert_close(ds.sample(8).obs, first.obs)


def test_sample_is_uniform_over_rows() -> None:
    n, draws = 10, 100_000
    ds = OfflineDataset(rows(n), np.zeros((n, 1), np.float32), np.zeros(n), rows(n), np.zeros(n), seed=1)
    counts = np.bincount(ds.sample(draws).obs[:, 0].long().numpy(), minlength=n)
    expected = draws / n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 27.88, counts  # chi-square, 9 dof, p = 0.001
    assert np.all(np.abs(counts - expected) < 0.05 * expected), counts


def test_sample_discrete_actions_are_int64_vectors() -> None:
    data = flat(6, obs_dim=4)
    batch = OfflineDataset(**{**data, "actions": np.arange(6) % 2}, seed=0).sample(16)
    assert batch.action.shape == (16,) and batch.action.dtype == torch.int64


# ---------------------------------------------------------------------- episodes and transforms
def test_episode_returns_by_hand() -> None:
    rewards = np.array([1, 2, 3, 10, 20, 100, 5, 6], dtype=np.float32)
    terminals = np.array([0, 0, 1, 0, 0, 1, 0, 0])
    timeouts = np.array([0, 0, 0, 0, 1, 0, 0, 0])  # episodes: [0-2], [3-4], [5], tail [6-7]
    ds = make(8, rewards=rewards, terminals=terminals, timeouts=timeouts)
    np.testing.assert_array_equal(ds.episode_returns(), [6, 30, 100])
    np.testing.assert_array_equal(ds.episode_returns(include_partial=True), [6, 30, 100, 11])
    assert ds.iql_reward_scale() == pytest.approx(1000 / (100 - 6))
    assert ds.iql_reward_scale(include_partial=True) == pytest.approx(1000 / (100 - 6))
    ds.scale_rewards(scale=2.0, shift=-1.0)
    np.testing.assert_array_equal(ds.rewards.numpy(), rewards * 2 - 1)


def test_iql_reward_scale_needs_two_distinct_episode_returns() -> None:
    with pytest.raises(DatasetError, match="at least two episodes"):
        make(4, terminals=np.array([0, 0, 0, 1])).iql_reward_scale()


def test_normalize_observations_uses_dataset_stats_for_both_obs_and_next_obs() -> None:
    rng = np.random.default_rng(0)
    obs = (rng.normal(size=(500, 3)) * [1.0, 10.0, 0.1] + [5.0, -2.0, 0.0]).astype(np.float32)
    next_obs = obs * 2.0
    ds = make(500, observations=obs, next_observations=next_obs, actions=np.zeros((500, 3)),
              rewards=np.zeros(500), terminals=np.zeros(500), timeouts=np.zeros(500))
    mean, std = ds.normalize_observations(eps=1e-3)
    np.testing.assert_allclose(mean, obs.mean(0, dtype=np.float64), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, obs.std(0) + 1e-3, rtol=1e-5)
    got = ds.observations.numpy()
    np.testing.assert_allclose(got.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(got.std(0), obs.std(0) / (obs.std(0) + 1e-3), rtol=1e-5)  # ~1
    np.testing.assert_allclose(ds.next_observations.numpy(), (next_obs - mean) / std, rtol=1e-5, atol=1e-5)
    with pytest.raises(DatasetError, match="already normalized"):
        ds.normalize_observations()


def test_normalize_env_observations_transforms_reset_step_and_final_obs() -> None:
    def env() -> gym.vector.VectorEnv:
        return gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2, autoreset_mode=AutoresetMode.SAME_STEP)

    mean, std = np.array([0.1, 0.2, 0.3, 0.4], np.float32), np.array([2.0, 4.0, 0.5, 1.0], np.float32)
    raw, wrapped = env(), normalize_env_observations(env(), mean, std)
    o_raw, _ = raw.reset(seed=5)
    o_wr, _ = wrapped.reset(seed=5)
    np.testing.assert_allclose(o_wr, (o_raw - mean) / std, rtol=1e-6)
    assert wrapped.single_observation_space.shape == (4,)
    finals = 0
    for _ in range(200):
        o_raw, _, term, trunc, info_raw = raw.step(np.array([1, 1]))
        o_wr, _, _, _, info_wr = wrapped.step(np.array([1, 1]))
        np.testing.assert_allclose(o_wr, (o_raw - mean) / std, rtol=1e-6)
        for i in np.flatnonzero(term | trunc):
            np.testing.assert_allclose(info_wr["final_obs"][i], (info_raw["final_obs"][i] - mean) / std, rtol=1e-6)
            finals += 1
    assert finals > 0
    raw.close()
    wrapped.close()


# ---------------------------------------------------------------------- preparation for training
def episodes_file(tmp_path: Path, n: int = 300, **overrides: np.ndarray) -> Path:
    """A Hopper-shaped file of n rows in episodes of 50 (timeouts), rewards differing per episode."""
    arrays = flat(n)
    arrays["timeouts"][49::50] = True
    arrays["rewards"] += np.repeat(np.arange(n // 50), 50).astype(np.float32)
    return save_dataset(tmp_path / "d.hdf5", {**arrays, **overrides}, {"env_id": "Hopper-v5"})


@pytest.mark.parametrize("key, options", [("rewards", {"reward_scale": "iql"}),
                                          ("observations", {"normalize_observations": True})])
def test_prepare_names_the_stored_bad_row_before_any_transform(tmp_path: Path, key: str, options: dict) -> None:
    bad = flat(300)[key]
    bad[123] = np.nan  # a transform computed over the whole column would spread it to every row
    dataset, env_id = load_training_dataset({"path": episodes_file(tmp_path, **{key: bad})}, None, device="cpu", seed=0)
    assert env_id == "Hopper-v5"  # from the file's metadata
    stored = getattr(dataset, key).clone()
    with pytest.raises(DatasetError, match=rf"'{key}' has NaN or inf in 1 row \(first at row 123\)"):
        prepare_dataset(dataset, HOPPER, options, env_id)
    torch.testing.assert_close(getattr(dataset, key), stored, equal_nan=True)


def test_prepare_transforms_after_validating_and_returns_what_the_env_needs(tmp_path: Path) -> None:
    dataset, env_id = load_training_dataset({"path": episodes_file(tmp_path)}, "Hopper-v5", device="cpu", seed=0)
    raw_rewards, raw_obs = dataset.rewards.clone(), dataset.observations.clone()
    scale = dataset.iql_reward_scale()
    options = {"reward_scale": "iql", "reward_shift": -1.0, "normalize_observations": True}
    prepared = prepare_dataset(dataset, HOPPER, options, env_id)
    assert prepared.dataset is dataset and prepared.env_id == "Hopper-v5"
    assert prepared.reward == (pytest.approx(scale), -1.0)
    torch.testing.assert_close(dataset.rewards, raw_rewards * scale - 1.0)
    mean, std = prepared.obs_stats
    torch.testing.assert_close(dataset.observations, (raw_obs - torch.as_tensor(mean)) / torch.as_tensor(std))
    plain = prepare_dataset(load_training_dataset({"path": episodes_file(tmp_path / "x")}, None, device="cpu",
                                                  seed=0)[0], HOPPER, {}, "Hopper-v5")
    assert plain.reward == (1.0, 0.0) and plain.obs_stats is None


def test_preparation_refuses_missing_path_unknown_env_and_bad_scale(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="pass dataset.path="):
        load_training_dataset({"path": None}, "Hopper-v5", device="cpu", seed=0)
    no_env = save_dataset(tmp_path / "n.hdf5", flat(6), {})
    with pytest.raises(DatasetError, match="does not say which env it comes from; pass env.id="):
        load_training_dataset({"path": no_env}, None, device="cpu", seed=0)
    dataset, env_id = load_training_dataset({"path": no_env}, "Hopper-v5", device="cpu", seed=0)
    observations = dataset.observations.clone()
    with pytest.raises(DatasetError, match="reward_scale must be null, iql or a number, got 'iqll'"):
        prepare_dataset(dataset, HOPPER, {"reward_scale": "iqll", "normalize_observations": True}, env_id)
    torch.testing.assert_close(dataset.observations, observations)  # a refused dataset is left as loaded
    assert dataset.obs_mean is None


# ---------------------------------------------------------------------- scores
def test_normalized_score_and_reference_scores() -> None:
    assert normalized_score(3234.3, -20.272305, 3234.3) == pytest.approx(100.0)
    assert normalized_score(-20.272305, -20.272305, 3234.3) == pytest.approx(0.0)
    np.testing.assert_allclose(normalized_score(np.array([5.0, 10.0]), 0.0, 10.0), [50.0, 100.0])
    collected = {"ref_min_score": 1.0, "ref_max_score": 2.0}
    assert reference_scores("Hopper-v5", collected) == (-20.272305, 3234.3)  # D4RL family wins
    assert reference_scores("HalfCheetah-v5") == (-280.178953, 12135.0)
    assert reference_scores("walker2d-medium-v2") == (1.629008, 4592.3)
    assert reference_scores("Pendulum-v1", collected) == (1.0, 2.0)
    assert reference_scores("Pendulum-v1") is None
    assert d4rl_family("antmaze-umaze-v2") is None and d4rl_family("Ant-v5") == "ant"
    with pytest.raises(DatasetError, match="ref_max > ref_min"):
        normalized_score(1.0, 2.0, 2.0)


# ---------------------------------------------------------------------- saving safely
def test_save_refuses_overwrite_and_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_dataset(tmp_path / "d.hdf5", flat(3), {"env_id": "Hopper-v5"})
    before = path.read_bytes()
    with pytest.raises(DatasetError, match="already exists; pass overwrite=True"):
        save_dataset(path, flat(4), {})
    assert path.read_bytes() == before
    save_dataset(path, flat(4), {}, overwrite=True)
    assert len(load_dataset(path)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.hdf5"]

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez_compressed", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        save_dataset(tmp_path / "e.npz", flat(3), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.hdf5"]  # no e.npz, no temp file
    with pytest.raises(DatasetError, match="JSON-serialisable"):
        save_dataset(tmp_path / "f.hdf5", flat(3), {"policy": object()})


# ---------------------------------------------------------------------- offline -> online
def test_to_replay_buffer_round_trip() -> None:
    n = 50
    obs = rows(n, 3)
    terminals = np.zeros(n)
    terminals[[9, 29]] = 1
    timeouts = np.zeros(n)
    timeouts[19] = 1
    rng = np.random.default_rng(0)
    ds = OfflineDataset(obs, rng.uniform(-1, 1, (n, 2)), np.arange(n) * 0.5, obs + 0.25, terminals, timeouts)
    buffer = ReplayBuffer(100, seed=0)
    ds.to_replay_buffer(buffer)
    assert len(buffer) == n
    batch = buffer.sample(40)
    i = batch.obs[:, 0].long()  # the row each sampled transition came from
    torch.testing.assert_close(batch.obs, ds.observations[i])
    torch.testing.assert_close(batch.action, ds.actions[i])
    torch.testing.assert_close(batch.reward, ds.rewards[i])
    torch.testing.assert_close(batch.next_obs, ds.next_observations[i])
    torch.testing.assert_close(batch.terminated, ds.terminals[i])
    with pytest.raises(DatasetError, match="room for 30 more transitions but the dataset has 50"):
        ds.to_replay_buffer(ReplayBuffer(30, seed=0))


def test_to_replay_buffer_keeps_episode_ends_for_n_step_windows() -> None:
    n, gamma = 30, 0.5
    obs = rows(n)
    terminals, timeouts = np.zeros(n), np.zeros(n)
    terminals[9], timeouts[19] = 1, 1  # episodes [0-9] terminal, [10-19] truncated, [20-29]
    rewards = (np.arange(n) + 1).astype(np.float32)
    ds = OfflineDataset(obs, np.zeros((n, 1)), rewards, obs + 1, terminals, timeouts)
    buffer = ReplayBuffer(64, n_step=3, gamma=gamma, seed=0)
    ds.to_replay_buffer(buffer)
    batches = [buffer.sample(25) for _ in range(16)]
    batch = Batch(*(torch.cat([getattr(b, f) for b in batches]) for f in ("obs", "action", "reward", "next_obs",
                                                                         "terminated", "discount")))
    starts = batch.obs[:, 0].long().numpy()
    assert {8, 9, 18, 19} <= set(starts.tolist())  # the windows that a missed episode end would stretch
    for t, reward, discount, nxt, term in zip(starts, batch.reward.numpy(), batch.discount.numpy(),
                                              batch.next_obs[:, 0].numpy(), batch.terminated.numpy()):
        m = 1
        while m < 3 and not (terminals[t + m - 1] or timeouts[t + m - 1]):  # a window stops after an episode end
            m += 1
        assert reward == pytest.approx(sum(gamma**k * rewards[t + k] for k in range(m)))
        assert discount == pytest.approx(gamma**m)
        assert nxt == t + m  # next_obs of the window's last row t + m - 1 is row index + 1
        assert term == terminals[t + m - 1]  # a timeout ends the window but stays non-terminal
