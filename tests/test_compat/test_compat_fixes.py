"""The compatibility fixes applied on ``import ltm_mm``."""
import torch
from mmengine.config import ConfigDict
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from torch import nn
from torch.utils.data import Dataset

import ltm_mm  # noqa: F401
from ltm_mm.compat import (patch_ssd_head_loss_cls,
                           register_checkpoint_safe_globals)


def test_ssd_head_has_loss_cls_and_patch_is_idempotent():
    from mmdet.models.dense_heads import SSDHead
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    patch_ssd_head_loss_cls()
    patch_ssd_head_loss_cls()
    head = SSDHead(num_classes=3, in_channels=(8, 8),
                   anchor_generator=dict(
                       type='SSDAnchorGenerator', scale_major=False,
                       strides=[16, 32], ratios=[[2], [2]],
                       min_sizes=[16, 32], max_sizes=[32, 64]))
    assert head.loss_cls is None
    # prediction path that used to raise AttributeError
    feats = [torch.randn(1, 8, 4, 4), torch.randn(1, 8, 2, 2)]
    cls_scores, bbox_preds = head(feats)
    results = head.predict_by_feat(
        cls_scores, bbox_preds,
        batch_img_metas=[dict(img_shape=(64, 64), scale_factor=(1., 1.))],
        cfg=ConfigDict(nms_pre=100,
                       nms=dict(type='nms', iou_threshold=0.45),
                       min_bbox_size=0, score_thr=0.0, max_per_img=10),
        rescale=False)
    assert results[0].bboxes.shape[1] == 4


class _Points(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return dict(x=torch.full((3, ), float(index)),
                    y=torch.tensor(float(index)))


class _Regressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, x, y, mode='loss'):
        # default_collate stacks the batch: x (B, 3), y (B, )
        pred = self.linear(x).squeeze(-1)
        return dict(loss=(pred - y).square().mean())


def _runner(work_dir, max_epochs, **kwargs):
    return Runner(
        model=_Regressor(), work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_Points(), batch_size=4,
            collate_fn=dict(type='default_collate'),
            sampler=dict(type='DefaultSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        param_scheduler=[dict(type='CosineAnnealingLR', T_max=max_epochs,
                              by_epoch=True)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=1)),
        **kwargs)


def test_runner_checkpoint_loads_and_resumes_with_weights_only_default(
        tmp_path):
    register_checkpoint_safe_globals()
    _runner(tmp_path / 'a', 2).train()
    ckpt = tmp_path / 'a' / 'epoch_2.pth'
    # torch >= 2.6 default (weights_only=True) accepts the whole checkpoint
    loaded = torch.load(ckpt)
    assert {'meta', 'state_dict', 'message_hub', 'optimizer'} <= set(loaded)
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() >= 0
    load_checkpoint(_Regressor(), str(ckpt))
    resumed = _runner(tmp_path / 'b', 3, resume=True, load_from=str(ckpt))
    resumed.train()
    assert resumed.epoch == 3
