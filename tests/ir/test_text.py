import numpy as np
import pytest

from hgqc.ir import Graph, Op, Overflow, ParseError, Round, parse_graph, print_graph, verify
from hgqc.ir.types import QInterval, TensorType

from .strategies import random_type


def _sample_graph(seed: int) -> Graph:
    rng = np.random.default_rng(seed)
    g = Graph('sample')
    x = g.add_input('x', random_type(rng, (2, 4)))
    q = g.add(
        Op.QUANTIZE,
        [x],
        {
            'k': rng.integers(0, 2, (2, 4)),
            'i': rng.integers(0, 4, (2, 4)),
            'f': rng.integers(0, 4, (2, 4)),
            'round': Round.RND,
            'overflow': Overflow.SAT_SYM,
        },
        name='dense "iq"',
    )
    w = np.ldexp(rng.integers(-9, 9, (4, 3)).astype(float), -3) / 3.0 * 3.0
    c = g.add(Op.CMVM, [q], {'weights': w, 'bias': None}, name='dense')
    r = g.add(Op.RELU, [c], name='ünïcode')
    s = g.add(Op.GATHER, [r], {'index': np.array([5, 4, -1, 0])})
    g.add_output('y', s)
    g.add_output('raw', c)
    g.input_quant['x'] = {
        'k': np.ones((2, 4), int),
        'i': np.full((2, 4), 3),
        'f': np.zeros((2, 4), int),
        'round': 'TRN',
        'overflow': 'WRAP',
    }
    g.meta['latency'] = 0
    return g


@pytest.mark.parametrize('seed', range(5))
def test_round_trip(seed):
    g = _sample_graph(seed)
    verify(g)
    text = print_graph(g)
    g2 = parse_graph(text)
    verify(g2)
    assert print_graph(g2) == text
    assert [n for n, _ in g2.outputs] == ['y', 'raw']
    assert np.array_equal(g2.input_quant['x']['i'], g.input_quant['x']['i'])


def test_wide_values_round_trip():
    g = Graph()
    x = g.add_input('x', TensorType((1,), (QInterval(-(2**90), 2**90, 5),)))
    g.add_output('y', g.add(Op.NEG, [x]))
    assert print_graph(parse_graph(print_graph(g))) == print_graph(g)


@pytest.mark.parametrize(
    'text,msg',
    [
        ('', 'header'),
        ('hgqc-ir 99 "m"\n', 'newer'),
        ('hgqc-ir 1 "m"\n%0 = frobnicate "x" {} : {"shape":[],"all":[0,0,0]}\n', 'line 2'),
        ('hgqc-ir 1 "m"\n%0 = neg(%7) "x" {} : {"shape":[],"all":[0,0,0]}\n', 'line 2'),
    ],
)
def test_parse_errors_are_clear(text, msg):
    with pytest.raises(ParseError, match=msg):
        parse_graph(text)
