"""content_digest: equal content, equal digest; content it cannot say exactly, refused."""

import enum
from pathlib import Path

import numpy as np
import pytest

from waymo_unet.digest import content_digest


class Colour(enum.Enum):
    RED = 1


def test_numpy_values_digest_as_the_python_values_they_hold():
    assert content_digest([3, 2.5, [1, 2]]) == content_digest(
        [np.int64(3), np.float64(2.5), np.array([1, 2])]
    )
    assert content_digest({"b": 1, "a": 2}) == content_digest({"a": 2, "b": 1})
    assert content_digest(Colour.RED) == content_digest(1)
    assert content_digest(Path("/a/b")) == content_digest("/a/b")


def test_arrays_differing_in_one_value_differ():
    values = np.zeros(5000)
    changed = values.copy()
    changed[2500] = 1
    assert content_digest(values) != content_digest(changed)


def test_objects_without_an_exact_json_form_are_refused():
    with pytest.raises(TypeError, match="cannot digest a object"):
        content_digest([object()])


def test_length():
    assert len(content_digest("x", length=8)) == 8
