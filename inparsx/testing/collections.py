"""A tiny BEIR collection built in code, for plugin tests that must not depend on downloaded data.

Fifteen short documents on five topics (three per topic, each a title and two sentences), six train
queries and four test queries with binary qrels, written in the BEIR layout (``corpus.jsonl``, ``queries.jsonl``,
``qrels/<split>.tsv``), in the spirit of ir_datasets' dummy collection. Load it with
:class:`inparsx.datasets.beir.BeirFolderDataset` or name its folder as a recipe's ``[dataset] name``.
"""

from __future__ import annotations

import json
from pathlib import Path

_SENTENCES: dict[str, tuple[str, str, str]] = {
    "d01": (
        "Caffeine and sleep",
        "Caffeine taken late in the day delays sleep onset and shortens deep sleep in adults.",
        "Participants who drank coffee after six in the evening slept about forty minutes less.",
    ),
    "d02": (
        "Caffeine metabolism",
        "The liver enzyme CYP1A2 breaks down most caffeine; smokers clear it faster.",
        "Its half-life is about five hours in healthy adults and longer during pregnancy.",
    ),
    "d03": (
        "Coffee and heart rhythm",
        "Moderate coffee drinking was not linked to atrial fibrillation in a large cohort.",
        "The cohort followed more than three hundred thousand people for eight years.",
    ),
    "d04": (
        "Vitamin D and bone",
        "Vitamin D raises calcium absorption in the gut and supports bone mineral density.",
        "Children who lack it can develop rickets, a softening of the bones.",
    ),
    "d05": (
        "Sunlight and vitamin D",
        "Skin exposed to ultraviolet B light makes vitamin D from a cholesterol precursor.",
        "People living far from the equator make little of it during winter.",
    ),
    "d06": (
        "Vitamin D trials",
        "Large trials found vitamin D supplements did not prevent fractures in healthy adults.",
        "The supplements were taken daily for five years in the largest trial.",
    ),
    "d07": (
        "Malaria parasites",
        "Plasmodium falciparum parasites invade red blood cells and cause severe malaria.",
        "The parasites multiply in the liver before they enter the blood.",
    ),
    "d08": (
        "Mosquito nets",
        "Insecticide-treated bed nets cut child deaths from malaria in African villages.",
        "Nets treated with pyrethroids also killed the mosquitoes that landed on them.",
    ),
    "d09": (
        "Malaria drug resistance",
        "Artemisinin resistance spread in Southeast Asia through kelch13 mutations.",
        "Patients with resistant parasites cleared their infections more slowly.",
    ),
    "d10": (
        "Gut bacteria and diet",
        "A fibre-rich diet increases short-chain fatty acids made by gut bacteria.",
        "These fatty acids feed the cells that line the colon.",
    ),
    "d11": (
        "Antibiotics and microbiome",
        "A course of antibiotics reduces gut microbial diversity for several months.",
        "Some species had not returned six months after the treatment ended.",
    ),
    "d12": (
        "Microbiome and obesity",
        "Mice given microbes from obese donors gained more fat than control mice.",
        "The transfer of microbes alone was enough to change body weight.",
    ),
    "d13": (
        "Exercise and memory",
        "Aerobic exercise enlarged the hippocampus and improved memory in older adults.",
        "The walking group gained hippocampal volume over one year of training.",
    ),
    "d14": (
        "Exercise and mood",
        "Regular running lowered symptoms of depression as much as medication in a trial.",
        "The effect lasted for several months after the trial ended.",
    ),
    "d15": (
        "Muscle and ageing",
        "Resistance training slows the loss of muscle mass that comes with ageing.",
        "Older adults who trained twice a week kept more of their strength.",
    ),
}

DOCS: dict[str, tuple[str, str]] = {doc: (title, f"{one} {two}") for doc, (title, one, two) in _SENTENCES.items()}
"""docid -> (title, text)."""

QUERIES: dict[str, tuple[str, str, list[str]]] = {
    "q1": ("train", "does caffeine affect sleep", ["d01"]),
    "q2": ("train", "how is caffeine broken down in the body", ["d02"]),
    "q3": ("train", "do vitamin d supplements prevent fractures", ["d06"]),
    "q4": ("train", "how do bed nets reduce malaria deaths", ["d08"]),
    "q5": ("train", "effect of antibiotics on gut microbes", ["d11"]),
    "q6": ("train", "does exercise help memory in old age", ["d13"]),
    "q7": ("test", "coffee and atrial fibrillation", ["d03"]),
    "q8": ("test", "how does the skin make vitamin d", ["d05"]),
    "q9": ("test", "artemisinin resistance mutations", ["d09"]),
    "q10": ("test", "running as a treatment for depression", ["d14"]),
}
"""qid -> (split, text, relevant docids)."""


def tiny_beir(folder: str | Path) -> Path:
    """Write the tiny collection as a BEIR folder under ``folder`` (created) and return it.

    Splits: ``train`` (6 queries) and ``test`` (4), one relevant document each (relevance 1).
    """
    folder = Path(folder)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for doc_id, (title, text) in DOCS.items():
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as handle:
        for qid, (_, text, _) in QUERIES.items():
            handle.write(json.dumps({"_id": qid, "text": text}) + "\n")
    for split in ("train", "test"):
        rows = [f"{qid}\t{doc}\t1\n" for qid, (s, _, docs) in QUERIES.items() if s == split for doc in docs]
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(rows))
    return folder


def corpus_only(source: str | Path, target: str | Path, n: int | None = None) -> Path:
    """A BEIR folder at ``target`` holding only ``corpus.jsonl``: the first ``n`` documents (all for ``None``)
    of the BEIR folder ``source``, byte for byte; a collection without labels, as a user's own documents are.

    Raises:
        FileExistsError: ``target`` exists.
    """
    target = Path(target)
    target.mkdir(parents=True)
    lines = (Path(source) / "corpus.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (target / "corpus.jsonl").write_text("".join(lines[:n]), encoding="utf-8")
    return target
