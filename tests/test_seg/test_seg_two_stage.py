"""Stage 2 of ``make seg-demo``: DeepLabv3 MobileViT-XS fine-tuned from a
stage-1 classifier checkpoint of ``make demo`` (``make demo-plain`` for the
plain baseline), the LTM one with its class statistics."""
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from ltm_mm.analysis.synthetic_statistics import fill_synthetic_statistics
from seg_models import CONFIGS, build_segmentor, packed_batch, random_images
from statistics_keys import backbone_statistics

LTM = 'demo/deeplabv3_ltm-mobilevit-xs-d8_demo-seg-pretrained.py'
PLAIN = 'demo/deeplabv3_mobilevit-xs-d8_demo-seg-pretrained.py'


def _stage1_checkpoint(path, stage1_config: str, statistics: bool) -> dict:
    """A checkpoint as stage 1 writes it: the classifier's backbone under
    ``backbone.``, random weights (and statistics)."""
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(str(CONFIGS / 'demo' / stage1_config))
    torch.manual_seed(1)
    backbone = MODELS.build(cfg.model.backbone)
    if statistics:
        assert fill_synthetic_statistics(backbone) == 9
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    torch.save(dict(state_dict=state), path)
    return state


def _stage2(tmp_path, config: str, stage1_config: str, statistics: bool):
    """``(cfg, model, stage-1 state)``: the stage-2 segmentor of ``config``
    built from a stage-1 checkpoint of ``stage1_config``."""
    checkpoint = tmp_path / 'stage1.pth'
    state = _stage1_checkpoint(checkpoint, stage1_config, statistics)
    cfg = Config.fromfile(str(CONFIGS / config))
    cfg.model.backbone.init_cfg.checkpoint = str(checkpoint)
    return cfg, build_segmentor(cfg), state


def test_ltm_stage2_loads_the_weights_and_statistics_and_merges(tmp_path):
    cfg, model, state = _stage2(
        tmp_path, LTM, 'ltm-mobilevit-xs_demo-pretrain.py', statistics=True)
    loaded = model.state_dict()
    expected = backbone_statistics(state)
    assert expected and backbone_statistics(loaded).keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[f'backbone.{key}'], value), key
    conv = 'backbone.stem.conv.weight'
    assert torch.equal(loaded[conv], state[conv])
    hook, = [h for h in cfg.custom_hooks if 'LTMStatisticsHook' in h.type]
    assert hook['require_statistics'] is True and hook['update'] is False
    # every layer merges at 128 px (8x8 tokens per sequence, output
    # stride 8), and its IB step runs
    masks = [m for m in model.backbone.modules()
             if hasattr(m, 'statistics')]
    assert len(masks) == 9 and all(m.statistics.is_valid() for m in masks)
    # the scores' gradient stops at the tokens (docs/two_stage.md)
    assert all(m.detach_score_inputs for m in masks)
    model.eval()
    data = model.data_preprocessor(
        packed_batch(random_images([(128, 128)])), False)
    with torch.no_grad():
        merged = model.extract_feat(data['inputs'])[0]
        for mask in masks:
            mask.merging_enabled = False
        unmerged = model.extract_feat(data['inputs'])[0]
    assert merged.shape == unmerged.shape == (1, 384, 16, 16)
    assert not torch.allclose(merged, unmerged)


def test_plain_stage2_loads_the_plain_classifier(tmp_path):
    _, model, state = _stage2(
        tmp_path, PLAIN, 'mobilevit-xs_demo-pretrain.py', statistics=False)
    loaded = model.state_dict()
    backbone_keys = [k for k in loaded if k.startswith('backbone.')]
    assert backbone_keys and set(backbone_keys) == set(state)
    for key in backbone_keys:
        assert torch.equal(loaded[key], state[key]), key
    assert list(model.backbone.merge_ratios) == [1.0] * 9
