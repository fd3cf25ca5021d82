"""Minari datasets: read a local dataset folder (h5py alone), load a dataset id from the local store (through the
``minari`` package when it is installed), and write flat D4RL-layout arrays as a Minari dataset with Minari's own
writer (``minari.create_dataset_from_buffers``).

On-disk format: shared/REFERENCES.md "A2. Minari 0.5.4" (one ``episode_<id>`` group per episode in
``data/main_data.hdf5``, with ``data/metadata.json``). The local store is ``$MINARI_DATASETS_PATH``, else
``~/.minari/datasets``; nothing is ever downloaded.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from qlearn.offline.dataset import DatasetError

DATASET_ID = re.compile(r"^[\w.-]+(/[\w.-]+)*-v\d+$")  # Minari's ids: [namespace/]name-v<version>
METADATA_KEYS = ("dataset_id", "algorithm_name", "ref_min_score", "ref_max_score", "total_episodes", "total_steps",
                 "minari_version")
FLAT_KEYS = ("observations", "next_observations", "actions", "rewards", "terminals", "timeouts")


def local_store() -> Path:
    """Where Minari keeps local datasets (its own rule: ``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``)."""
    return Path(os.environ.get("MINARI_DATASETS_PATH") or Path.home() / ".minari" / "datasets").expanduser()


def is_dataset_id(text: str) -> bool:
    """Whether ``text`` reads as a Minari dataset id (``hopper/medium-replay-v0``) rather than a file name."""
    return DATASET_ID.match(text) is not None and not text.endswith((".hdf5", ".h5", ".npz"))


def data_folder(path: Path) -> Path | None:
    """The ``data/`` folder of a local Minari dataset at ``path`` (the dataset folder or its data/ folder)."""
    for data in (path / "data", path):
        if (data / "metadata.json").is_file():
            return data
    return None


def flatten_episodes(episodes: Iterable[Mapping[str, Any]], source: str) -> dict[str, np.ndarray]:
    """Flat D4RL-layout arrays from Minari episodes: obs[:-1], next_obs = obs[1:], terminals = terminations,
    timeouts = truncations, per episode. An episode's last row is also flagged as a timeout when it is not terminal
    (an episode that stopped without either flag still ends there). Episodes without a step are skipped."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in FLAT_KEYS}
    for index, episode in enumerate(episodes):
        obs, actions = episode["observations"], episode["actions"]
        if not isinstance(obs, np.ndarray) or not isinstance(actions, np.ndarray):
            raise DatasetError(f"{source} episode {index} stores observations or actions as a Dict or Tuple space; "
                               "qlearn needs Box observations and Box/Discrete actions. Flatten them first.")
        if obs.shape[0] < 2:
            continue
        terminations = np.asarray(episode["terminations"]).astype(bool)
        truncations = np.asarray(episode["truncations"]).astype(bool).copy()
        truncations[-1] |= not terminations[-1]
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(actions)
        parts["rewards"].append(np.asarray(episode["rewards"]))
        parts["terminals"].append(terminations)
        parts["timeouts"].append(truncations)
    if not parts["rewards"]:
        raise DatasetError(f"the Minari dataset {source} holds no episode with at least one step.")
    return {k: np.concatenate(v) for k, v in parts.items()}


def minari_metadata(info: Mapping[str, Any]) -> dict[str, Any]:
    """qlearn's metadata from Minari's (``metadata.json`` or ``MinariDataset.storage.metadata``): the reference
    scores, the id and the env id (from the stored env spec)."""
    metadata: dict[str, Any] = {"format": "minari"}
    metadata.update({key: info[key] for key in METADATA_KEYS if info.get(key) is not None})
    env_spec = info.get("env_spec")
    if env_spec:
        spec = json.loads(env_spec) if isinstance(env_spec, str) else env_spec
        if isinstance(spec, dict) and spec.get("id"):
            metadata["env_id"] = spec["id"]
    return metadata


