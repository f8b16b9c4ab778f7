"""The ``path`` tuner: every candidate instruction scored by the real inner pipeline (generate, triples, train,
rerank, evaluate on gold train queries), the best by that measure saved and used by ``generate``, and a
killed search resumed from its cached scores."""

from __future__ import annotations

import json

import pytest

from inparsx.generate.dspy_generator import DSPyGenerator
from inparsx.pipeline import run_recipe
from inparsx.recipe import load_recipe
from inparsx.tune import path as path_tuner

RECIPE = """[recipe]
name = "path-tiny"
seed = 2
[dataset]
name = "{data}"
[tune]
use = "path"
generator = {{ model = "{llama}", max_new_tokens = 6, max_doc_tokens = 32, dtype = "fp32", batch_size = 8 }}
num_docs = 8
n_gold = 5
seed_instructions = ["", "Write a question."]
breadth = 2
rounds = 1
retrieve = {{ use = "bm25s", k = 10 }}
filter = {{ use = ["length"], min_tokens = 0 }}
triples = {{ use = "bm25-negatives", depth = 10, retriever = "bm25s" }}
train = {{ use = "cross-encoder", base_model = "{bert}", max_steps = 3, batch_size = 4, max_length = 64, save_steps = 0, learning_rate = 0.01, warmup_ratio = 0.0 }}
rerank = {{ use = "cross-encoder", model = "@train", depth = 5, max_length = 64, dtype = "fp32" }}
[generate]
use = "hf"
model = "{llama}"
instruction = "@tune"
num_docs = 2
max_new_tokens = 4
max_doc_tokens = 32
dtype = "fp32"
"""  # noqa: E501 (a TOML inline table is one line)

# LM-written text may hold what rich reads as markup ("[/b]": a closing tag with no opening one)
PROPOSALS = [
    {"proposed_instruction": "Ask what a biologist would ask.", "proposed_prefix_for_output_field": "Q:"},
    {"proposed_instruction": "Name the finding [/b] as a question.", "proposed_prefix_for_output_field": "Q:"},
]


@pytest.fixture()
def tiny(tiny_word_models) -> dict[str, str]:
    return tiny_word_models


def test_path_scores_four_candidates_with_the_inner_loop_and_keeps_the_best(tmp_path, scifact_small, tiny, monkeypatch):
    from dspy.utils import DummyLM

    proposer = DummyLM(list(PROPOSALS))
    monkeypatch.setattr(DSPyGenerator, "lm", lambda self, ctx: proposer)
    inner_runs = []
    real_run = path_tuner.PathTuner.score

    def counted(self, instruction, view, ctx, scores):
        inner_runs.append(instruction)
        return real_run(self, instruction, view, ctx, scores)

    monkeypatch.setattr(path_tuner.PathTuner, "score", counted)
    recipe = tmp_path / "path.toml"
    recipe.write_text(RECIPE.format(data=scifact_small, **tiny))
    run_dir = run_recipe(load_recipe(recipe), tmp_path / "run")
    tune = run_dir / "tune"
    result = json.loads((tune / "path.json").read_text())
    scores = {c["instruction"]: c["score"] for c in result["candidates"]}
    assert list(scores) == ["", "Write a question.", *(p["proposed_instruction"] for p in PROPOSALS)]
    assert len(set(scores.values())) > 1  # the candidates' training data differ, and so do their rerankers
    assert result["best"] == max(scores, key=lambda text: scores[text])
    assert (tune / "instruction.txt").read_text().strip() == result["best"]
    for instruction, value in scores.items():  # each score is the inner run's own evaluation
        folder = next(
            f for f in (tune / "candidates").iterdir() if (f / "instruction.txt").read_text().strip() == instruction
        )
        metrics = json.loads((folder / "evaluate" / "metrics.json").read_text())
        assert metrics["rerank"]["ndcg@10"] == value
        prompts = [
            json.loads(line)["prompt_text"] for line in (folder / "generate" / "queries.jsonl").read_text().splitlines()
        ]
        assert len(prompts) == 8 and all(
            p.startswith(f"{instruction}\n\n" if instruction else "Example 1:") for p in prompts
        )
        evaluated = json.loads((folder / "retrieve" / "summary.json").read_text())
        assert evaluated["split"] == path_tuner.GOLD_SPLIT and evaluated["queries"] == 5
    assert not list((tune / "candidates").rglob("report.html"))  # the inner runs are sub-runs: no report
    generated = [json.loads(line) for line in (run_dir / "generate" / "queries.jsonl").read_text().splitlines()]
    best = result["best"]
    assert all(r["prompt_text"].startswith(f"{best}\n\n" if best else "Example 1:") for r in generated)

    # a killed search resumes: every score is cached, no inner run is repeated, no proposal asked again
    (tune / "path.json").unlink()
    inner_runs.clear()
    tuner = path_tuner.PathTuner(load_recipe(recipe).stages["tune"].components[0][1])
    from inparsx.context import ComponentContext
    from inparsx.datasets.base import WithoutSplit
    from inparsx.datasets.beir import BeirFolderDataset

    ctx = ComponentContext(WithoutSplit(BeirFolderDataset(scifact_small), "test"), tune, seed=2)
    monkeypatch.setattr(DSPyGenerator, "lm", lambda self, ctx: pytest.fail("proposals must come from the cache"))
    tuner.tune(ctx)
    assert json.loads((tune / "path.json").read_text())["best"] == best and len(inner_runs) == 4


