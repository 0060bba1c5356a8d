"""InputClaims: one quantization per input element, clear errors naming both claimants."""

import numpy as np
import pytest

from hgqc.frontend.claims import InputClaims
from hgqc.frontend.errors import FrontendError
from hgqc.ir.fixed import Overflow, Round

MODES = (Round.RND, Overflow.SAT)


def _claims() -> InputClaims:
    return InputClaims('x', (2, 3), ('k', 'i', 'f'), 'layer', 'quantize it once')


def test_claims_record_first_claim_and_accept_equal_ones() -> None:
    c = _claims()
    c.claim(np.array([0, 4]), np.array([[1, 2, 3], [0, 1, 5]]), MODES, 'a')
    c.claim(np.array([4]), np.array([[0, 1, 5]]), MODES, 'b')  # same parameters: fine
    assert c.param('f').tolist() == [[3, 0, 0], [0, 5, 0]]
    assert c.unclaimed().tolist() == [[False, True, True], [True, False, True]]
    assert c.owner[4] == 'a' and c.modes == MODES


def test_conflicting_parameters_name_element_and_both_claimants() -> None:
    c = _claims()
    c.claim(np.array([5]), np.array([[1, 2, 3]]), MODES, 'a')
    with pytest.raises(
        FrontendError,
        match=r"input 'x' element \(1, 2\) is quantized as \(k=1, i=2, f=3\) by layer 'a' "
        r"and as \(k=1, i=2, f=4\) by layer 'b'; .*quantize it once",
    ):
        c.claim(np.array([5]), np.array([[1, 2, 4]]), MODES, 'b')


def test_one_layer_quantizing_an_element_two_ways_is_named_once() -> None:
    c = _claims()
    with pytest.raises(
        FrontendError,
        match=r"element \(0, 1\) is quantized as \(k=1, i=2, f=3\) and as \(k=1, i=2, f=4\), both by layer 'a' "
        r'\(it reads the element more than once',
    ):
        c.claim(np.array([1, 1]), np.array([[1, 2, 3], [1, 2, 4]]), MODES, 'a')


def test_conflicting_modes_are_refused() -> None:
    c = _claims()
    c.claim(np.array([0]), np.array([[1, 2, 3]]), MODES, 'a')
    with pytest.raises(FrontendError, match=r"RND/SAT by layer 'a' and with TRN/SAT by layer 'b'"):
        c.claim(np.array([1]), np.array([[1, 2, 3]]), (Round.TRN, Overflow.SAT), 'b')
    c.claim(np.array([], dtype=np.int64), np.zeros((0, 3)), (Round.TRN, Overflow.WRAP), 'c')  # nothing claimed: no conflict
