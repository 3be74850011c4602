"""mmengine hook that keeps the class statistics of every LTM layer.

Pre-training (``update=True``, paper Algorithm 1): epochs below
``warmup_epochs`` train without merging; every training iteration adds, per
LTM layer and class, the sums of prior-merged token means, input-token means
and ``phi`` (:class:`~ltm_mm.statistics.ClassStatisticsAccumulator`), the
number of merged tokens and whether the layer merged; at the end of each
epoch the sums are all-reduced across ranks and the statistics (with the
classes seen, the reference token count ``P_ref`` and the merged-at-collection
flag) are written into the backbone's buffers, so they travel in every
checkpoint.

Labels are read from the batch after the model's data preprocessor, so
mixup / cutmix soft scores (``gt_score``) are used as class weights; plain
``gt_label`` counts as one-hot.

Fine-tuning (``update=False``): statistics arrive with the pretrained
backbone and stay frozen; the hook checks and logs them before training and
raises when ``require_statistics=True`` and they are missing.

Backbones built with a baseline merger (``merger='pool'`` or ``'tome'``)
have no class statistics: the hook refuses them before training with an
error that says so.
"""
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ltm_mm.models.layers import (LearnableMergeMask, find_merge_masks,
                                  refuse_baseline_mergers)
from ltm_mm.registry import HOOKS
from ltm_mm.statistics import StatisticsRound, soft_labels_from_samples
from .ddp_check import watch_idle_mask_parameters


@HOOKS.register_module()
class LTMStatisticsHook(Hook):
    """Collect (pre-training) or verify (fine-tuning) LTM class statistics.

    Args:
        update (bool): collect and write statistics every epoch (pre-
            training). False keeps them frozen (fine-tuning).
        warmup_epochs (int): epochs trained without merging at the start of
            pre-training. Defaults to 0.
        require_statistics (bool): with ``update=False``, raise if any LTM
            layer lacks valid statistics. Defaults to True.
        smoothing (float): Laplace pseudo-count of ``Q(a | y)``.
    """
    priority = 'NORMAL'

    def __init__(self,
                 update: bool = True,
                 warmup_epochs: int = 0,
                 require_statistics: bool = True,
                 smoothing: float = 1e-2):
        if warmup_epochs < 0:
            raise ValueError(f'warmup_epochs must be >= 0, got '
                             f'{warmup_epochs}')
        self.update = update
        self.warmup_epochs = warmup_epochs
        self.require_statistics = require_statistics
        self.smoothing = smoothing
        self._masks: List[LearnableMergeMask] = []
        self._round: Optional[StatisticsRound] = None
        self._labels = None
        self._handle = None

    # -- set-up ---------------------------------------------------------
    def before_train(self, runner) -> None:
        # pool/tome baselines have no class statistics to collect or check
        refuse_baseline_mergers(runner.model, 'LTMStatisticsHook')
        self._check_ddp_unused_parameters(runner)
        self._masks = find_merge_masks(runner.model)
        if not self._masks:
            print_log('LTMStatisticsHook: the model has no LTM layer; the '
                      'hook does nothing.', logger='current', level=30)
            return
        num_classes = {m.statistics.num_pretrain_classes for m in self._masks}
        if len(num_classes) != 1:
            raise ValueError(f'LTM layers disagree on num_classes: '
                             f'{sorted(num_classes)}')
        self.num_classes = num_classes.pop()
        if self.update:
            self._check_dataset_classes(runner)
            model = runner.model.module if is_model_wrapper(
                runner.model) else runner.model
            self._handle = model.data_preprocessor.register_forward_hook(
                self._capture_labels)
        else:
            self._check_frozen_statistics()

    def _check_ddp_unused_parameters(self, runner) -> None:
        """Under DDP without ``find_unused_parameters``, fail with a clear
        message (layers and config fix) when LTM mask parameters get no
        gradient in the first iteration (:mod:`ltm_mm.hooks.ddp_check`)."""
        self._ddp_watch = watch_idle_mask_parameters(runner.model)

    def _check_dataset_classes(self, runner) -> None:
        dataset = runner.train_dataloader.dataset
        classes = getattr(dataset, 'metainfo', {}).get('classes')
        if classes is not None and len(classes) != self.num_classes:
            raise ValueError(
                f'the training set has {len(classes)} classes but the LTM '
                f'statistics are built for num_classes={self.num_classes}; '
                f'set the backbone\'s num_classes={len(classes)}')

    def _check_frozen_statistics(self) -> None:
        invalid = [i for i, m in enumerate(self._masks)
                   if not m.statistics.is_valid()]
        if invalid and self.require_statistics:
            raise RuntimeError(
                f'LTM layers {invalid} of {len(self._masks)} have no valid '
                f'class statistics. Load a pre-trained backbone that has them '
                f'(init_cfg=dict(type="Pretrained", checkpoint=..., '
                f'prefix="backbone.")), or set require_statistics=False to '
                f'merge from the learned window logits only.')
        state = 'valid' if not invalid else \
            f'missing in layers {invalid} (merging from window logits only)'
        print_log(f'LTMStatisticsHook: {len(self._masks)} LTM layers, '
                  f'K={self.num_classes} classes, statistics {state}, frozen.',
                  logger='current', level=20 if not invalid else 30)
        valid = [m.statistics for m in self._masks
                 if m.statistics.is_valid()]
        unmerged = [s.layer_name for s in valid
                    if not s.merged_when_collected()]
        if unmerged:
            print_log(f'LTMStatisticsHook: the statistics of {unmerged} were '
                      f'collected without merging; where these layers merge '
                      f'now they start from their initial window logits and '
                      f'an untrained MLP.', logger='current', level=30)
        no_reference = [s.layer_name for s in valid
                        if float(s.reference_num_merged) == 0]
        if no_reference:
            print_log(f'LTMStatisticsHook: the statistics of {no_reference} '
                      f'do not record the token count they were collected '
                      f'at; phi uses the current one, exact only at the '
                      f'pre-training resolution.', logger='current',
                      level=30)

    def _capture_labels(self, module, args, output) -> None:
        """Forward hook on the data preprocessor: keep this batch's labels
        (after batch augmentation) for :meth:`after_train_iter`."""
        if module.training and isinstance(output, dict):
            self._labels = soft_labels_from_samples(output['data_samples'],
                                                    self.num_classes)

    # -- pre-training -----------------------------------------------------
    def before_train_epoch(self, runner) -> None:
        if not self._masks or not self.update:
            return
        merging = runner.epoch >= self.warmup_epochs
        self._round = StatisticsRound(self._masks, self.num_classes,
                                      self.smoothing, merging)
        if not merging:
            print_log(f'LTMStatisticsHook: epoch {runner.epoch + 1} is a '
                      f'warm-up epoch: training without merging.',
                      logger='current')

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not self._masks or not self.update:
            return
        labels, self._labels = self._labels, None
        if labels is None:
            raise RuntimeError('LTMStatisticsHook saw no labels for this '
                               'iteration; is the data preprocessor used?')
        self._round.add(labels)

    def after_train_epoch(self, runner) -> None:
        if not self._masks or not self.update:
            return
        self._round.write(runner.logger.info)

    def after_train(self, runner) -> None:
        if self._round is not None:
            self._round.close()
            self._round = None
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