def test_gold_queries_leave_the_train_split(scifact_small):
    from inparsx.datasets.beir import BeirFolderDataset

    dataset = BeirFolderDataset(scifact_small)
    view = path_tuner.gold_view(dataset, "train", 5, 1, "test")
    gold = view.queries(path_tuner.GOLD_SPLIT)
    assert len(gold) == 5 and set(gold) == set(view.qrels(path_tuner.GOLD_SPLIT))
    assert not set(gold) & set(view.queries("train")) and "test" not in view.splits()


def test_first_line_of_a_chat_reply_drops_labels_quotes_and_markdown():
    assert (
        path_tuner.first_line('\n**Improved instruction:** "Ask what a biologist would ask."\nmore')
        == "Ask what a biologist would ask."
    )
    assert path_tuner.first_line("Instructions: Write a question.\n\nInput: x") == "Write a question."
    assert path_tuner.first_line("New instruction #3: Name the finding.") == "Name the finding."
    assert path_tuner.first_line("- Instruction is key: ask.") == "Instruction is key: ask."
    assert path_tuner.first_line(" \n\n") == ""


def test_plain_proposer_asks_with_copro_instructions_and_keeps_each_first_line(tmp_path, tiny):
    from dspy.teleprompt.copro_optimizer import BasicGenerateInstruction, GenerateInstructionGivenAttempts

    from inparsx.context import ComponentContext

    options = path_tuner.PathOptions(
        generator={"model": tiny["llama"]},
        proposer_format="plain",
        breadth=3,
        train={"use": "cross-encoder", "base_model": tiny["bert"]},
    )
    tuner = path_tuner.PathTuner(options)
    replies = iter(
        [
            "Improved instruction: Ask what a biologist would ask.\nExplanation: ...",
            "",
            '"Write a question."',
            "**Name the finding as a question.**",
            "Name the finding as a question.",
            "Ask about the method.",
        ]
    )
    prompts: list[str] = []
    tuner.proposer = lambda ctx: lambda prompt: prompts.append(prompt) or [next(replies)]
    ctx = ComponentContext(None, tmp_path)  # type: ignore[arg-type]
    scores = {"": 0.25, "Write a question.": 0.5}
    # round 0: from the best instruction; an empty reply and a repeat of a scored instruction are dropped
    assert tuner.propose(0, scores, ctx) == ["Ask what a biologist would ask."]
    assert prompts[0].startswith(" ".join(BasicGenerateInstruction.instructions.split()))
    assert "Basic Instruction:\nWrite a question.\n" in prompts[0] and prompts[0].endswith(path_tuner.PLAIN_REPLY)
    # later rounds: every attempt with its score, worst to best; a proposal repeated within the round is dropped
    assert tuner.propose(1, scores, ctx) == ["Name the finding as a question.", "Ask about the method."]
    assert prompts[3].startswith(" ".join(GenerateInstructionGivenAttempts.instructions.split()))
    assert (
        "Attempted Instructions:\nInstruction #1: \nResulting score #1: 0.2500\n"
        "Instruction #2: Write a question.\nResulting score #2: 0.5000\n"
    ) in prompts[3]


def test_an_error_in_an_inner_stage_table_names_the_file_the_line_and_the_key(tmp_path, scifact_small, tiny):
    from inparsx.recipe import RecipeErrors

    text = RECIPE.format(data=scifact_small, **tiny)
    triples = next(line for line in text.splitlines() if line.startswith("triples = "))
    text = text.replace(triples + "\n", "").replace("max_steps = 3,", "max_stepz = 3,")
    text = text.replace("depth = 5,", "depth = 0,")
    recipe = tmp_path / "path.toml"
    recipe.write_text(text + '[tune.triples]\nuse = "bm25-negatives"\nretriever = "bm25s"\nn_negativez = 2\n')
    lines = recipe.read_text().splitlines()
    with pytest.raises(RecipeErrors) as caught:
        load_recipe(recipe)
    found = {error.key: error for error in caught.value.errors}
    assert {"tune.train.max_stepz", "tune.rerank.depth", "tune.triples.n_negativez"} <= set(found), found
    assert "did you mean 'max_steps'?" in found["tune.train.max_stepz"].reason
    assert lines[found["tune.train.max_stepz"].line - 1].startswith("train = {")  # an inline table: its line
    assert lines[found["tune.triples.n_negativez"].line - 1].startswith("n_negativez")  # a sub-table: the key's
    assert f"{recipe}:{found['tune.rerank.depth'].line}: tune.rerank.depth: " in str(caught.value)


def test_an_inner_reference_to_a_missing_inner_stage_is_an_error_at_its_key(tiny):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"rerank.model\n  @tune is the output of stage 'tune'"):
        path_tuner.PathOptions(
            generator={"model": tiny["llama"]},
            train={"use": "cross-encoder", "base_model": "b"},
            rerank={"use": "cross-encoder", "model": "@tune"},
        )


def test_depth_is_the_old_spelling_of_rounds(tiny):
    train = {"use": "cross-encoder", "base_model": tiny["bert"]}
    with pytest.warns(FutureWarning, match="depth is now spelled rounds"):
        options = path_tuner.PathOptions(generator={"model": tiny["llama"]}, train=train, depth=3)
    assert options.rounds == 3 and "depth" not in options.model_dump()
    assert path_tuner.PathOptions(generator={"model": tiny["llama"]}, train=train).rerank["use"] == "cross-encoder"
    with pytest.raises(ValueError, match="give rounds only"):
        path_tuner.PathOptions(generator={"model": tiny["llama"]}, train=train, depth=3, rounds=2)
