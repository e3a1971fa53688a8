"""`--stage=export`: the trained model as a TensorFlow Serving SavedModel.

Writes `<export_dir>/<model_name>/<version>/` atomically: the version is built
in a hidden sibling folder (TF Serving only loads all-digit folder names) and
renamed into place, so no server ever sees half a version. Alongside:
  <version>/assets.extra/tf_serving_warmup_requests  one PredictionLog per signature;
  <export_dir>/models.config                         model_config_list for stock TF Serving;
  <export_dir>/batching_parameters.txt               its --batching_parameters_file;
  <version>/assets.extra/serving_config.json         what this version serves (contract, counts).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from typing import Any

import numpy as np
import tensorflow as tf

from serving import contract, warmup
from serving.module import ServedCatalogue, ServingModule, ServingSettings, UserTable
from trainer import text_vectors
from trainer.config import Config, TextConfig
from trainer.data import dataset
from trainer.data import example_schema as es
from trainer.data import io
from trainer.evaluation import evaluator as ev
from trainer.models.catalogue import Vocabularies
from trainer.models.recommender import Recommender

log = logging.getLogger(__name__)

ASSETS_EXTRA = "assets.extra"
SERVING_CONFIG = "serving_config.json"
SAVED_MODEL_FILE = "saved_model.pb"  # what makes a folder a SavedModel; published last on object stores
MODELS_CONFIG = "models.config"
BATCHING_PARAMETERS = "batching_parameters.txt"

# Stock TF Serving pads variable-length inputs with each tensor's FIRST element,
# not with the contract's padding values, so padding stays off: clients send the
# same T (history) and E (exclusions) widths (serving.client does).
BATCHING_PARAMETERS_TEXT = """\
max_batch_size { value: 64 }
batch_timeout_micros { value: 2000 }
max_enqueued_batches { value: 1000 }
num_batch_threads { value: 2 }
pad_variable_length_inputs: false
"""


def user_table(model: Recommender, data_dir: str) -> UserTable:
    """The attributes of every training user the query tower reads (one pass over the train split)."""
    numeric_names = model.query_tower.numeric_attributes
    categorical_names = tuple(model.query_tower.categorical_lookups)
    rows: dict[str, tuple[list[float], list[str]]] = {}
    for batch in dataset.make_dataset(data_dir, "train", 4096):
        users = batch[es.USER_ID].numpy()
        numeric = [batch[es.USER_ATTRIBUTE_PREFIX + n].numpy() for n in numeric_names]
        categorical = [batch[es.USER_ATTRIBUTE_PREFIX + n].numpy() for n in categorical_names]
        for i, user in enumerate(users):
            rows[user.decode("utf-8")] = (
                [float(v[i]) for v in numeric], [v[i].decode("utf-8") for v in categorical]
            )
    ids = np.array(sorted(rows), dtype=object)
    numeric_values = {n: np.array([rows[u][0][j] for u in ids], np.float32) for j, n in enumerate(numeric_names)}
    categorical_values = {n: np.array([rows[u][1][j] for u in ids], object) for j, n in enumerate(categorical_names)}
    return UserTable(ids, numeric_values, categorical_values)


def text_encoder_for(model: Recommender, text: TextConfig):
    """The encoder `embed_items` runs: the fine-tuned one, or the frozen checkpoint the vectors came from."""
    if not model.candidate_tower.use_text:
        return None
    if model.text_encoder is not None:
        return model.text_encoder
    from trainer.models import text_tower  # pylint: disable=g-import-not-at-top

    return text_tower.TextEncoder(text_vectors.frozen_text_config(text))


def build_module(model: Recommender, trained: Config, data_dir: str, settings: ServingSettings, catalogue) -> ServingModule:
    """The ServingModule of a trained model over its training catalogue."""
    vectors = model.catalogue_vectors(training=False).numpy()
    served = ServedCatalogue(catalogue.ids, vectors, catalogue.latitudes, catalogue.longitudes)
    vocabularies = Vocabularies.load(data_dir, dataset.read_manifest(data_dir))
    return ServingModule(
        model, served, user_table(model, data_dir), text_encoder_for(model, trained.text),
        tuple(vocabularies.event_type.tokens), settings,
    )


def next_version(model_base: str) -> int:
    """One more than the highest all-digit folder in `model_base` (1 if none)."""
    if not io.exists(model_base):
        return 1
    versions = [int(name.rstrip("/")) for name in tf.io.gfile.listdir(model_base) if name.rstrip("/").isdigit()]
    return max(versions, default=0) + 1


def save_version(
    module: tf.Module,
    signatures: dict[str, Any],
    model_base: str,
    version: int,
    extra_files: dict[str, bytes] | None = None,
) -> str:
    """Saves `module` as `<model_base>/<version>`; returns the path.

    The version is written to a hidden staging folder and then published whole
    (`_publish`: atomic on local disks, saved_model.pb last on object stores).

    `extra_files` (path inside the version -> bytes) are written before the
    version becomes visible (warmup requests, serving_config.json).
    """
    final = os.path.join(model_base, str(version))
    if io.exists(final):
        raise ValueError(f"Version {version} already exists: {final!r}. Pass another version (0 = next).")
    staging = os.path.join(model_base, f".staging-{version}-{uuid.uuid4().hex[:8]}")
    tf.io.gfile.makedirs(model_base)
    try:
        tf.saved_model.save(module, staging, signatures=signatures)
        for name, data in (extra_files or {}).items():
            io.write_bytes(os.path.join(staging, name), data)
        _publish(staging, final)
    except BaseException:
        if io.exists(staging):
            tf.io.gfile.rmtree(staging)
        raise
    return final


def _publish(staging: str, final: str) -> None:
    """Makes the staged version visible as `final` (which does not exist yet).

    Local disks: one rename, atomic. Object stores (gs://, s3://, ...) have no
    atomic folder rename (a "rename" copies object by object, in name order,
    so saved_model.pb would land before variables/): the files are copied with
    saved_model.pb last, so a server that lists the version mid-copy finds no
    SavedModel yet rather than one without its weights (stock TF Serving retries
    a failed load: --max_num_load_retries, --load_retry_interval_micros), then
    the staging folder is removed. A copy that fails part-way removes what it copied.
    """
    if io.is_local(staging):
        tf.io.gfile.rename(staging, final)
        return
    try:
        _copy_tree(staging, final)
    except BaseException:
        if io.exists(final):
            tf.io.gfile.rmtree(final)
        raise
    tf.io.gfile.rmtree(staging)


def _copy_tree(source: str, target: str) -> None:
    """Copies the folder `source` to `target`, saved_model.pb last."""
    files = []
    for folder, _, names in tf.io.gfile.walk(source):
        inside = folder[len(source):].strip("/")
        tf.io.gfile.makedirs(os.path.join(target, inside) if inside else target)
        files += [os.path.join(inside, name) if inside else name for name in names]
    for name in sorted(files, key=lambda n: n == SAVED_MODEL_FILE):
        tf.io.gfile.copy(os.path.join(source, name), os.path.join(target, name))


def write_server_files(export_dir: str, model_name: str, serving_base_path: str) -> dict[str, str]:
    """models.config (all models found in export_dir) and batching_parameters.txt for stock TF Serving."""
    names = sorted(
        n.rstrip("/") for n in tf.io.gfile.listdir(export_dir)
        if tf.io.gfile.isdir(os.path.join(export_dir, n)) and not n.startswith(".")
    ) if io.exists(export_dir) else [model_name]
    entries = "".join(
        f'  config {{\n    name: "{n}"\n    base_path: "{serving_base_path.rstrip("/")}/{n}"\n'
        '    model_platform: "tensorflow"\n    model_version_policy { latest { num_versions: 1 } }\n  }\n'
        for n in names
    )
    models_config = os.path.join(export_dir, MODELS_CONFIG)
    batching = os.path.join(export_dir, BATCHING_PARAMETERS)
    io.write_text(models_config, "model_config_list {\n" + entries + "}\n")
    io.write_text(batching, BATCHING_PARAMETERS_TEXT)
    return {"models_config": models_config, "batching_parameters": batching}


def sample_requests(data_dir: str, catalogue, max_k: int, size: int = 2) -> dict[str, dict[str, np.ndarray]]:
    """One small request per signature, from the first test examples (warmup, smoke checks)."""
    batch = next(iter(dataset.make_dataset(data_dir, "test", size)))
    query = {t.name: batch[t.name].numpy() for t in contract.QUERY_INPUTS}
    n = len(query["user_id"])
    k = np.full([n], min(10, max_k), np.int32)
    items = {
        "item_id": catalogue.ids[:size].astype(object),
        "text": catalogue.texts[:size].astype(object),
        "category": catalogue.categories[:size].astype(object),
        "latitude": catalogue.latitudes[:size],
        "longitude": catalogue.longitudes[:size],
        "price": catalogue.prices[:size],
    }
    return {
        contract.RECOMMEND: {**query, "k": k, "exclusions": np.full([n, 1], "", object), "diversity": np.zeros([n], np.float32)},
        contract.RETRIEVE: {**query, "k": k, "exclusions": np.full([n, 1], "", object)},
        contract.RANK: {**query, "candidate_item_ids": np.tile(catalogue.ids[:3].astype(object), (n, 1))},
        contract.EMBED_ITEMS: items,
        contract.EMBED_QUERY: query,
    }


def export(config: Config, context=None, model: Recommender | None = None) -> dict[str, str]:
    """Exports the trained model of `config.job_dir`; returns output paths by name.

    `context` / `model` (an `experiment.Context` and the trained model) are
    loaded from the job directory when not given.
    """
    from trainer import experiment  # pylint: disable=g-import-not-at-top

    started = time.time()
    context = context or experiment.load_context(config)
    model = model or experiment.load_trained(config, context)
    trained = Config.from_json(io.read_bytes(os.path.join(config.resolved_model_dir(), "config.json")).decode("utf-8"))
    exclude = config.export.exclude_history
    settings = ServingSettings(
        max_k=config.export.max_k,
        exclude_history=(context.primary_filter == ev.SEEN_FILTERED) if exclude == "auto" else exclude == "yes",
        mmr_pool=config.export.mmr_pool,
    )
    module = build_module(model, trained, context.data_dir, settings, context.catalogue)
    export_dir = config.resolved_export_dir()
    model_base = os.path.join(export_dir, config.export.model_name)
    version = config.export.version or next_version(model_base)
    serving_config = {
        "model_name": config.export.model_name,
        "version": version,
        "settings": settings.__dict__,
        "history_length": config.examples.max_history,
        "items": len(context.catalogue),
        "users": int(tf.shape(module.users.index.keys)[0]),
        "signatures": {name: list(module.output_names(name)) for name in contract.SIGNATURES},
        "event_types": list(module._event_type_names),  # pylint: disable=protected-access
    }
    extra = {
        os.path.join(ASSETS_EXTRA, warmup.FILENAME): warmup.serialize(
            config.export.model_name, sample_requests(context.data_dir, context.catalogue, settings.max_k)
        ),
        os.path.join(ASSETS_EXTRA, SERVING_CONFIG): json.dumps(io.jsonable(serving_config), indent=2, sort_keys=True).encode(),
    }
    path = save_version(module, module.signatures(), model_base, version, extra)
    files = write_server_files(export_dir, config.export.model_name, config.export.serving_base_path)
    log.info("Exported %s version %d (%d items, exclude history: %s) to %s in %.1f s",
             config.export.model_name, version, len(context.catalogue), settings.exclude_history, path, time.time() - started)
    return {"export": path, **files}

