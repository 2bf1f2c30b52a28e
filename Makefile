# vcodec developer entry points. Everything runs inside ./.venv.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
export OMP_NUM_THREADS ?= 2

.PHONY: install demo test test-fast bench data corpus train fuzz clean

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	# torch: the CPU build that lies on this machine's disk (190 MB wheel, ~1 GB installed); where it is not on disk,
	# the 2.14.1 build (a CUDA build: 5.5 GB installed, more than some fresh machines have free).
	$(VPY) -m pip install -q 'torch==2.13.0+cpu' || $(VPY) -m pip install -q torch==2.14.1
	# every extra: the test suite covers training, the data tools and the benchmarks too
	$(VPY) -m pip install -q -e '.[test,data,bench,train]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VPY) -m vcodec.demo

test: install
	$(VPY) -m ruff check .
	$(VPY) -m pytest -x tests

# the fast tier (< 1 minute on 2 cores): everything not marked @pytest.mark.slow
test-fast: install
	$(VPY) -m pytest -x -m "not slow" tests

bench: install
	mkdir -p bench-out
	$(VPY) -m benchmarks.tokenizer_speed --json bench-out/tokenizer_speed.json
	$(VPY) -m benchmarks.stream_memory
	$(VPY) -m benchmarks.coder_real --json bench-out/coder_real.json
	$(VPY) -m benchmarks --suite smoke --force -o bench-out/smoke

data: install
	$(VPY) -m vcodec.data.fetch --out data

train: data
	# model v2: resumes runs/v2/ckpt.pt exactly when it exists, else starts from the shipped weights
	# (warm start when the shipped model is another network); settings: RECIPES["v2"] in vcodec/train/trainer.py
	$(VPY) -m vcodec.cli train data/corpus.npz -o runs/v2/ckpt.pt --resume --model-config v2 --init vcodec/weights/default.pt

fuzz: install
	$(VPY) -m tests.fuzz_long --cases 1000000
	# lying header values with valid CRCs, through the real decoder (a tiny model) into every output type
	$(VPY) -m tests.fuzz_values --cases 20000

clean:
	rm -rf $(VENV) build *.egg-info
