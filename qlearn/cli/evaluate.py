"""``qlearn-eval checkpoint=<path> episodes=<n>``: evaluate a saved agent, optionally recording video."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
from omegaconf import DictConfig

from qlearn.checkpoint import latest_checkpoint
from qlearn.cli.build import CONFIG_DIR, env_options, register_resolvers
from qlearn.cli.entry import hydra_command, run_main
from qlearn.envs import make_single_env
from qlearn.errors import QlearnError
from qlearn.runs import load_run
from qlearn.trainers.evaluation import evaluate
from qlearn.utils import resolve_device

register_resolvers()


def _video_env(env_cfg: dict[str, Any], video_dir: Path) -> gym.vector.VectorEnv:
    try:
        import moviepy  # noqa: F401  (RecordVideo writes mp4 files through moviepy)
    except ImportError as exc:
        raise QlearnError('video=true needs moviepy: pip install "qlearn[video]"') from exc
    options = env_options(env_cfg)
    options.pop("num_envs", None)
    options.pop("vectorization", None)
    options.pop("backend", None)  # videos render through gymnasium's env, whichever backend trained

    def make() -> gym.Env:
        env = make_single_env(env_cfg["id"], render_mode="rgb_array", **options)
        return gym.wrappers.RecordVideo(env, str(video_dir), episode_trigger=lambda _: True, disable_logger=True)

    return gym.vector.SyncVectorEnv([make], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def run_evaluation(cfg: DictConfig) -> dict[str, Any]:
    path = Path(str(cfg.checkpoint)).expanduser()
    if path.is_dir() and latest_checkpoint(path) is None:
        raise QlearnError(f"checkpoint={path}: no checkpoints/step_*.pt inside. Pass a run directory or a .pt file.")
    run = load_run(path, resolve_device(cfg.device))  # a run directory: its newest readable checkpoint
    for _, reason in run.skipped:
        print(f"qlearn-eval: {reason}; evaluating the previous checkpoint, {run.checkpoint.name}.", file=sys.stderr)
    path, stored = run.checkpoint, run.config
    if cfg.video:
        video_dir = Path(cfg.video_dir) if cfg.video_dir else path.parent.parent / "videos"
        env = run.wrap(_video_env(stored["env"], video_dir))
    else:
        env = run.make_env(int(cfg.seed))
    try:
        result = evaluate(run.agent, env, int(cfg.episodes), seed=int(cfg.seed), epsilon=float(cfg.epsilon))
    except gym.error.DependencyNotInstalled as exc:
        raise QlearnError(f'rendering this env needs more packages: {exc} (or pip install "qlearn[video]")') from exc
    finally:
        env.close()
    result["checkpoint"] = str(path)
    result["env_id"] = stored["env"]["id"]
    return result


@hydra.main(config_path=str(CONFIG_DIR), config_name="eval", version_base="1.3")
@hydra_command("qlearn-eval")
def _hydra_main(cfg: DictConfig) -> None:
    print(json.dumps(run_evaluation(cfg), indent=2))


def main() -> None:
    run_main("qlearn-eval", _hydra_main)


if __name__ == "__main__":
    main()
