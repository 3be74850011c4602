"""Shared fixtures of the analysis tests."""
import pytest


@pytest.fixture
def tiny_configs(tmp_path):
    """Writes A: an LTM-MobileViT-XXS classifier config and B: the plain
    MobileViT-XXS one into ``tmp_path`` (test pipeline resized to ``size``);
    returns ``(ltm_path, plain_path)``."""

    def write(size: int = 128):
        plain = tmp_path / 'plain_xxs.py'
        plain.write_text(
            "default_scope = 'mmpretrain'\n"
            "model = dict(type='ImageClassifier',\n"
            "    backbone=dict(type='MobileViT', arch='xx_small'),\n"
            "    neck=dict(type='GlobalAveragePooling'),\n"
            "    head=dict(type='LinearClsHead', num_classes=10,"
            " in_channels=320))\n"
            "test_dataloader = dict(dataset=dict(pipeline=[\n"
            "    dict(type='LoadImageFromFile'),\n"
            f"    dict(type='Resize', scale={size}),\n"
            "    dict(type='PackInputs')]))\n")
        ltm = tmp_path / 'ltm_xxs.py'
        ltm.write_text(
            "_base_ = './plain_xxs.py'\n"
            "custom_imports = dict(imports=['ltm_mm'], "
            "allow_failed_imports=False)\n"
            "model = dict(backbone=dict(_delete_=True, "
            "type='ltm_mm.LTMMobileViT', arch='xx_small', merge_ratios=0.5,\n"
            "    restore_resolution=False, num_classes=10))\n")
        return ltm, plain

    return write
