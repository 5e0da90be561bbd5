"""Loads a task's data from a JSONL file next to the task YAML (lm-eval resolves `!function` there).

A task YAML says `custom_dataset: !function local_data.load` and `dataset_kwargs: {test: FILE}`;
`datasets.load_dataset("json", ...)` alone would resolve FILE against the working directory.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(**kwargs):
    import datasets

    files = {split: str(HERE / kwargs[split]) for split in ("train", "validation", "test") if split in kwargs}
    return datasets.load_dataset("json", data_files=files)
