"""Read and write offline datasets: D4RL-layout HDF5, qlearn's ``.npz``, and local Minari (HDF5) datasets.

D4RL layout and the ``qlearning_dataset`` conventions: shared/REFERENCES.md "A1. D4RL" (Farama-Foundation/D4RL
``scripts/generation/mujoco/collect_data.py`` and ``d4rl/__init__.py``). Minari's on-disk format: REFERENCES.md
"A2. Minari 0.5.4"; Minari folders and ids are read by :mod:`qlearn.offline.minari_store` (h5py alone for a
folder, so the ``minari`` package is not needed; ``minari.load_dataset`` for an id when it is installed).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qlearn.offline import minari_store
from qlearn.offline.dataset import REQUIRED_KEYS, DatasetError, OfflineDataset, check_arrays

__all__ = ["load_dataset", "save_dataset"]

HDF5_SUFFIXES = (".hdf5", ".h5")
METADATA_ATTR = "qlearn_metadata"  # root attr of qlearn-written HDF5 files: the whole metadata dict as JSON
NEXT_OBS_MODES = ("stored", "d4rl")
MINARI_NOT_D4RL = ("next_observations='d4rl' reproduces d4rl.qlearning_dataset on flat D4RL files; a Minari dataset "
                   "stores each episode's final observation, so use next_observations='stored'.")


def h5py_module() -> Any:
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - h5py is a core dependency
        raise DatasetError("reading HDF5 datasets needs h5py: pip install h5py") from err
    return h5py


def _plain(value: Any) -> Any:
    """An HDF5 attribute or scalar dataset as a plain Python value (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


# ---------------------------------------------------------------------- flat arrays -> dataset
def _from_flat(arrays: dict[str, np.ndarray], mode: str, source: str) -> dict[str, np.ndarray]:
    """The five/six arrays of an `OfflineDataset` from flat D4RL-layout ``arrays``, following ``mode``.

    ``"stored"``: stored ``next_observations`` are used when present and every row is kept; timeout rows stay
    (non-terminal, they bootstrap from the stored next observation). Without stored next observations,
    ``next_obs[i] = observations[i + 1]``, and rows with no true successor are dropped: timeout rows (the next
    row starts a new episode) and the last row. Terminal rows are kept: their next observation is only a
    placeholder (the following row, or the row itself at the end), masked out of the TD target by
    ``terminated = 1``. The row before each dropped timeout row is flagged as a timeout, so episodes still end
    there.

    ``"d4rl"``: exactly ``d4rl.qlearning_dataset(env, terminate_on_end=False)``: ``next_obs[i] =
    observations[i + 1]`` (stored next observations ignored), every timeout row dropped, the last row dropped.
    The row before each dropped timeout row is flagged as a timeout here too (bookkeeping for
    `OfflineDataset.episode_returns` and replay-buffer episodes only: it does not change what is sampled).
    d4rl counts steps against the env's time limit when a file has no ``timeouts``; qlearn has no env here and
    drops only the last row.
    """
    check_arrays(arrays, source)
    obs = np.asarray(arrays["observations"])
    n = obs.shape[0]
    terminals = np.asarray(arrays["terminals"]).astype(bool)
    timeouts = np.asarray(arrays["timeouts"]).astype(bool) if "timeouts" in arrays else np.zeros(n, dtype=bool)
    out = {"observations": obs, "actions": np.asarray(arrays["actions"]), "rewards": np.asarray(arrays["rewards"]),
           "terminals": terminals, "timeouts": timeouts}
    if mode == "stored" and "next_observations" in arrays:
        out["next_observations"] = np.asarray(arrays["next_observations"])
        return out
    following = np.concatenate((np.arange(1, n), [n - 1]))  # row i+1; the last row points at itself
    if mode == "d4rl":
        keep = ~timeouts
        keep[-1] = False
    else:
        keep = ~(timeouts & ~terminals)
        keep[-1] = bool(terminals[-1])
    ends_here = np.zeros(n, dtype=bool)
    ends_here[:-1] = (timeouts & ~keep)[1:]  # the row before a dropped timeout row now ends its episode
    out["timeouts"] = ends_here
    out["next_observations"] = obs[following]
    if not keep.any():
        raise DatasetError(
            f"{source}: no transition is left after rebuilding next observations (every row is a timeout or the "
            "last row). Store next_observations in the file, or use more than one row per episode."
        )
    return {k: v[keep] for k, v in out.items()}


# ---------------------------------------------------------------------- readers
def _read_hdf5(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    h5py = h5py_module()
    arrays: dict[str, np.ndarray] = {}
    metadata: dict[str, Any] = {}
    try:
        with h5py.File(path, "r") as f:
            for key in (*REQUIRED_KEYS, "next_observations", "timeouts"):
                if key in f and isinstance(f[key], h5py.Dataset):
                    arrays[key] = f[key][()]
            if not all(k in arrays for k in REQUIRED_KEYS):
                check_arrays({**arrays, **{k: None for k in f if k not in arrays}}, f"dataset {path}")
            group = f.get("metadata")
            if isinstance(group, h5py.Group):  # D4RL: metadata/algorithm, metadata/iteration, policy weights
                for name, item in group.items():
                    if isinstance(item, h5py.Dataset) and item.ndim == 0:
                        metadata[name] = _plain(item[()])
            for name, value in f.attrs.items():
                if name != METADATA_ATTR:
                    metadata[name] = _plain(value)
            if METADATA_ATTR in f.attrs:  # qlearn's own files: exact types (lists, None) round-trip via JSON
                metadata.update(json.loads(_plain(f.attrs[METADATA_ATTR])))
    except OSError as err:
        raise DatasetError(f"could not read {path} as HDF5 ({err}); is it a complete .hdf5 file?") from err
    return arrays, metadata


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays: dict[str, np.ndarray] = {}
    metadata: dict[str, Any] = {}
    try:
        with np.load(path, allow_pickle=False) as data:  # never unpickle a data file
            for key in data.files:
                try:
                    value = data[key]
                except ValueError as err:
                    raise DatasetError(
                        f"{path} entry {key!r} holds Python objects (a pickled object array); qlearn never "
                        "unpickles data files. Save plain numeric arrays (e.g. np.asarray(x, dtype=np.float32))."
                    ) from err
                if key == "metadata":
                    try:
                        metadata = json.loads(str(value))
                    except ValueError as err:
                        raise DatasetError(f"{path} 'metadata' entry is not a JSON string ({err}).") from err
                else:
                    arrays[key] = value
    except (OSError, EOFError) as err:
        raise DatasetError(f"could not read {path} as .npz ({err}); is it a complete numpy .npz file?") from err
    return arrays, metadata


def load_dataset(
    path: str | os.PathLike[str],
    *,
    next_observations: str = "stored",
    device: str | torch.device = "cpu",
    seed: int | None = None,
) -> OfflineDataset:
    """Load an `OfflineDataset` from a D4RL-layout ``.hdf5``/``.h5`` file, a qlearn ``.npz`` or a Minari folder.

    Args:
        path: the file, a local Minari dataset folder (holding ``data/main_data.hdf5`` and
            ``data/metadata.json``, e.g. ``$MINARI_DATASETS_PATH/mujoco/hopper/medium-v0``), or a Minari dataset id
            in the local store (``mujoco/hopper/medium-v0``; never downloaded).
        next_observations: ``"stored"`` (default: use stored next observations; timeout rows kept and
            bootstrapped) or ``"d4rl"`` (reproduce ``d4rl.qlearning_dataset``, as CORL-style reproductions do;
            flat files only). See `_from_flat` for the exact rows kept in each mode.
        device: where the tensors live (sampling stays there).
        seed: seed of the sampling generator.

    Metadata: root attrs of an HDF5 file (qlearn writes env_id, ref_min_score, ref_max_score, ...), scalar
    datasets under D4RL's ``metadata/`` group, the ``metadata`` JSON entry of an npz, or Minari's metadata.json.
    ``source`` (the path) and ``format`` are always set.
    """
    if next_observations not in NEXT_OBS_MODES:
        raise DatasetError(f"next_observations must be 'stored' or 'd4rl', got {next_observations!r}.")
    p = Path(path).expanduser()
    if not p.exists() and minari_store.is_dataset_id(str(path)):
        if next_observations == "d4rl":
            raise DatasetError(MINARI_NOT_D4RL)
        arrays, metadata, where = minari_store.read_id(str(path))
        flat = _from_flat(arrays, next_observations, f"Minari dataset {path}")
        return OfflineDataset(**flat, metadata={**metadata, "source": where}, device=device, seed=seed)
    if not p.exists():
        raise DatasetError(f"no dataset at {p}: the path does not exist. Check the path (relative to {Path.cwd()}), "
                           f"or name a Minari dataset id in the local store ({minari_store.local_store()}).")
    if p.is_dir():
        data = minari_store.data_folder(p)
        if data is None:
            raise DatasetError(
                f"{p} is a folder but not a local Minari dataset (no data/metadata.json); pass a .hdf5/.h5 or .npz "
                "file, or a Minari dataset folder such as $MINARI_DATASETS_PATH/mujoco/hopper/medium-v0."
            )
        if next_observations == "d4rl":
            raise DatasetError(MINARI_NOT_D4RL)
        arrays, metadata = minari_store.read_folder(data)
        fmt = "minari"
    elif p.suffix.lower() in HDF5_SUFFIXES:
        arrays, metadata = _read_hdf5(p)
        fmt = "hdf5"
    elif p.suffix.lower() == ".npz":
        arrays, metadata = _read_npz(p)
        fmt = "npz"
    else:
        raise DatasetError(
            f"cannot tell the format of {p} from its suffix {p.suffix!r}; qlearn reads .hdf5/.h5 (D4RL layout), "
            ".npz (qlearn's own) and local Minari dataset folders."
        )
    flat = _from_flat(arrays, next_observations, f"dataset {p}")
    metadata = {**metadata, "source": str(p), "format": metadata.get("format", fmt)}
    return OfflineDataset(**flat, metadata=metadata, device=device, seed=seed)


# ---------------------------------------------------------------------- writer
def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _prepare(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays in D4RL's on-disk dtypes: float32 values, bool flags, int64 discrete actions, uint8 frames kept."""
    out: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        a = np.asarray(value)
        if key in ("terminals", "timeouts"):
            a = a.astype(bool)
        elif a.dtype.kind == "f" or (key in ("observations", "next_observations") and a.dtype != np.uint8):
            a = a.astype(np.float32)
        elif key == "actions" and a.dtype.kind in "iu":
            a = a.astype(np.int64)
        out[key] = a
    return out


def save_dataset(
    path: str | os.PathLike[str],
    arrays: dict[str, np.ndarray],
    metadata: dict[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write flat arrays in D4RL layout to ``.hdf5``/``.h5`` (gzip) or ``.npz``, chosen by the suffix.

    ``arrays`` needs observations, actions, rewards, terminals; next_observations, timeouts and extra keys
    (e.g. ``infos/qpos``) are written too. Floats are stored as float32 and terminals/timeouts as bool.
    ``metadata`` must be JSON-serialisable: HDF5 files get each str/int/float/bool value as a root attribute plus
    the whole dict as JSON in the ``qlearn_metadata`` attribute; npz files get it as JSON in a ``metadata`` entry.
    The file is written to a temporary file in the same folder and renamed into place, so a crash never leaves
    a half-written dataset. Returns the path written.
    """
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if suffix not in (*HDF5_SUFFIXES, ".npz"):
        raise DatasetError(f"save_dataset writes .hdf5/.h5 or .npz files; {p} has suffix {p.suffix!r}.")
    if p.exists() and not overwrite:
        raise DatasetError(f"{p} already exists; pass overwrite=True to replace it, or choose another path.")
    if "metadata" in arrays:
        raise DatasetError("'metadata' is reserved for the metadata dict; rename that array.")
    check_arrays(dict(arrays), f"dataset for {p}")
    meta = dict(metadata or {})
    try:
        meta_json = json.dumps(meta, default=_json_default)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"metadata must be JSON-serialisable (str, numbers, bools, lists, dicts): {err}.") from err
    meta = json.loads(meta_json)
    data = _prepare(arrays)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        if suffix == ".npz":
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, metadata=np.asarray(meta_json), **data)
        else:
            os.close(fd)
            h5py = h5py_module()
            with h5py.File(tmp, "w") as f:
                for key, value in data.items():
                    f.create_dataset(key, data=value, compression="gzip")
                for key, value in meta.items():
                    if isinstance(value, (str, bool, int, float)):
                        f.attrs[key] = value
                f.attrs[METADATA_ATTR] = meta_json
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return p
