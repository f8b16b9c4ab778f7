#!/usr/bin/env bash
# GPU check, one command of at most ~8 minutes on one H200: throughput of inparsx's engines on random-weight
# models of real sizes (Llama-3.1-8B in bf16: hf and vllm generation, one CPO step with a LoRA; MiniLM-L12 and
# monoT5-3B: reranking), each beside the bound the GPU's memory bandwidth sets (see bench/gpu_bench.py).
#
#   bench/gpu.sh --download       # on a machine with PyPI: the wheels the GPU machine lacks, into $WHEELS
#   bench/gpu.sh                  # on the GPU machine (installs the wheels of $WHEELS first, never from an index)
#   bench/gpu.sh --tiny           # tiny configs, on the CPU when there is no GPU (a check of the script)
#
# $WHEELS (default bench/wheels, ignored by git) holds the wheels of what a bare GPU image with torch and
# transformers lacks: inparsx's light dependencies (pydantic, pluggy...), and trl with datasets for the CPO
# step. vLLM's CUDA wheel (several hundred MB) is left to that machine: when `import vllm` fails there, its
# section says so and is skipped. $PYTHON_VERSION (default 3.12) is the GPU machine's Python.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WHEELS=${WHEELS:-bench/wheels}
LIMIT=${LIMIT:-480}
NEEDED="pydantic pydantic_core annotated-types typing-inspection pluggy typer rich tomli filelock trl datasets dill multiprocess"

if [[ "${1:-}" == "--download" ]]; then
    pins=$(for name in $NEEDED; do grep -iE "^${name}==" constraints.txt; done)
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "${PYTHON_VERSION:-3.12}" \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$WHEELS" $pins tomli-w
    echo "$(ls "$WHEELS"/*.whl | wc -l) wheels in $WHEELS ($(du -sh "$WHEELS" | cut -f1))"
    exit 0
fi
if [[ -d "$WHEELS" ]] && compgen -G "$WHEELS/*.whl" > /dev/null; then
    echo "installing from $WHEELS: $(ls "$WHEELS"/*.whl | wc -l) wheels"
    "$PYTHON" -m pip install -q --no-index --no-deps --find-links "$WHEELS" "$WHEELS"/*.whl
fi
if ! "$PYTHON" -c "import inparsx" 2> /dev/null; then
    "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e . || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
exec timeout "$LIMIT" "$PYTHON" bench/gpu_bench.py "$@"
