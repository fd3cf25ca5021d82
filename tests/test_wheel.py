"""The built wheel and sdist, installed into a clean virtual environment and used from outside the checkout, as a
new user would: the Python API on a plain gymnasium env (train, save, load, predict), ``qlearn.load_run`` on a
``qlearn-train`` run directory, and ``qlearn-reproduce`` comparing against the references shipped in the package.

Slow (a fresh venv installs torch from the pip cache or the registry, about a minute); part of the README's test
command, so CI checks the packaging on every run."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # the README's pin (a CPU wheel here); an open range could pull a multi-GB CUDA build

USER_SCRIPT = '''
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

import qlearn
from qlearn import DQN, Agent, EnvSpec, OnlineTrainer, ReplayBuffer

assert not Path(qlearn.__file__).resolve().is_relative_to(Path(sys.argv[2])), qlearn.__file__  # the wheel's copy
env = gym.make("CartPole-v1")
agent = DQN.from_spec(EnvSpec.from_spaces(env.observation_space, env.action_space), lr=1e-3)
results = OnlineTrainer(agent, env, ReplayBuffer(1000, seed=0), eval_env=gym.make("CartPole-v1"), total_steps=300,
                        learning_starts=100, eval_every=300, eval_episodes=2, progress=False).run()
assert results["total_steps"] == 300 and results["final_eval"]["episodes"] == 2
agent.save("dqn.pt")
loaded = Agent.load("dqn.pt", device="cpu")
obs, _ = env.reset(seed=0)
batch = np.stack([obs, -obs])
assert int(loaded.predict(obs)) == int(agent.predict(obs))
assert loaded.predict(batch).tolist() == agent.predict(batch).tolist()
run = qlearn.load_run(sys.argv[1])
vec = run.make_env(seed=0)
first, _ = vec.reset(seed=0)
assert vec.single_action_space.contains(int(run.agent.predict(first[0])))
print("user script ok", qlearn.__version__)
'''


def run(args: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--wheel", "--sdist", "--outdir", str(out), str(ROOT)],
        cwd=out)
    return out


def test_the_wheel_and_the_sdist_carry_the_configs_references_and_type_marker(dist: Path) -> None:
    (wheel,) = dist.glob("qlearn-*.whl")
    (sdist,) = dist.glob("qlearn-*.tar.gz")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for name in ("qlearn/py.typed", "qlearn/configs/train.yaml", "qlearn/configs/logger/wandb.yaml",
                 "qlearn/configs/experiment/drq_eps_atari100k.yaml", "qlearn/references/atari100k_drq_eps.yaml"):
        assert name in in_wheel and name in in_sdist, name
    shipped = {p.relative_to(ROOT / "configs").as_posix() for p in (ROOT / "configs").rglob("*.yaml")}
    assert shipped == {n.removeprefix("qlearn/configs/") for n in in_wheel if n.startswith("qlearn/configs/")}


@pytest.mark.slow
def test_a_clean_venv_with_the_wheel_trains_saves_loads_predicts_and_reproduces(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("qlearn-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    run([str(python), "-m", "pip", "install", "-q", TORCH, f"{wheel}[report]"], cwd=tmp_path)
    work = tmp_path / "user"  # outside the checkout: nothing of it on the path
    work.mkdir()
    run([str(bin_dir / "qlearn-train"), "total_steps=400", "trainer.learning_starts=200", "eval.every=400",
         "eval.episodes=1", "device=cpu", "hydra.run.dir=cli_run"], cwd=work)
    (work / "user.py").write_text(USER_SCRIPT)
    proc = run([str(python), "user.py", "cli_run", str(ROOT)], cwd=work)
    assert "user script ok" in proc.stdout
    proc = run([str(bin_dir / "qlearn-reproduce"), "dqn_cartpole", "--seeds", "2", "--jobs", "2", "--out", "report",
                "total_steps=400", "trainer.learning_starts=200", "eval.every=200", "eval.episodes=1", "logger=none",
                "device=cpu"], cwd=work)
    report = (work / "report" / "report.md").read_text()
    assert "| dqn on CartPole-v1 | 2 |" in report
    assert "vwxyzjn/cleanrl:docs/rl-algorithms/dqn.md" in report  # the shipped CleanRL DQN CartPole reference, found outside the checkout
