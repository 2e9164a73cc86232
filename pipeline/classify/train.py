"""Train a registered model on gold files (+ stored human corrections) and save it safely.

The file is written with skops.io and loaded only when every type in it is on an
explicit allowlist; a JSON file beside it records library versions, the training
data hash and cross-validated metrics. Loading under other library versions
raises ModelError rather than silently mislabelling.
"""

from __future__ import annotations

import json
import platform
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import sklearn
import skops
import skops.io as sio

from pipeline.classify.registry import KeaModel, get_model
from pipeline.classify.text import article_from_record
from pipeline.errors import ModelError
from pipeline.records import Article

MODEL_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL_PATH = MODEL_DIR / "kea-classifier.skops"

# Every non-builtin type a saved KeaModel may contain. Nothing else is ever loaded.
TRUSTED_TYPES = [
    "pipeline.classify.registry.KeaModel",
    "pipeline.classify.registry.SafeCalibratedClassifier",
    "pipeline.classify.rules.RuleFeatures",
    "pipeline.classify.text.TextAssembler",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._label.LabelEncoder",
    "sklearn.frozen._frozen.FrozenEstimator",
    "builtins.slice",
    "numpy.float32",
    "numpy.float64",
    "numpy.int64",
    "numpy.dtype",
    "numpy.ndarray",
    "scipy.sparse._csr.csr_matrix",
    "builtins.bool",
]


def library_versions() -> dict[str, str]:
    """The versions a model file is tied to."""
    return {"sklearn": sklearn.__version__, "skops": skops.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__,
            "python": platform.python_version()}


def metadata_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def training_examples(gold_recs: Sequence[dict[str, Any]],
                      corrected: Sequence[tuple[Article, dict[str, Any]]] = ()
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


def train(articles: list[Article], labels: list[dict[str, Any]],
          model_name: str | None = None) -> KeaModel:
    """Fit a registered model on all given examples."""
    return get_model(model_name).fit(articles, labels)


def save_model(model: KeaModel, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write the skops file and its JSON metadata (versions, data hash, metrics)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "libraries": library_versions(), "model_name": model.name,
            "model_version": model.version_, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                       time.gmtime())}
    try:
        sio.dump(model, path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    except Exception as err:  # skops raises assorted types on unsupported objects
        raise ModelError(f"cannot save model to {path}: {err}") from err
    metadata_path(path).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def load_model(path: str | Path | None = None, *, check_versions: bool = True) -> KeaModel:
    """Load a model file without unsafe unpickling; refuse other library versions."""
    path = Path(path) if path else DEFAULT_MODEL_PATH
    if not path.exists():
        raise ModelError(f"model file {path} does not exist (run `kea train`)")
    meta_file = metadata_path(path)
    meta: dict[str, Any] = {}
    if meta_file.exists():
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as err:
            raise ModelError(f"model metadata {meta_file} is not JSON: {err}") from err
    elif check_versions:
        raise ModelError(f"model metadata {meta_file} is missing: cannot check library versions")
    if check_versions:
        want = meta.get("libraries", {})
        have = library_versions()
        diff = [f"{k} {want.get(k)} (running {have[k]})" for k in ("sklearn", "skops", "numpy")
                if want.get(k) != have[k]]
        if diff:
            raise ModelError(f"model {path} was saved under other library versions: "
                             f"{', '.join(diff)}; retrain it with `kea train`")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as err:
        raise ModelError(f"model file {path} is not a readable skops file: {err}") from err
    unknown = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unknown:
        raise ModelError(f"model file {path} holds types outside the allowlist, refusing to "
                         f"load: {', '.join(unknown)}")
    try:
        model = sio.load(path, trusted=[t for t in untrusted if t in TRUSTED_TYPES])
    except Exception as err:
        raise ModelError(f"cannot load model {path}: {err}") from err
    if not isinstance(model, KeaModel):
        raise ModelError(f"model file {path} does not hold a KeaModel")
    model.metadata_ = meta
    return model
