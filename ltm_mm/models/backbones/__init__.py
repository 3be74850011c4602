from .ltm_mobilevit import LTMMobileViT
__all__ = ['LTMMobileViT', ]
