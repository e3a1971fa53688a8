"""Typed configuration, built once at the entry point and passed down.

Every dataclass validates itself in `__post_init__` (raising ValueError naming
the field and value) and round-trips through JSON (`to_dict` / `from_dict`).
Secrets (the pseudonymisation key) are never serialised.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import typing
from typing import Any


class DataSource(str, enum.Enum):
    SYNTHETIC = "synthetic"
    MOVIELENS_100K = "movielens-100k"
    FOURSQUARE_CSV = "foursquare-csv"
    FOURSQUARE_TSMC = "foursquare-tsmc"
    EVENTS = "events"


class SplitKind(str, enum.Enum):
    LEAVE_ONE_OUT = "leave-one-out"
    TEMPORAL = "temporal"


class Stage(str, enum.Enum):
    PREPARE = "prepare"
    ANALYZE = "analyze"
    PRETRAIN_TEXT = "pretrain-text"
    TRAIN = "train"
    EVALUATE = "evaluate"
    GATE = "gate"  # must beat popularity and co-occurrence on validation
    EXPORT = "export"
    ALL = "all"


class TextMode(str, enum.Enum):
    FROZEN = "frozen"  # BERT runs once per catalogue item; vectors cached and reused
    FINETUNE = "finetune"  # the top `finetune_layers` layers train with the model
    OFF = "off"  # no text


class RetrievalMode(str, enum.Enum):
    FULL = "full"  # softmax over the whole catalogue (+ in-batch): catalogues that fit
    IN_BATCH = "in-batch"  # in-batch negatives with logQ correction: any catalogue size


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """The embedded synthetic spatio-temporal commerce world.

    Defaults keep the README's main command to a few minutes on 2 cores.
    """

    num_users: int = 2000  # people, each with a home region and a daily rhythm
    num_items: int = 1500  # products with generated text, category, price, store location
    num_events: int = 100_000  # approximate total events (views, clicks, purchases)
    num_regions: int = 8  # home regions (neighbourhoods of a fictional metro area)
    seed: int = 7

    def __post_init__(self):
        for name in ("num_users", "num_items", "num_events", "num_regions"):
            value = getattr(self, name)
            _check(value >= 1, f"`{name}` must be >= 1. Received: {name}={value}")
        _check(self.num_items >= 20, f"`num_items` must be >= 20. Received: num_items={self.num_items}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the behaviour logs come from and how rows are accepted."""

    source: DataSource = DataSource.SYNTHETIC
    data_path: str = ""  # events file / dataset directory; unused for synthetic
    items_path: str = ""  # --data=events: optional item catalogue
    users_path: str = ""  # --data=events: optional user attributes
    # Input column name -> canonical name is `column_map[canonical] = input`.
    column_map: dict[str, str] = dataclasses.field(default_factory=dict)
    delimiter: str = ""  # CSV delimiter override; "" = from the extension
    # IANA zone for local time when the input has no offsets (e.g. America/New_York).
    timezone: str = ""
    extra_event_types: tuple[str, ...] = ()  # allowed besides schema.KNOWN_EVENT_TYPES
    default_event_type: str = "interaction"  # used where the event type column is absent/empty
    # Where events happen: "item" (check-ins: the event's place is the item's),
    # "user" (the user's own place), or "auto" (reader's word, else detected).
    event_place: str = "auto"
    pseudonymize_users: bool = False
    min_user_events: int = 1  # users with fewer events are filtered (and counted)
    min_item_events: int = 1  # items with fewer events are filtered (and counted)
    # Item attributes to leave out (ablations; catalogues that only have text):
    # any of "text", "category", "location", "price".
    ignore_item_columns: tuple[str, ...] = ()
    synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)

    def __post_init__(self):
        _check(
            self.source == DataSource.SYNTHETIC or bool(self.data_path),
            f"`data_path` is required for --data={self.source.value}. Received: data_path={self.data_path!r}",
        )
        _check(
            self.event_place in ("auto", "item", "user"),
            f"`event_place` must be auto, item or user. Received: event_place={self.event_place!r}",
        )
        unknown = sorted(set(self.ignore_item_columns) - {"text", "category", "location", "price"})
        _check(
            not unknown,
            f"`ignore_item_columns` may hold text, category, location, price. Received unknown: {unknown}",
        )
        for name in ("min_user_events", "min_item_events"):
            value = getattr(self, name)
            _check(value >= 1, f"`{name}` must be >= 1. Received: {name}={value}")
        _check(len(self.delimiter) <= 1, f"`delimiter` must be one character. Received: delimiter={self.delimiter!r}")
        if self.timezone:
            from trainer.data import timezones  # pylint: disable=g-import-not-at-top

            _check(
                timezones.is_valid_timezone(self.timezone),
                f"`timezone` must be an IANA zone name. Received: timezone={self.timezone!r}",
            )


