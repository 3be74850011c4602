"""Compare the detections of an image alone and within a batch."""
import torch


def match_detections(alone, batched, score_tol=1e-4, box_tol=1e-3):
    """Index of ``batched``'s detection equal to each of ``alone``'s.

    Batched convolutions round differently (1e-7), which may swap two
    detections of (almost) equal score in a sort, or move one that ties
    with the last kept detection across the ``max_per_img`` cut.  So the
    detections are matched as sets: same label, score within ``score_tol``,
    box within ``box_tol``, one-to-one; those tied with the cut may be
    unmatched (-1).  Asserts that at least 90% are matched and that every
    unmatched one ties with the cut.
    """
    assert len(alone) == len(batched) > 0
    same_label = alone.labels[:, None] == batched.labels[None, :]
    close_score = (alone.scores[:, None] -
                   batched.scores[None, :]).abs() <= score_tol
    box_error = (alone.bboxes[:, None] - batched.bboxes[None, :]).abs()
    scale = batched.bboxes.abs().amax(-1)[None, :]
    close_box = box_error.amax(-1) <= box_tol + 1e-4 * scale
    candidates = same_label & close_score & close_box
    match = torch.where(candidates.any(1), candidates.float().argmax(1), -1)
    matched = match[match >= 0]
    assert len(set(matched.tolist())) == len(matched), 'not one-to-one'
    at_cut = alone.scores <= alone.scores.min() + score_tol
    assert bool((at_cut | (match >= 0)).all()), \
        'a detection above the cut has no counterpart in the batch'
    assert len(matched) >= 0.9 * len(alone)
    return match
