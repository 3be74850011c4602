# Entry points: `make setup`, `make test`, `make demo` (and its plain
# baseline `make demo-plain`), `make seg-demo` (and `make seg-demo-plain`),
# `make bench`.
PYTHON := .venv/bin/python
DEMO_DATA := data/demo
DEMO_OBJECTS := data/demo_objects
# stage 1: a classifier pre-trained on generated objects (with the class
# statistics); stage 2: SSDLite fine-tuned from it on generated shapes
DEMO_PRETRAIN_CFG := configs/demo/ltm-mobilevit-xs_demo-pretrain.py
DEMO_CFG := configs/demo/ssdlite_ltm-mobilevit-xs_demo-pretrained.py
DEMO_WORK := work_dirs/demo
SEG_DEMO_DATA := data/demo_seg
# stage 2 of the segmentation demo: DeepLabv3 fine-tuned from stage 1
SEG_DEMO_CFG := configs/demo/deeplabv3_ltm-mobilevit-xs-d8_demo-seg-pretrained.py
SEG_DEMO_WORK := work_dirs/seg_demo

.PHONY: setup test test-all demo demo-plain seg-demo seg-demo-plain bench clean

# idempotent: returns in seconds when the environment is up to date
setup:
	bash tools/setup_env.sh

test: setup
	$(PYTHON) -m pytest tests -q

test-all: setup
	$(PYTHON) -m pytest tests -q --run-slow

# the paper's pipeline in miniature: pre-train (statistics), fine-tune, test
demo: setup
	$(PYTHON) tools/make_demo_object_data.py $(DEMO_OBJECTS)
	$(PYTHON) tools/make_demo_data.py $(DEMO_DATA)
	$(PYTHON) tools/train.py $(DEMO_PRETRAIN_CFG) --work-dir $(DEMO_WORK)/pretrain
	$(PYTHON) tools/train.py $(DEMO_CFG) --work-dir $(DEMO_WORK)/detection \
		--cfg-options model.backbone.init_cfg.checkpoint="$$(cat $(DEMO_WORK)/pretrain/last_checkpoint)"
	$(PYTHON) tools/test.py $(DEMO_CFG) "$$(cat $(DEMO_WORK)/detection/last_checkpoint)" --work-dir $(DEMO_WORK)/detection

# the same two stages with the plain backbone
demo-plain:
	$(MAKE) demo DEMO_PRETRAIN_CFG=configs/demo/mobilevit-xs_demo-pretrain.py \
		DEMO_CFG=configs/demo/ssdlite_mobilevit-xs_demo-pretrained.py \
		DEMO_WORK=work_dirs/demo_plain

# the same pipeline for segmentation: stage 1 as in `make demo` (reused when
# $(DEMO_WORK)/pretrain holds it), then DeepLabv3 fine-tuned from it
seg-demo: setup
	$(PYTHON) tools/make_demo_object_data.py $(DEMO_OBJECTS)
	test -f $(DEMO_WORK)/pretrain/last_checkpoint || \
		$(PYTHON) tools/train.py $(DEMO_PRETRAIN_CFG) --work-dir $(DEMO_WORK)/pretrain
	$(PYTHON) tools/make_demo_seg_data.py $(SEG_DEMO_DATA)
	$(PYTHON) tools/train.py $(SEG_DEMO_CFG) --work-dir $(SEG_DEMO_WORK) \
		--cfg-options model.backbone.init_cfg.checkpoint="$$(cat $(DEMO_WORK)/pretrain/last_checkpoint)"
	$(PYTHON) tools/test.py $(SEG_DEMO_CFG) "$$(cat $(SEG_DEMO_WORK)/last_checkpoint)" --work-dir $(SEG_DEMO_WORK)

# the same two stages with the plain backbone
seg-demo-plain:
	$(MAKE) seg-demo DEMO_PRETRAIN_CFG=configs/demo/mobilevit-xs_demo-pretrain.py \
		DEMO_WORK=work_dirs/demo_plain \
		SEG_DEMO_CFG=configs/demo/deeplabv3_mobilevit-xs-d8_demo-seg-pretrained.py \
		SEG_DEMO_WORK=work_dirs/seg_demo_plain

bench: setup
	$(PYTHON) benchmarks/make_page.py docs/benchmarks.md

clean:
	rm -rf work_dirs .pytest_cache
