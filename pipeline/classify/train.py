"""Training examples, and saving/loading a trained model as its portable artefact.

A model is saved as plain data (JSON + a numpy archive, see `portable`), loaded without
pickle or skops, so any numpy/scipy/scikit-learn release in the declared ranges reads it
and predicts the same. The library versions that trained it are recorded for the record.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import sklearn

from pipeline.classify import portable
from pipeline.classify.portable import PortableModel
from pipeline.classify.registry import KeaModel
from pipeline.classify.text import article_from_record
from pipeline.records import Article

MODEL_DIR = Path(__file__).resolve().parent / "shipped"
DEFAULT_MODEL_PATH = MODEL_DIR / "kea-classifier.json"

Model = KeaModel | PortableModel


def library_versions() -> dict[str, str]:
    """The versions a model was trained under (informational: loading does not need them)."""
    return {
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }


def metadata_path(model_path: str | Path) -> Path:
    return portable.artefact_paths(model_path)[0]


def training_examples(
    gold_recs: Sequence[dict[str, Any]], corrected: Sequence[tuple[Article, dict[str, Any]]] = ()
) -> tuple[list[Article], list[dict[str, Any]]]:
    """Articles and label dicts from gold records plus (article, corrected labels) pairs.

    A corrected record overrides a gold record with the same PMID.
    """
    by_pmid: dict[str, tuple[Article, dict[str, Any]]] = {}
    for r in gold_recs:
        by_pmid[str(r["pmid"])] = (article_from_record(r), dict(r["labels"]))
    for a, lab in corrected:
        by_pmid[str(a.pmid)] = (a, lab)
    arts = [v[0] for v in by_pmid.values()]
    labs = [v[1] for v in by_pmid.values()]
    return arts, labs


def save_model(model: Model, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write the artefact (<stem>.json + <stem>.npz); returns the JSON path."""
    pm = model.portable_ if isinstance(model, KeaModel) else model
    meta = {
        **meta,
        "libraries": library_versions(),
        "model_name": pm.name,
        "model_version": getattr(model, "version_", None) or pm.version_,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return portable.write(path, pm.spec, pm.arrays, meta)


def load_model(path: str | Path | None = None) -> PortableModel:
    """Load a model artefact (the shipped one by default); ModelError when unusable."""
    return portable.load(Path(path) if path else DEFAULT_MODEL_PATH)
