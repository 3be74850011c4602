from .efficientvit import EfficientViT
from .ltm_efficientvit import LTMEfficientViT
from .ltm_mobilevit import LTMMobileViT
__all__ = ['LTMMobileViT', 'EfficientViT', 'LTMEfficientViT']
