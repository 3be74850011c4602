# Entry points: `make setup`, `make test`, `make demo`, `make bench`.
PYTHON := .venv/bin/python
STAMP := .venv/.ltm_mm_setup_stamp
DEMO_DATA := data/demo
DEMO_CFG := configs/demo/ltm_ssdlite_mobilevit-xs_demo.py

.PHONY: setup test test-all demo bench clean

setup:
	bash tools/setup_env.sh

$(STAMP): requirements/pins.txt requirements/tests.txt setup.py tools/setup_env.sh
	bash tools/setup_env.sh

test: setup
	$(PYTHON) -m pytest tests -q

test-all: setup
	$(PYTHON) -m pytest tests -q --run-slow

demo: setup
	$(PYTHON) tools/make_demo_data.py $(DEMO_DATA)
	$(PYTHON) tools/train.py $(DEMO_CFG) --work-dir work_dirs/demo
	$(PYTHON) tools/test.py $(DEMO_CFG) work_dirs/demo/latest_checkpoint.pth --work-dir work_dirs/demo

bench: setup
	$(PYTHON) tools/make_benchmarks_page.py docs/benchmarks.md

clean:
	rm -rf work_dirs .pytest_cache
