# Entry points: `make setup`, `make test`, `make demo`, `make seg-demo`,
# `make bench`.
PYTHON := .venv/bin/python
DEMO_DATA := data/demo
DEMO_CFG := configs/demo/ssdlite_ltm-mobilevit-xs_demo.py
DEMO_WORK := work_dirs/demo
SEG_DEMO_DATA := data/demo_seg
SEG_DEMO_CFG := configs/demo/deeplabv3_ltm-mobilevit-xxs-d8_demo-seg.py
SEG_DEMO_WORK := work_dirs/seg_demo

.PHONY: setup test test-all demo seg-demo bench clean

# idempotent: returns in seconds when the environment is up to date
setup:
	bash tools/setup_env.sh

test: setup
	$(PYTHON) -m pytest tests -q

test-all: setup
	$(PYTHON) -m pytest tests -q --run-slow

demo: setup
	$(PYTHON) tools/make_demo_data.py $(DEMO_DATA)
	$(PYTHON) tools/train.py $(DEMO_CFG) --work-dir $(DEMO_WORK)
	$(PYTHON) tools/test.py $(DEMO_CFG) "$$(cat $(DEMO_WORK)/last_checkpoint)" --work-dir $(DEMO_WORK)

# trains $(SEG_DEMO_CFG) and prints its mIoU on the validation images
seg-demo: setup
	$(PYTHON) tools/make_demo_seg_data.py $(SEG_DEMO_DATA)
	$(PYTHON) tools/train.py $(SEG_DEMO_CFG) --work-dir $(SEG_DEMO_WORK)
	$(PYTHON) tools/test.py $(SEG_DEMO_CFG) "$$(cat $(SEG_DEMO_WORK)/last_checkpoint)" --work-dir $(SEG_DEMO_WORK)

bench: setup
	$(PYTHON) benchmarks/make_page.py docs/benchmarks.md

clean:
	rm -rf work_dirs .pytest_cache
