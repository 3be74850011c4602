"""What a classifier of compound classes has learned: the accuracy of each
part of the class names.

The stage-1 classes of the two-stage demo are ``colour_shape`` pairs
(:mod:`ltm_mm.datasets.demo_objects`), and the detector fine-tuned from the
classifier needs only the shape.  Top-1 alone cannot say which part the
classifier knows: 47% top-1 over 12 classes is either every colour and a
few shapes or the reverse.  A prediction counts for a part when the
predicted class has the true class's value of that part.
"""
from typing import Dict, Sequence

import numpy as np
import torch


def attribute_accuracy(confusion: np.ndarray, class_names: Sequence[str],
                       parts: Sequence[str],
                       separator: str = '_') -> Dict[str, float]:
    """``top1`` and the accuracy of each of ``parts``.

    Args:
        confusion: ``(C, C)`` counts, rows the true class, columns the
            predicted one.
        class_names: ``C`` names, each ``len(parts)`` values joined by
            ``separator`` (``'red_square'``).
        parts: what each position of a name means (``('colour', 'shape')``).
    """
    confusion = np.asarray(confusion)
    count = len(class_names)
    if confusion.shape != (count, count):
        raise ValueError(f'confusion matrix of shape {confusion.shape} for '
                         f'{count} classes; expected ({count}, {count})')
    values = [name.split(separator) for name in class_names]
    for name, value in zip(class_names, values):
        if len(value) != len(parts):
            raise ValueError(f'class {name!r} does not split by '
                             f'{separator!r} into the parts {tuple(parts)}')
    total = confusion.sum()
    if total == 0:
        raise ValueError('the confusion matrix is empty: no sample counted')
    result = dict(top1=float(np.trace(confusion) / total))
    for index, part in enumerate(parts):
        # (C, C): does predicted class j share part `index` with true i?
        same = np.array([[a[index] == b[index] for b in values]
                         for a in values])
        result[part] = float(confusion[same].sum() / total)
    return result


@torch.no_grad()
def confusion_matrix(model, loader, num_classes: int) -> np.ndarray:
    """``(C, C)`` counts of an mmpretrain classifier over ``loader``: rows
    the true class, columns the predicted one."""
    model.eval()
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    for batch in loader:
        for sample in model.test_step(batch):
            confusion[int(sample.gt_label), int(sample.pred_label)] += 1
    return confusion
