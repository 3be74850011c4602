"""The class-statistics entries of a state dict (tests of how statistics
travel between checkpoints)."""

#: Part of every class-statistics buffer's state-dict key.
STAT_KEY = '.statistics.'


def backbone_statistics(state_dict) -> dict:
    """The statistics buffers of a model's backbone, keyed without the
    ``backbone.`` prefix."""
    return {k.split('backbone.', 1)[1]: v for k, v in state_dict.items()
            if STAT_KEY in k}
