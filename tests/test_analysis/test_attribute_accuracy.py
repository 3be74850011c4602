"""Per-part accuracy of compound classes: counted from the confusion
matrix, checked against counts made by hand."""
import numpy as np
import pytest

from ltm_mm.analysis.attribute_accuracy import attribute_accuracy

NAMES = ('blue_circle', 'blue_square', 'red_circle', 'red_square')


def test_parts_counted_from_the_confusion_matrix():
    confusion = np.array([
        [3, 1, 0, 0],  # blue circles: 3 right, 1 as blue square
        [2, 2, 0, 1],  # blue squares: 2 as blue circle, 1 as red square
        [0, 0, 4, 0],
        [0, 0, 1, 6],  # red squares: 1 as red circle
    ])
    got = attribute_accuracy(confusion, NAMES, ('colour', 'shape'))
    total = 20
    assert got['top1'] == pytest.approx(15 / total)
    # every prediction keeps its colour, except the blue square taken for
    # a red square
    assert got['colour'] == pytest.approx(19 / total)
    # shape errors: 1 + 2 + 1 predictions name the other shape
    assert got['shape'] == pytest.approx(16 / total)


def test_knowing_one_part_only():
    """A classifier that knows every colour and guesses the shape."""
    confusion = np.kron(np.eye(2), np.full((2, 2), 5)).astype(int)
    got = attribute_accuracy(confusion, NAMES, ('colour', 'shape'))
    assert got == pytest.approx(dict(top1=0.5, colour=1.0, shape=0.5))


def test_bad_input_raises():
    with pytest.raises(ValueError, match='expected \\(4, 4\\)'):
        attribute_accuracy(np.zeros((3, 3)), NAMES, ('colour', 'shape'))
    with pytest.raises(ValueError, match='does not split'):
        attribute_accuracy(np.eye(4), NAMES, ('colour', 'shape', 'size'))
    with pytest.raises(ValueError, match='empty'):
        attribute_accuracy(np.zeros((4, 4)), NAMES, ('colour', 'shape'))
