"""Training examples, and saving/loading a trained model as its portable artefact.

A model is saved as plain data (JSON + a numpy archive, see `portable`), loaded without
pickle or skops, so any numpy/scipy/scikit-learn release in the declared ranges reads it
and predicts the same. The library versions that trained it are recorded for the record.
"""

from __future__ import annotations

import io
import json
import os
import platform
import re
import tempfile
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
from pipeline.classify.split import is_sealed
from pipeline.classify.text import article_from_record
from pipeline.errors import ModelError
from pipeline.records import Article

MODEL_DIR = Path(__file__).resolve().parent / "shipped"
DEFAULT_MODEL_PATH = MODEL_DIR / "kea-classifier.json"
MODEL_FILE = DEFAULT_MODEL_PATH.name

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
    arts, labs, _ = training_set(gold_recs, corrected)
    return arts, labs


def training_set(
    gold_recs: Sequence[dict[str, Any]], corrected: Sequence[tuple[Article, dict[str, Any]]] = ()
) -> tuple[list[Article], list[dict[str, Any]], list[bool]]:
    """`training_examples` and whether each example is in the sealed part (split.py): a gold
    record by its corpus id, a corrected record by the gold record it corrects (so a
    correction never moves a record between parts), a record only a human labelled by PMID."""
    by_pmid: dict[str, tuple[Article, dict[str, Any], bool]] = {}
    for r in gold_recs:
        by_pmid[str(r["pmid"])] = (article_from_record(r), dict(r["labels"]), is_sealed(r))
    for a, lab in corrected:
        prev = by_pmid.get(str(a.pmid))
        sealed = prev[2] if prev is not None else is_sealed({"pmid": str(a.pmid)})
        by_pmid[str(a.pmid)] = (a, lab, sealed)
    vals = list(by_pmid.values())
    return [v[0] for v in vals], [v[1] for v in vals], [v[2] for v in vals]


def user_model_dir(db: str | Path | None = None) -> Path:
    """Where `kea train` writes by default: $KEA_MODEL_DIR, else ``models/`` beside the
    database (data/models/ for the default one). Never the shipped model's folder."""
    from pipeline.store import resolve_db_path  # lazy: the dashboard reaches here via cards

    env = os.environ.get("KEA_MODEL_DIR", "").strip()
    return Path(env) if env else resolve_db_path(db).parent / "models"


def trained_model_path(db: str | Path | None = None) -> Path:
    """The user's trained model (it may not exist yet)."""
    return user_model_dir(db) / MODEL_FILE


def preferred_model_path(db: str | Path | None = None) -> Path:
    """The model `kea classify` and the About page use: the user's trained one when there
    is one, else the shipped one."""
    trained = trained_model_path(db)
    return trained if trained.is_file() else DEFAULT_MODEL_PATH


def save_model(model: Model, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write the artefact (<stem>.json + <stem>.npz) atomically; returns the JSON path.

    Both files are written complete under temporary names in the target folder, then
    renamed: the npz first, the JSON last. The JSON records the parameters hash of its
    arrays, and the previous npz stays reachable under its hash until the new JSON is in
    place, so a kill at any moment leaves a loadable model, the old one or the new one,
    never a half-new pair (``load_model`` checks).
    """
    pm = model.portable_ if isinstance(model, KeaModel) else model
    for key, arr in pm.arrays.items():
        if arr.dtype == object:
            raise ModelError(f"array {key} holds Python objects: not portable")
    js, npz = portable.artefact_paths(path)
    meta = {
        **meta,
        "libraries": library_versions(),
        "model_name": pm.name,
        "model_version": getattr(model, "version_", None) or pm.version_,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "parameters_hash": pm.parameters_hash()[:16],
    }
    doc = {
        "format": portable.FORMAT,
        "format_version": portable.FORMAT_VERSION,
        "metadata": meta,
        "model": pm.spec,
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, **pm.arrays)
    js_text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    tmp: list[Path] = []
    try:
        js.parent.mkdir(parents=True, exist_ok=True)
        tmp.append(_write_temp(npz, buf.getvalue()))
        tmp.append(_write_temp(js, js_text.encode("utf-8")))
        kept = _keep_current_arrays(js, npz)
        os.replace(tmp[0], npz)
        os.replace(tmp[1], js)
        tmp.clear()
        _fsync_dir(js.parent)
        if kept is not None:
            kept.unlink(missing_ok=True)
    except OSError as err:
        raise ModelError(f"cannot write model {js}: {err.strerror or err}") from err
    finally:
        for t in tmp:
            t.unlink(missing_ok=True)
    return js


def _write_temp(target: Path, data: bytes) -> Path:
    """``data`` in a new file beside ``target``, flushed to disk."""
    fd, name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable (best effort: not every system can fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _kept_arrays(npz: Path, params_hash: str) -> Path:
    """Where a save keeps the arrays of the JSON it replaces (by that JSON's parameters hash)."""
    return npz.with_name(f"{npz.stem}.{params_hash}.npz")


def _keep_current_arrays(js: Path, npz: Path) -> Path | None:
    """Hard-link (or copy) the current npz to its kept name, so the current JSON still finds
    its arrays while the new npz replaces the old; kept files of earlier kills go."""
    for old in npz.parent.glob(f"{npz.stem}.*.npz"):
        if re.fullmatch(re.escape(npz.stem) + r"\.[0-9a-f]{16}\.npz", old.name):
            old.unlink(missing_ok=True)
    for name in (js.name, npz.name):  # temporary files of saves killed earlier
        for old in js.parent.glob(f".{name}.*.tmp"):
            m = re.fullmatch(re.escape(f".{name}.") + r"(\d+)\..+\.tmp", old.name)
            if m and not _alive(int(m.group(1))):
                old.unlink(missing_ok=True)
    try:
        current = portable.load(js)
    except ModelError:
        return None  # nothing loadable to keep
    params = current.metadata_.get("parameters_hash")
    if not isinstance(params, str) or not re.fullmatch(r"[0-9a-f]{16}", params):
        return None  # an old artefact without the hash: load_model cannot check it anyway
    kept = _kept_arrays(npz, params)
    try:
        os.link(npz, kept)
    except OSError:
        os.replace(_write_temp(kept, npz.read_bytes()), kept)
    return kept


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def load_model(path: str | Path | None = None) -> PortableModel:
    """Load a model artefact (the shipped one by default); ModelError when unusable.

    The arrays must be the ones the JSON was saved with (its recorded parameters hash): a
    pair a kill left half-new mid-save reads the kept arrays, anything else is refused.
    """
    js, npz = portable.artefact_paths(Path(path) if path else DEFAULT_MODEL_PATH)
    recorded = portable.read_metadata(js).get("parameters_hash")
    if not isinstance(recorded, str) or not re.fullmatch(r"[0-9a-f]{16}", recorded):
        return portable.load(js)  # an artefact from before the hash was recorded
    kept = _kept_arrays(npz, recorded)
    try:
        model = portable.load(js)
        if model.parameters_hash()[:16] == recorded:
            return model
    except ModelError:
        if not kept.is_file():
            raise
    if kept.is_file():
        doc = json.loads(js.read_text(encoding="utf-8"))
        try:
            with np.load(kept, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            model = PortableModel(doc["model"], arrays, doc.get("metadata") or {})
        except (ValueError, OSError, KeyError) as err:
            raise ModelError(f"model arrays {kept} are unusable: {err}") from err
        if model.parameters_hash()[:16] == recorded:
            return model
    raise ModelError(
        f"model arrays {npz} are not the ones {js.name} was saved with (an interrupted "
        "save, or a replaced file): run `kea train` again"
    )