@dataclasses.dataclass(frozen=True)
class ExampleConfig:
    """How a user's sorted events become training examples."""

    max_history: int = 50  # last N events before the target; most recent last
    split: SplitKind = SplitKind.LEAVE_ONE_OUT
    # Temporal split: targets before `validation_start` train, before `test_start`
    # validate, the rest test (unix seconds). 0 = at the 80% / 90% event-time quantiles.
    validation_start: int = 0
    test_start: int = 0
    min_history: int = 1  # a target needs at least this many earlier events
    examples_per_shard: int = 100_000
    # Where the per-user transform runs: "local" (in process) or an Apache Beam
    # runner (DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, ...).
    runner: str = "local"
    beam_options: tuple[str, ...] = ()  # e.g. ("--project=p", "--region=europe-west4", "--temp_location=gs://b/t")

    def __post_init__(self):
        _check(self.max_history >= 1, f"`max_history` must be >= 1. Received: max_history={self.max_history}")
        _check(self.min_history >= 0, f"`min_history` must be >= 0. Received: min_history={self.min_history}")
        _check(
            self.min_history <= self.max_history,
            f"`min_history` must be <= max_history={self.max_history}. Received: min_history={self.min_history}",
        )
        _check(
            self.examples_per_shard >= 1,
            f"`examples_per_shard` must be >= 1. Received: examples_per_shard={self.examples_per_shard}",
        )
        if self.validation_start or self.test_start:
            _check(
                self.split == SplitKind.TEMPORAL,
                "`validation_start`/`test_start` only apply to split=temporal. "
                f"Received: split={self.split.value}",
            )
            _check(
                0 < self.validation_start < self.test_start,
                "`validation_start` must be > 0 and before `test_start`. Received: "
                f"validation_start={self.validation_start}, test_start={self.test_start}",
            )


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Spatio-temporal feature settings; baked into the serving graph later."""

    # Geo-cell sizes in degrees, coarse (region) then fine (neighbourhood).
    coarse_cell_degrees: float = 0.5
    fine_cell_degrees: float = 0.02
    # Gaps are bucketed by floor(log2(1 + seconds)), capped to this many buckets.
    num_gap_buckets: int = 32

    def __post_init__(self):
        _check(
            0 < self.fine_cell_degrees < self.coarse_cell_degrees <= 180,
            "Need 0 < fine_cell_degrees < coarse_cell_degrees <= 180. Received: "
            f"fine_cell_degrees={self.fine_cell_degrees}, coarse_cell_degrees={self.coarse_cell_degrees}",
        )
        _check(
            2 <= self.num_gap_buckets <= 64,
            f"`num_gap_buckets` must be in [2, 64]. Received: num_gap_buckets={self.num_gap_buckets}",
        )


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """The BERT item-text tower."""

    mode: TextMode = TextMode.FROZEN
    bert_path: str = ""  # local BERT checkpoint dir; "" = the packaged all-MiniLM-L6-v2
    max_tokens: int = 64  # item text is truncated to this many word pieces
    finetune_layers: int = 2  # FINETUNE: how many top transformer layers train
    lowercase: bool = True  # the checkpoint's tokenizer lower-cases (uncased models)

    def __post_init__(self):
        _check(8 <= self.max_tokens <= 512, f"`max_tokens` must be in [8, 512]. Received: max_tokens={self.max_tokens}")
        _check(
            self.finetune_layers >= 1,
            f"`finetune_layers` must be >= 1. Received: finetune_layers={self.finetune_layers}",
        )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Tower sizes and task settings."""

    embedding_dim: int = 64  # item/query vector size
    id_embedding_dim: int = 64
    gru_units: tuple[int, ...] = (128,)  # stacked GRU layers over the history
    retrieval: RetrievalMode = RetrievalMode.FULL
    temperature: float = 0.05  # retrieval logits = cosine / temperature
    repeat_aware: bool = True  # learn when people repeat (pointer over history) vs explore
    dropout: float = 0.1
    id_dropout: float = 0.1  # share of items seen as unknown ids in training (cold-start robustness)
    cross_layers: int = 2  # DCN cross layers in the ranking heads
    retrieval_weight: float = 1.0
    repeat_weight: float = 1.0
    behaviour_weight: float = 0.2
    rating_threshold: float = 4.0  # value >= this counts as "liked" in the behaviour head

    def __post_init__(self):
        _check(self.embedding_dim >= 2, f"`embedding_dim` must be >= 2. Received: embedding_dim={self.embedding_dim}")
        _check(bool(self.gru_units) and min(self.gru_units) >= 1, f"`gru_units` must be positive. Received: gru_units={self.gru_units}")
        _check(self.temperature > 0, f"`temperature` must be > 0. Received: temperature={self.temperature}")
        _check(0 <= self.dropout < 1, f"`dropout` must be in [0, 1). Received: dropout={self.dropout}")
        _check(0 <= self.id_dropout < 1, f"`id_dropout` must be in [0, 1). Received: id_dropout={self.id_dropout}")
        # The retrieval task is what learns to rank the catalogue, so it cannot be switched off.
        _check(math.isfinite(self.retrieval_weight) and self.retrieval_weight > 0,
               f"`retrieval_weight` must be a finite number > 0. Received: retrieval_weight={self.retrieval_weight}")
        for name in ("repeat_weight", "behaviour_weight"):
            value = getattr(self, name)
            _check(math.isfinite(value) and value >= 0, f"`{name}` must be a finite number >= 0. Received: {name}={value}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 2e-3
    lr_decay: float = 1.0  # the learning rate is multiplied by this after every epoch (1 = constant)
    weight_decay: float = 0.0  # decoupled weight decay (AdamW) on weights and embeddings, not biases; 0 = Adam
    patience: int = 3  # early stopping on validation NDCG@10
    max_seconds: float = 0.0  # 0 = no wall-clock budget

    def __post_init__(self):
        _check(self.epochs >= 1, f"`epochs` must be >= 1. Received: epochs={self.epochs}")
        _check(self.batch_size >= 2, f"`batch_size` must be >= 2. Received: batch_size={self.batch_size}")
        _check(self.learning_rate > 0, f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate}")
        _check(0 < self.lr_decay <= 1, f"`lr_decay` must be in (0, 1]. Received: lr_decay={self.lr_decay}")
        _check(0 <= self.weight_decay < 1, f"`weight_decay` must be in [0, 1). Received: weight_decay={self.weight_decay}")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    # Films are rarely re-watched (seen items removed); places are revisited (keep them).
    primary_filter: str = "auto"  # "auto" | "unfiltered" | "seen_filtered"
    baselines: tuple[str, ...] = ("popularity", "repeat_frequency", "cooccurrence", "tfrs_two_tower_ids")

    def __post_init__(self):
        _check(
            self.primary_filter in ("auto", "unfiltered", "seen_filtered"),
            f"`primary_filter` must be auto, unfiltered or seen_filtered. Received: primary_filter={self.primary_filter!r}",
        )


@dataclasses.dataclass(frozen=True)
class DistributionConfig:
    """The training cluster (from TF_CONFIG or Vertex's CLUSTER_SPEC, read in `trainer.task`).

    cluster: task type -> list of "host:port" ({} = one machine);
    task_type / task_index: this process's place in it.
    """

    cluster: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    task_type: str = ""
    task_index: int = 0

    def __post_init__(self):
        if self.cluster:
            _check(
                self.task_type in self.cluster and 0 <= self.task_index < len(self.cluster[self.task_type]),
                f"The task {self.task_type!r} #{self.task_index} is not in the cluster {self.cluster}",
            )
            unknown = sorted(set(self.cluster) - {"chief", "worker"})
            _check(not unknown, f"Only chief and worker tasks are supported (MultiWorkerMirroredStrategy). Received: {unknown}")

    @property
    def multi_worker(self) -> bool:
        return sum(len(v) for v in self.cluster.values()) > 1

    @property
    def is_chief(self) -> bool:
        """The chief writes the model, metrics and export; other workers only train."""
        if not self.cluster:
            return True
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """The SavedModel for TensorFlow Serving (`--stage=export`)."""

    model_name: str = "recommender"
    export_dir: str = ""  # "" = <job_dir>/export; versions go to <export_dir>/<model_name>/<version>
    version: int = 0  # 0 = one more than the highest existing version
    max_k: int = 1000
    exclude_history: str = "auto"  # "auto" (as the evaluation's primary filter) | "yes" | "no"
    mmr_pool: int = 200  # best-scoring items MMR re-ranking chooses from
    serving_base_path: str = "/models"  # where the TF Serving container sees export_dir (models.config)

    def __post_init__(self):
        _check(
            bool(self.model_name) and all(c.isalnum() or c in "-_" for c in self.model_name),
            f"`model_name` must be letters, digits, '-' or '_'. Received: model_name={self.model_name!r}",
        )
        _check(self.version >= 0, f"`version` must be >= 0 (0 = next). Received: version={self.version}")
        _check(self.max_k >= 1, f"`max_k` must be >= 1. Received: max_k={self.max_k}")
        _check(
            self.exclude_history in ("auto", "yes", "no"),
            f"`exclude_history` must be auto, yes or no. Received: exclude_history={self.exclude_history!r}",
        )
        _check(self.mmr_pool >= 1, f"`mmr_pool` must be >= 1. Received: mmr_pool={self.mmr_pool}")


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole job: built once in `trainer.task`, passed down."""

    stage: Stage = Stage.ALL
    job_dir: str = "runs/default"
    model_dir: str = ""  # "" = <job_dir>/model (Vertex: AIP_MODEL_DIR)
    checkpoint_dir: str = ""  # "" = <job_dir>/checkpoints (Vertex: AIP_CHECKPOINT_DIR)
    tensorboard_dir: str = ""  # "" = <job_dir>/logs (Vertex: AIP_TENSORBOARD_LOG_DIR)
    seed: int = 42
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    examples: ExampleConfig = dataclasses.field(default_factory=ExampleConfig)
    features: FeatureConfig = dataclasses.field(default_factory=FeatureConfig)
    text: TextConfig = dataclasses.field(default_factory=TextConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    evaluation: EvalConfig = dataclasses.field(default_factory=EvalConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    distribution: DistributionConfig = dataclasses.field(default_factory=DistributionConfig)

    def __post_init__(self):
        _check(bool(self.job_dir), f"`job_dir` must be set. Received: job_dir={self.job_dir!r}")

    def resolved_model_dir(self) -> str:
        return self.model_dir or f"{self.job_dir.rstrip('/')}/model"

    def resolved_checkpoint_dir(self) -> str:
        return self.checkpoint_dir or f"{self.job_dir.rstrip('/')}/checkpoints"

    def resolved_export_dir(self) -> str:
        return self.export.export_dir or f"{self.job_dir.rstrip('/')}/export"

    def resolved_tensorboard_dir(self) -> str:
        return self.tensorboard_dir or f"{self.job_dir.rstrip('/')}/logs"

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        return from_dict(cls, values)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        return cls.from_dict(json.loads(text))


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain JSON values (enums by value, tuples as lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Builds dataclass `cls` from `to_dict` output; unknown keys raise ValueError."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"Unknown {cls.__name__} field(s) {unknown}; known: {sorted(names)}")
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(hints[name], value)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    origin = typing.get_origin(hint)
    if origin is tuple:
        return tuple(value)
    if hint is float and isinstance(value, int):
        return float(value)
    return value
