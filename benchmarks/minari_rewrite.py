"""Write a D4RL-layout dataset (e.g. ``qlearn-collect``'s CartPole-v1 medium-replay) again with Minari's own writer
(``minari.create_dataset_from_buffers``, one ``EpisodeBuffer`` per episode), so qlearn's offline agents can be run
on a folder Minari wrote (issue 16: discrete BCQ, issue 17: TD3+BC, SAC-N and EDAC "on a dataset written by
another library").

    MINARI_DATASETS_PATH=/work/minari python benchmarks/minari_rewrite.py \\
        --source benchmarks/results/offline/data/CartPole-v1-medium-replay.hdf5 --dataset-id cartpole/medium-replay-v0
    MINARI_DATASETS_PATH=/work/minari python benchmarks/minari_rewrite.py \\
        --source benchmarks/reports/hopper_medium_replay/data/Hopper-v5-medium-replay.hdf5 \\
        --dataset-id hopper/medium-replay-v0

Episodes are cut at terminal or time-out flags (the last one at the end of the data); within an episode each
``next_observation`` must equal the following ``observation``, as Minari stores one observation sequence per
episode. The reference scores and the env id travel into Minari's metadata.
"""

from __future__ import annotations

import argparse

import minari
import numpy as np
from minari.data_collector import EpisodeBuffer

from qlearn.offline import load_dataset


def episodes(source: str) -> tuple[list[EpisodeBuffer], dict]:
    data = load_dataset(source)
    obs, next_obs = data.observations.numpy(), data.next_observations.numpy()
    actions, rewards = data.actions.numpy(), data.rewards.numpy()
    terminals, timeouts = data.terminals.numpy().astype(bool), data.timeouts.numpy().astype(bool)
    ends = np.flatnonzero(terminals | timeouts).tolist()
    if not ends or ends[-1] != len(rewards) - 1:
        ends.append(len(rewards) - 1)  # the data stopped mid-episode: a truncation
    buffers, start = [], 0
    for index, end in enumerate(ends):
        steps = slice(start, end + 1)
        if not np.array_equal(obs[start + 1:end + 1], next_obs[start:end]):
            raise SystemExit(f"{source}: rows {start}..{end} are not one episode (next_observations do not follow).")
        truncations = timeouts[steps].copy()
        truncations[-1] |= not terminals[end]
        buffers.append(EpisodeBuffer(id=index, observations=np.concatenate([obs[steps], next_obs[end:end + 1]]),
                                     actions=actions[steps], rewards=rewards[steps].tolist(),
                                     terminations=terminals[steps].tolist(), truncations=truncations.tolist(),
                                     infos={}))
        start = end + 1
    return buffers, data.metadata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="a D4RL-layout .hdf5 (qlearn-collect writes them)")
    parser.add_argument("--dataset-id", default="cartpole/medium-replay-v0")
    args = parser.parse_args()
    buffers, metadata = episodes(args.source)
    dataset = minari.create_dataset_from_buffers(
        dataset_id=args.dataset_id, buffer=buffers, env=metadata["env_id"], data_format="hdf5",
        algorithm_name=str(metadata.get("behaviour_policy", "unknown")), description=f"written from {args.source}",
        ref_min_score=float(metadata["ref_min_score"]), ref_max_score=float(metadata["ref_max_score"]))
    print(f"{args.dataset_id}: {dataset.total_steps} steps, {dataset.total_episodes} episodes (minari "
          f"{minari.__version__})")


if __name__ == "__main__":
    main()
