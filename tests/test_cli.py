"""qlearn-train / qlearn-eval through real subprocesses: the command-line contract users rely on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

TRAIN = [sys.executable, "-m", "qlearn.cli.train"]
EVAL = [sys.executable, "-m", "qlearn.cli.evaluate"]
TINY = ["total_steps=1500", "eval.every=500", "eval.episodes=2", "trainer.learning_starts=200",
        "device=cpu", "logger=none"]


def run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)


def test_default_job_writes_results_config_and_tensorboard_events(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = run(TRAIN + ["total_steps=1500", "eval.every=500", "eval.episodes=2", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["agent"] == "dqn" and results["env_id"] == "CartPole-v1"
    assert results["experiment"] == "default/dqn"
    assert results["total_steps"] == 1500 and results["final_eval"]["episodes"] == 2
    assert (run_dir / "config.yaml").exists()
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert (run_dir / "evaluations.csv").read_text().count("\n") == 4  # header + 500, 1000, 1500
    invocation = json.loads((run_dir / "run.json").read_text())["invocations"][0]
    assert "total_steps=1500" in invocation["argv"] and invocation["versions"]["torch"].startswith(torch.__version__.split("+")[0])
    assert invocation["versions"]["gymnasium"] and invocation["git"] is not None  # the tests run from a checkout
    log_lines = (run_dir / "train.log").read_text().splitlines()
    assert [line.split(" INFO ")[1].split(" (")[0] for line in log_lines] == [
        "env step 500/1500", "env step 1000/1500", "final evaluation: 2 episodes, epsilon 0",
        "env step 1500/1500"]  # a progress line at each evaluation, and one as the final evaluation starts
    assert "env step 1000/1500" in proc.stdout  # outside a terminal the same lines reach the console
    # qlearn-eval on the saved run
    proc = run(EVAL + [f"checkpoint={run_dir}", "episodes=2"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["episodes"] == 2
    # a second run into the same directory is refused and loses nothing
    before = (run_dir / "results.json").read_bytes()
    proc = run(TRAIN + TINY + [f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 2 and "already holds a run" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (run_dir / "results.json").read_bytes() == before


@pytest.mark.parametrize(
    ("switches", "in_config"),
    [
        (["buffer=prioritized", "buffer.n_step=3", "network.dueling=true"],
         ["qlearn.buffers.PrioritizedSampler", "n_step: 3", "dueling: true"]),
        (["agent=double_dqn", "env.num_envs=4"], ["qlearn.targets.DoubleQNextValue", "num_envs: 4"]),
    ],
)
def test_agent_switches_train_through_the_cli(tmp_path: Path, switches: list[str], in_config: list[str]) -> None:
    run_dir = tmp_path / "run"
    proc = run(TRAIN + TINY + switches + [f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["total_steps"] == 1500
    assert results["updates"] == (1500 - 200) // 10  # train_every=10 in the default preset, whatever num_envs
    config = (run_dir / "config.yaml").read_text()
    for text in in_config:
        assert text in config


@pytest.mark.parametrize("experiment", ["redq_pendulum", "droq_mujoco"])
def test_continuous_presets_train_and_evaluate_through_the_cli(tmp_path: Path, experiment: str) -> None:
    run_dir = tmp_path / "run"
    short = ["total_steps=300", "trainer.random_steps=100", "trainer.learning_starts=100", "trainer.updates_per_step=2",
             "trainer.batch_size=32", "network.hidden_sizes=[32,32]", "eval.every=150", "eval.episodes=1",
             "device=cpu", "logger=none"]
    env = ["env.id=Pendulum-v1"] if experiment.endswith("mujoco") else []
    proc = run(TRAIN + [f"experiment={experiment}"] + short + env + [f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["agent"] == experiment.split("_")[0] and results["env_id"] == "Pendulum-v1"
    assert results["experiment"] == experiment  # the preset, which reports match published numbers by
    assert results["updates"] == (300 - 100) * 2 and results["final_eval"]["episodes"] == 1
    assert -2000 < results["final_eval"]["mean"] < 0  # Pendulum returns are negative, at most ~16 per step
    proc = run(EVAL + [f"checkpoint={run_dir}", "episodes=1"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["episodes"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["env.id=Pendulum-v1"], "discrete action space"),
        (["experiment=sac_pendulum", "env.id=CartPole-v1"], "continuous (Box) action space"),
        (["resume=/nonexistent/run"], "no checkpoint found"),
        (["trainer.learning_startz=5"], "learning_startz"),
        (["env.id=NoSuchEnv-v0"], "NoSuchEnv-v0"),
        (["total_steps=-5"], "total_steps=-5: the budget must be a whole number >= 1"),
        (["total_steps=abc"], "total_steps='abc': the budget must be a whole number >= 1"),
        (["+trainer.lerning_starts=10"], "trainer.lerning_starts is not a setting of OnlineTrainer. Did you mean "
                                         "learning_starts?"),
        (["agent=sac", "env.id=Pendulum-v1", "+agent.loss=huber"], "agent.loss is not a setting of REDQ"),
        (["trainer.batch_size=0"], "batch_size must be >= 1, got 0"),
        (["agent=td3", "env.id=Pendulum-v1", "agent.bc_alpha=-1"], "bc_alpha must be > 0"),
        (["agent=sac", "env.id=Pendulum-v1", "agent.actor_update_every=0"], "actor_update_every must be >= 1, got 0"),
    ],
)
def test_bad_input_fails_with_one_readable_message(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run(TRAIN + TINY + args + [f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if "error" in line.lower()]) == 1, proc.stderr
    leftovers = list((tmp_path / "run").iterdir()) if (tmp_path / "run").exists() else []
    assert leftovers == []  # nothing written before the run could start, so nothing in the way of the retry


def test_an_offline_agent_without_a_dataset_says_which_key_to_pass(tmp_path: Path) -> None:
    proc = run(TRAIN + ["agent=iql", "device=cpu", f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 2 and "offline training needs a dataset: pass dataset.path=" in proc.stderr
    assert "Traceback" not in proc.stderr and not any((tmp_path / "run").iterdir())  # Hydra made it; nothing in it


def test_qlearn_eval_without_a_checkpoint_says_which_key_to_pass() -> None:
    proc = run(EVAL)
    assert proc.returncode == 2 and "checkpoint is required: pass checkpoint=<value>" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run(EVAL + ["checkpoint=/nonexistent/run"])
    assert proc.returncode == 2 and "/nonexistent/run does not exist" in proc.stderr


def test_a_multirun_goes_on_after_a_failed_job_and_ends_non_zero_listing_it(tmp_path: Path) -> None:
    proc = run(TRAIN + ["-m", *TINY, "env.id=Pendulum-v1,CartPole-v1", f"hydra.sweep.dir={tmp_path}"])
    assert proc.returncode == 1, proc.stderr
    assert "1 job(s) of the multirun failed" in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip().startswith("#")] == [
        next(line for line in proc.stderr.splitlines() if line.strip().startswith("#0 ") and "env.id=Pendulum-v1" in line)]
    assert "Traceback" not in proc.stderr
    assert json.loads((tmp_path / "1" / "results.json").read_text())["env_id"] == "CartPole-v1"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_device_cuda_without_gpu_says_what_to_change(tmp_path: Path) -> None:
    proc = run(TRAIN + TINY[:-2] + ["device=cuda", f"hydra.run.dir={tmp_path / 'run'}"])
    assert proc.returncode == 2 and "device=cpu" in proc.stderr


def params_of(run_dir: Path) -> dict[str, torch.Tensor]:
    from qlearn.checkpoint import latest_checkpoint, load_checkpoint

    state = load_checkpoint(latest_checkpoint(run_dir))["agent"]
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


RESUME = ["total_steps=6000", "trainer.checkpoint_every=1000", "trainer.learning_starts=200", "trainer.train_every=2",
          "eval.every=0", "eval.episodes=1", "device=cpu", "logger=none", "seed=3"]


def test_killed_run_resumes_to_the_same_parameters_as_an_uninterrupted_one(tmp_path: Path) -> None:
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert run(TRAIN + RESUME + [f"hydra.run.dir={full}"]).returncode == 0
    proc = subprocess.Popen(TRAIN + RESUME + [f"hydra.run.dir={killed}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600  # generous: on a loaded 2-core machine the first checkpoint can take minutes
    while not list((killed / "checkpoints").glob("step_*.pt")) and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((killed / "checkpoints").glob("step_*.pt")), "no checkpoint was written before the deadline"
    assert not (killed / "results.json").exists(), "the run finished before it could be killed"
    resumed = run(TRAIN + [f"resume={killed}", f"hydra.run.dir={tmp_path / 'ignored'}"])
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    a, b = params_of(full), params_of(killed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert json.loads((killed / "results.json").read_text())["total_steps"] == 6000


def test_resume_overrides_take_effect_or_are_refused_and_a_damaged_checkpoint_is_passed_over(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = TRAIN + TINY + ["agent=double_dqn", "total_steps=1000", "trainer.checkpoint_every=500",
                           "network.hidden_sizes=[16]"]
    assert run(args + [f"hydra.run.dir={run_dir}"]).returncode == 0
    # the README's example: a larger budget takes effect, and so do the settings that follow it
    proc = run(TRAIN + [f"resume={run_dir}", "total_steps=1500", "eval.episodes=3"])
    assert proc.returncode == 0, proc.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["total_steps"] == 1500 and results["final_eval"]["episodes"] == 3
    assert [e["step"] for e in results["evaluations"]].count(1000) == 1  # the first budget's final evaluation kept
    assert results["agent"] == "double_dqn"  # the run's agent, not this command's default choice
    config = (run_dir / "config.yaml").read_text()
    assert "total_steps: 1500" in config and "duration: 300" in config  # epsilon over 20% of the new budget
    # a shape cannot change: one line naming the key, and the run is untouched
    before = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    proc = run(TRAIN + [f"resume={run_dir}", "total_steps=2000", "network.hidden_sizes=[32]"])
    assert proc.returncode == 2 and "network.hidden_sizes cannot change when a run resumes" in proc.stderr
    assert "Traceback" not in proc.stderr and sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == before
    # a key the default job's agent lacks (a REDQ setting here) reaches the same check, not Hydra's composition
    proc = run(TRAIN + [f"resume={run_dir}", "agent.num_q=3"])
    assert proc.returncode == 2 and "agent.num_q cannot change when a run resumes" in proc.stderr, proc.stderr
    assert "HYDRA_FULL_ERROR" not in proc.stderr and sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == before
    # a damaged newest checkpoint: say so, and continue from the previous one
    newest = run_dir / "checkpoints" / "step_000001500.pt"
    newest.write_bytes(newest.read_bytes()[:500])
    proc = run(TRAIN + [f"resume={run_dir}", "total_steps=2000"])
    assert proc.returncode == 0, proc.stderr
    assert "step_000001500.pt is damaged" in proc.stdout + proc.stderr and "step_000001000.pt" in proc.stderr
    assert json.loads((run_dir / "results.json").read_text())["total_steps"] == 2000


def test_sigterm_writes_a_checkpoint_then_resume_auto_finishes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = TRAIN + RESUME + ["total_steps=200000", "trainer.checkpoint_every=100000", "eval.every=1000",
                             f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run_dir / "evaluations.csv").exists() and time.time() < deadline:  # training has started
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM" in err and "resume=" in err
    from qlearn.checkpoint import latest_checkpoint

    ckpt = latest_checkpoint(run_dir)
    assert ckpt is not None
    step = int(ckpt.stem.split("_")[1])
    assert 0 < step < 200000
    proc = run(TRAIN + RESUME + [f"total_steps={step + 500}", "resume=auto", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run_dir / "results.json").read_text())["total_steps"] == step + 500


def test_a_setting_added_after_the_run_was_made_keeps_its_default_unless_the_command_names_it() -> None:
    from omegaconf import OmegaConf

    from qlearn.cli.resume import config_for_resume
    from qlearn.errors import QlearnError

    old = {"network": {"hidden_sizes": [16]}, "total_steps": 100, "env": {"id": "CartPole-v1"}}
    stored = {"resolved": old, "composed": old}
    fresh = OmegaConf.create({"network": {"hidden_sizes": [16], "noisy": False}, "total_steps": 200,
                              "env": {"id": "CartPole-v1"}})
    merged = config_for_resume(stored, fresh, ["resume=auto", "total_steps=200"])  # a newer qlearn's default
    assert merged.network.noisy is False and merged.total_steps == 200
    for named in ("network.noisy=false", "+network.noisy=false", "network={hidden_sizes:[16],noisy:false}"):
        with pytest.raises(QlearnError, match="network.noisy cannot change when a run resumes"):
            config_for_resume(stored, fresh, ["resume=auto", named])
    with pytest.raises(QlearnError, match="network.hidden_sizes cannot change"):  # a stored setting stays guarded
        config_for_resume(stored, OmegaConf.merge(fresh, {"network": {"hidden_sizes": [32]}}), ["resume=auto"])


def test_a_config_group_choice_on_resume_to_a_run_dir_is_refused_and_the_logger_may_change_on_resume_auto() -> None:
    from omegaconf import OmegaConf

    from qlearn.cli.resume import config_for_resume
    from qlearn.errors import QlearnError

    old = {"logger": {}, "agent": {"lr": 0.001}, "total_steps": 100, "env": {"id": "CartPole-v1"}}
    stored = {"resolved": old, "composed": old}
    for choice in ("logger=none", "logger=[tensorboard,csv]", "agent=double_dqn", "+logger=wandb"):
        with pytest.raises(QlearnError, match=r"resume=<run_dir> cannot pick a config group .*resume=auto"):
            config_for_resume(stored, None, [choice])
    merged = config_for_resume(stored, None, ["agent.lr=0.001", "total_steps=200"])  # a section's keys: fine
    assert merged.total_steps == 200 and merged.agent.lr == 0.001
    # resume=auto composes the command's groups: a logger swap reaches the check as a changed section, and may change
    fresh = OmegaConf.create({**old, "logger": {"tensorboard": {}, "csv": {}}})
    assert set(config_for_resume(stored, fresh, ["resume=auto", "logger=[tensorboard,csv]"]).logger) == {
        "tensorboard", "csv"}
    with pytest.raises(QlearnError, match="agent.lr cannot change when a run resumes"):  # the agent still may not
        config_for_resume(stored, OmegaConf.create({**old, "agent": {}}), ["resume=auto"])


def test_resume_to_a_run_dir_holds_job_overrides_back_from_hydra() -> None:
    """With resume=<run_dir> the job's overrides are checked against the stored run only; Hydra keeps resume=, hydra.*,
    flags and their values; resume=auto and sweeps pass through untouched."""
    from qlearn.cli.train import hold_back_resume_overrides

    argv = ["qlearn-train", "resume=/r", "agent.num_q=3", "hydra.run.dir=/h", "-cd", "conf", "+a.b=1", "~c"]
    assert hold_back_resume_overrides(argv) == (
        ["qlearn-train", "resume=/r", "hydra.run.dir=/h", "-cd", "conf"], ["agent.num_q=3", "+a.b=1", "~c"])
    for unchanged in (["qlearn-train", "resume=auto", "agent.lr=1"], ["qlearn-train", "-m", "resume=/r", "agent.lr=1,2"],
                      ["qlearn-train", "agent.lr=1"]):
        assert hold_back_resume_overrides(unchanged) == (unchanged, [])
