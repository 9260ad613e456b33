# All set-up happens here, so `make demo` and `make test` work on a fresh
# Debian machine with Python 3.11 and root.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cuesmith-installed
# llama.cpp built for any x86-64 with AVX2 (2013 on), not -march=native: a native build turned on
# AVX512_BF16/AMX kernels that died with "Illegal instruction" on a real Q4_K_M model (issue 14).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
DEMO   := out/demo

.PHONY: setup demo test bench corpus clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py packaging/apt-packages.txt packaging/install-system.sh
	bash packaging/install-system.sh packaging/apt-packages.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	# llama-cpp-python first, portable (compiles, ~7 min once; no wheel cache: a cached native build would win)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet --no-cache-dir 'llama-cpp-python>=0.3'
	# train: torch (CPU) for the tests that train a tiny model; llm: llama-cpp-python (built above);
	# gui: the PyQt6 panel; timeline: OpenTimelineIO and its EDL/XML adapters
	$(BIN)/python -m pip install --quiet -e '.[dev,train,llm,gui,timeline]'
	# tinysoundfont's pyaudio dependency needs portaudio headers and is only for live playback
	$(BIN)/python -m pip install --quiet --no-deps tinysoundfont
	touch $@

demo: setup
	$(BIN)/python tests/media.py demo $(DEMO)/demo.mp4
	$(BIN)/cuesmith analyze $(DEMO)/demo.mp4 --json $(DEMO)/analysis.json
	$(BIN)/cuesmith score $(DEMO)/demo.mp4 --out $(DEMO)/score

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/run.py

# the audio corpus (POP909 renders, 30 s each) and paired videos, into the user cache (issue 15)
corpus: setup
	$(BIN)/python -m cuesmith.engine.corpus build --songs 1-800 --per-song 1 --video

clean:
	rm -rf $(VENV) out build *.egg-info
