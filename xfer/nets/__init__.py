"""World-model networks (EfficientZero; XTRA appendix H)."""

from xfer.nets.efficientzero import EfficientZeroNet, RecurrentOutput, RootOutput, build_network
from xfer.nets.sizes import SIZES, NetSpec, net_spec

__all__ = ["EfficientZeroNet", "RecurrentOutput", "RootOutput", "build_network", "SIZES", "NetSpec", "net_spec"]
