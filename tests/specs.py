"""Environment specs the unit tests build networks for, from the real suite table (no literals)."""

from xfer.config import AtariProtocol
from xfer.envs.suites import env_spec

ATARI = env_spec("atari", AtariProtocol(), "Breakout")
"""Breakout under the default Atari protocol: ``[12, 96, 96]`` uint8 pixels, ``Discrete(18)``."""

ATARI_INPUT = (ATARI.num_actions, ATARI.observation.shape)
"""``build_network(net_spec, *ATARI_INPUT, ...)``: the policy-head width and observation shape."""
