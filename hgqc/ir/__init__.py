"""The hgqc IR: fixed-point types, ops, graph, verifier and text form."""

from .fixed import Overflow, Round
from .graph import Graph, Node
from .ops import OPS, Op
from .text import IR_VERSION, ParseError, parse_graph, print_graph
from .types import ZERO, QInterval, TensorType
from .verifier import VerificationError, verify

__all__ = [
    'IR_VERSION',
    'OPS',
    'ZERO',
    'Graph',
    'Node',
    'Op',
    'Overflow',
    'ParseError',
    'QInterval',
    'Round',
    'TensorType',
    'VerificationError',
    'parse_graph',
    'print_graph',
    'verify',
]
