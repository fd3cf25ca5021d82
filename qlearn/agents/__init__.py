"""Agents: templates that wire blocks together."""

from qlearn.agents.base import Agent
from qlearn.agents.dqn import DQN

__all__ = ["Agent", "DQN"]
