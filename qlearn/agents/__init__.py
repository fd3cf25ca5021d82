"""Agents: templates that wire blocks together."""

from qlearn.agents.base import Agent
from qlearn.agents.dqn import DQN
from qlearn.agents.redq import REDQ

__all__ = ["DQN", "REDQ", "Agent"]
