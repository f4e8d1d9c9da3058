import random

import numpy as np
import pytest
import torch

from trainables.core.seed import set_seed


def _draw():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_same_seed_same_streams():
    assert set_seed(123) == 123
    a = _draw()
    set_seed(123)
    assert _draw() == a
    set_seed(124)
    assert _draw() != a


def test_none_draws_a_loggable_seed():
    s = set_seed(None)
    assert isinstance(s, int) and 0 <= s < 2**31
    first = _draw()
    set_seed(s)
    assert _draw() == first


@pytest.mark.parametrize("bad", [-1, 2**32])
def test_out_of_range_seed_rejected(bad):
    with pytest.raises(ValueError, match="seed"):
        set_seed(bad)
