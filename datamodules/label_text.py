"""Text the networks read for each class, when it is not the class name: TC-CLIP's LLM-rephrased labels.

TC-CLIP's "LLM" variant (naver-ai/tc-clip `labels/labels_froster/*_llm*.json`, from FROSTER) replaces each
class name by an LLM-written description, e.g. `{"0": "Brush hair: A person is using a brush to style their
hair", ...}`, keyed by the class id of the label CSV it rephrases (`hmdb_51_llm_labels.json` <->
`hmdb_51_labels.csv`). The networks then see "a photo of a <description>." (TC-CLIP trains these with a
77-token text context). The CSV names stay the class identity everywhere else (manifest rows, metrics,
per-class reports), so generated clips still match by name. A JSON keyed by class name instead of id is
accepted as well.

The paper's TC-CLIP rows are tc-clip's "(LLM)" rows: these names with a 77-token text context. The dataset
fragments name FROSTER's files (`hmdb_51_llm_labels.json`, ... as tc-clip's configs/common/default.yaml does)
as optional (`label_text_required: false`): present, they are used; absent, the CSV names are, and
`describe_class_text` says which for results.json. `python -m generation rephrase-labels` (generation/rephrase.py)
writes such a file with the project's own LLM backend.
"""

from __future__ import annotations

import json
from pathlib import Path

from datamodules.annotations import AnnotationError, read_labels


def read_label_text(json_path: str | Path, label_csv: str | Path) -> dict[str, str]:
    """Class name (of `label_csv`) -> text, from a TC-CLIP LLM label JSON (keys: class ids) or a {name: text} JSON.

    Raises:
        FileNotFoundError: either file is missing.
        AnnotationError: not a JSON object of strings, or its keys are neither exactly the CSV's ids nor a
            subset of its names (the message names both files).
    """
    json_path = Path(json_path)
    if not json_path.is_file():
        raise FileNotFoundError(f"class-text file not found: {json_path}; fix `--data.label_text`")
    names = read_labels(label_csv)
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{json_path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) and v.strip() for v in data.values()):
        raise AnnotationError(f'{json_path}: expected a JSON object of non-empty strings, e.g. {{"0": "..."}}')
    if set(data) == {str(i) for i in range(len(names))}:  # TC-CLIP's format: ids of the CSV
        return {names[int(k)]: v.strip() for k, v in data.items()}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise AnnotationError(
            f"{json_path}: keys must be the class ids 0..{len(names) - 1} of {label_csv} or its class names; "
            f"found {len(data)} keys, e.g. {unknown[:3]} (is it the text file of another label list?)"
        )
    return {k: v.strip() for k, v in data.items()}


def present_label_text(label_text: dict[str, str], folder: str | Path, required: bool = True) -> dict[str, Path]:
    """label set key -> its text file under `folder`; absent files are an error when `required`, else left out."""
    files = {key: Path(folder) / name for key, name in label_text.items()}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing and required:
        raise FileNotFoundError(f"class-text file not found: {missing[0]}; fix `--data.label_text`")
    return {key: path for key, path in files.items() if path.is_file()}


def describe_class_text(files: dict[str, Path]) -> str:
    """What a run's networks read for the class names: `csv` (the label CSV's names) or `llm: <file names>`."""
    return "llm: " + ", ".join(sorted(p.name for p in files.values())) if files else "csv"
