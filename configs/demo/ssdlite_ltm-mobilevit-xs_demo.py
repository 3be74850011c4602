# The demo main job: SSDLite with LTM-MobileViT-XS at 320x320, trained from
# scratch on the generated shapes (tools/make_demo_data.py) on CPU, then
# evaluated with COCO metrics (`make demo`).  From scratch there are no
# class statistics (those come from ImageNet pre-training), so the LTM
# layers merge with their learned window logits only.
_base_ = './ssdlite_mobilevit-xs_demo.py'

model = dict(
    backbone=dict(
        type='ltm_mm.LTMMobileViT',
        merge_ratios=[0.7] * 9,
        restore_resolution=True))