def read_folder(data: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A local Minari dataset's ``data/`` folder, read with h5py alone."""
    from qlearn.offline.io import h5py_module

    info = json.loads((data / "metadata.json").read_text())
    fmt = info.get("data_format", "hdf5")
    if fmt != "hdf5" or not (data / "main_data.hdf5").is_file():
        raise DatasetError(
            f"the Minari dataset at {data.parent} is in {fmt!r} format; qlearn reads Minari's hdf5 format "
            "(data/main_data.hdf5). Re-create it with data_format='hdf5'."
        )
    h5py = h5py_module()
    with h5py.File(data / "main_data.hdf5", "r") as f:
        names = sorted((k for k in f if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))

        def episodes() -> Iterable[dict[str, Any]]:
            for name in names:
                group = f[name]
                yield {k: group[k][()] if isinstance(group.get(k), h5py.Dataset) else group.get(k)
                       for k in ("observations", "actions", "rewards", "terminations", "truncations")}

        arrays = flatten_episodes(episodes(), str(data.parent))
    return arrays, minari_metadata(info)


def read_id(dataset_id: str) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """A dataset id from the local store: through ``minari.load_dataset`` (no download) when ``minari`` is installed,
    else the store's folder read with h5py. Returns the arrays, the metadata and where they came from."""
    try:
        import minari
    except ImportError:
        folder = local_store() / dataset_id
        data = data_folder(folder)
        if data is None:
            raise DatasetError(f"no Minari dataset {dataset_id!r} in the local store ({folder} holds no "
                               "data/metadata.json); set MINARI_DATASETS_PATH or pass the dataset's path.") from None
        arrays, metadata = read_folder(data)
        return arrays, metadata, str(folder)
    try:
        dataset = minari.load_dataset(dataset_id, download=False)
    except FileNotFoundError as exc:
        raise DatasetError(f"{exc} qlearn never downloads at run time: fetch it beforehand "
                           f"(minari download {dataset_id}) or pass a file path.") from None
    episodes = ({"observations": ep.observations, "actions": ep.actions, "rewards": ep.rewards,
                 "terminations": ep.terminations, "truncations": ep.truncations} for ep in dataset.iterate_episodes())
    arrays = flatten_episodes(episodes, dataset_id)
    return arrays, minari_metadata(dataset.storage.metadata), str(local_store() / dataset_id)


def episode_buffers(arrays: Mapping[str, np.ndarray], source: str) -> list[Any]:
    """Flat D4RL-layout arrays as Minari ``EpisodeBuffer``s: episodes cut at terminal or time-out flags (the last one
    at the end of the data); within an episode each next observation must be the following observation, as Minari
    stores one observation sequence per episode."""
    from minari.data_collector import EpisodeBuffer

    obs, next_obs = arrays["observations"], arrays["next_observations"]
    terminals, timeouts = arrays["terminals"].astype(bool), arrays["timeouts"].astype(bool)
    ends = np.flatnonzero(terminals | timeouts).tolist()
    if not ends or ends[-1] != len(terminals) - 1:
        ends.append(len(terminals) - 1)  # the data stopped mid-episode: a truncation
    buffers, start = [], 0
    for index, end in enumerate(ends):
        steps = slice(start, end + 1)
        if not np.array_equal(obs[start + 1:end + 1], next_obs[start:end]):
            raise DatasetError(f"{source}: rows {start}..{end} are not one episode (next_observations do not follow "
                               "observations), so they cannot be written as a Minari episode.")
        truncations = timeouts[steps].copy()
        truncations[-1] |= not terminals[end]
        buffers.append(EpisodeBuffer(id=index, observations=np.concatenate([obs[steps], next_obs[end:end + 1]]),
                                     actions=arrays["actions"][steps], rewards=arrays["rewards"][steps].tolist(),
                                     terminations=terminals[steps].tolist(), truncations=truncations.tolist(),
                                     infos={}))
        start = end + 1
    return buffers


def write(dataset_id: str, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any], source: str) -> Any:
    """Write flat arrays into the local store as Minari dataset ``dataset_id`` with Minari's own writer; the env id
    and reference scores travel in its metadata. Returns the ``MinariDataset``."""
    try:
        import minari
    except ImportError:
        raise DatasetError('writing Minari datasets needs the minari package: pip install "qlearn[minari]"') from None
    keys = ("ref_min_score", "ref_max_score")  # Minari takes both or neither
    scores = {k: float(metadata[k]) for k in keys} if all(metadata.get(k) is not None for k in keys) else {}
    with warnings.catch_warnings():  # its advice to name an author, a code permalink and an eval env
        warnings.filterwarnings("ignore", category=UserWarning, module="minari")
        return minari.create_dataset_from_buffers(
            dataset_id=dataset_id, buffer=episode_buffers(arrays, source), env=str(metadata["env_id"]),
            data_format="hdf5", algorithm_name=str(metadata.get("behaviour_policy", "unknown")),
            description=f"written by qlearn from {source}", **scores)
