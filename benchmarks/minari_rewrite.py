"""Write a D4RL-layout dataset (e.g. ``qlearn-collect``'s CartPole-v1 medium-replay) again with Minari's own writer
(``qlearn.offline.minari_store.write``: ``minari.create_dataset_from_buffers``, one ``EpisodeBuffer`` per episode), so qlearn's offline agents can be run
on a folder Minari wrote (issue 16: discrete BCQ, issue 17: TD3+BC, SAC-N and EDAC "on a dataset written by
another library").

    MINARI_DATASETS_PATH=/work/minari python benchmarks/minari_rewrite.py \\
        --source benchmarks/results/offline/data/CartPole-v1-medium-replay.hdf5 --dataset-id cartpole/medium-replay-v0
    MINARI_DATASETS_PATH=/work/minari python benchmarks/minari_rewrite.py \\
        --source benchmarks/reports/hopper_medium_replay/data/Hopper-v5-medium-replay.hdf5 \\
        --dataset-id hopper/medium-replay-v0

``qlearn-collect minari_namespace=<ns>`` does the same for each dataset it makes. The reference scores and the env
id travel into Minari's metadata.
"""

from __future__ import annotations

import argparse

import minari

from qlearn.offline import load_dataset, minari_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="a D4RL-layout .hdf5 (qlearn-collect writes them)")
    parser.add_argument("--dataset-id", default="cartpole/medium-replay-v0")
    args = parser.parse_args()
    data = load_dataset(args.source)
    arrays = {k: getattr(data, k).numpy() for k in ("observations", "next_observations", "actions", "rewards",
                                                    "terminals", "timeouts")}
    dataset = minari_store.write(args.dataset_id, arrays, data.metadata, source=args.source)
    print(f"{args.dataset_id}: {dataset.total_steps} steps, {dataset.total_episodes} episodes (minari "
          f"{minari.__version__})")


if __name__ == "__main__":
    main()
