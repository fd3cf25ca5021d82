"""Agents: templates that wire blocks together."""

from qlearn.agents.base import Agent
from qlearn.agents.bc import BC
from qlearn.agents.dqn import DQN
from qlearn.agents.iql import IQL
from qlearn.agents.redq import REDQ
from qlearn.agents.td3 import TD3

__all__ = ["BC", "DQN", "IQL", "REDQ", "TD3", "Agent"]
