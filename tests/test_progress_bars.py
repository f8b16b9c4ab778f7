"""transformers' and sentence-transformers' uninformative tqdm bars are silenced; other bars (hub downloads) are
kept."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_loading_and_saving_a_model_prints_no_library_bar(tmp_path):
    code = textwrap.dedent(f"""\
        import sys
        from inparsx.progress import quiet_library_bars
        from inparsx.testing import tiny_bert
        from transformers import AutoModel
        from transformers.utils import logging
        from huggingface_hub.utils import tqdm as hub_tqdm
        from tqdm.autonotebook import tqdm
        path = tiny_bert({str(tmp_path / "bert")!r})
        logging.enable_progress_bar()
        from datasets import Dataset
        print("BEFORE", file=sys.stderr)
        Dataset.from_list([{{"a": i}} for i in range(3)]).map(lambda row: row)  # the CPO trainer's "Map" bars
        AutoModel.from_pretrained(path).save_pretrained({str(tmp_path / "copy")!r})
        quiet_library_bars()
        quiet_library_bars()  # idempotent
        print("AFTER", file=sys.stderr)
        AutoModel.from_pretrained(path).save_pretrained({str(tmp_path / "copy2")!r})
        list(tqdm(range(2), desc="Computing widget examples", file=sys.stderr))
        from tqdm.auto import tqdm as auto_tqdm  # what transformers' GGUF loader uses
        list(auto_tqdm(range(2), desc="Converting and de-quantizing GGUF tensors...", file=sys.stderr))
        Dataset.from_list([{{"a": i}} for i in range(3)]).map(lambda row: row)
        list(hub_tqdm(range(2), desc="model.safetensors", file=sys.stderr))  # a hub download's bar stays
        """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    before, after = result.stderr.split("BEFORE", 1)[1].split("AFTER", 1)
    assert "Loading weights" in before and "Map" in before  # the libraries print them by default: the test can fail
    assert "Loading weights" not in after and "Writing model shards" not in after
    assert "Computing widget examples" not in after and "model.safetensors" in after
    assert "de-quantizing" not in after and "Map" not in after
