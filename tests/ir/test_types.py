import pytest

from hgqc.ir.types import ZERO, QInterval, TensorType, dyadic


@pytest.mark.parametrize(
    'k,i,f,width',
    [(1, 3, 2, 6), (0, 3, 2, 5), (0, -2, 4, 2), (1, 0, 0, 1), (0, 0, 0, 0), (1, -3, 2, 0), (0, 5, -2, 3)],
)
def test_from_kif_width(k, i, f, width):
    t = QInterval.from_kif(k, i, f)
    assert t.width == width
    if width:
        assert t.signed == bool(k)
        assert t.int_bits == i
    else:
        assert t == ZERO


def test_tight_interval_width():
    # [-5, 20] at step 1/4 needs sign + 5 magnitude bits
    t = QInterval(-5, 20, 2)
    assert (t.signed, t.width, t.int_bits) == (True, 6, 3)
    assert QInterval(-8, 7, 0).width == 4 and QInterval(-9, 7, 0).width == 5


def test_invalid_intervals_rejected():
    with pytest.raises(ValueError):
        QInterval(3, 2, 0)
    with pytest.raises(TypeError):
        QInterval(0.5, 1, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TensorType((2, 2), (ZERO,) * 3)


@pytest.mark.parametrize('v,m,e', [(0.75, 3, -2), (-3.0, -3, 0), (8, 1, 3), (0.0, 0, 0), (2.0**-30, 1, -30)])
def test_dyadic(v, m, e):
    assert dyadic(v) == (m, e)


def test_tensor_type_arrays_are_exact_for_wide_values():
    big = QInterval(-(2**80), 2**80 - 1, 3)
    t = TensorType((2,), (big, ZERO))
    assert t.lo[0] == -(2**80) and t.max_width == 81
