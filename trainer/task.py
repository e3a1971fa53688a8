"""Entry point: `python -m trainer.task --stage=... --data=... --job-dir=...`.

Flags and Vertex AI's environment (AIP_MODEL_DIR, AIP_CHECKPOINT_DIR,
AIP_TENSORBOARD_LOG_DIR) are read here and only here, turned into one `Config`,
and passed down.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

import trainer  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from trainer.config import (
    Config,
    DataConfig,
    DataSource,
    DistributionConfig,
    EvalConfig,
    ExportConfig,
    ExampleConfig,
    FeatureConfig,
    ModelConfig,
    RetrievalMode,
    SplitKind,
    Stage,
    SyntheticConfig,
    TextConfig,
    TextMode,
    TrainConfig,
)

log = logging.getLogger("trainer")
KEY_ENV = "PSEUDONYMIZE_KEY"


def _parse_time(text: str) -> int:
    """Unix seconds from unix seconds or a zoned ISO-8601 time ("" -> 0)."""
    if not text:
        return 0
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise ValueError(f"Cannot read time {text!r}: give unix seconds or ISO-8601 with a zone.") from e
    if value.tzinfo is None:
        raise ValueError(f"Time {text!r} needs a zone (Z or +hh:mm), or give unix seconds.")
    return int(value.timestamp())


def _column_map(values: Sequence[str]) -> dict[str, str]:
    mapping = {}
    for value in values:
        for pair in value.split(","):
            if not pair.strip():
                continue
            canonical, sep, source = pair.partition("=")
            if not sep or not canonical.strip() or not source.strip():
                raise ValueError(f"--column-map takes canonical=input pairs. Received: {pair!r}")
            mapping[canonical.strip()] = source.strip()
    return mapping


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.task",
        description="Prepare, analyse (and later train, evaluate, export) a spatio-temporal recommender.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--stage", choices=[s.value for s in Stage], default=Stage.ALL.value)
    parser.add_argument("--job-dir", default="", help="output folder (default: from AIP_MODEL_DIR, else runs/default)")
    parser.add_argument("--model-dir", default="", help="default: AIP_MODEL_DIR or <job-dir>/model")
    parser.add_argument("--checkpoint-dir", default="", help="default: AIP_CHECKPOINT_DIR or <job-dir>/checkpoints")
    parser.add_argument("--tensorboard-dir", default="", help="default: AIP_TENSORBOARD_LOG_DIR or <job-dir>/logs")
    parser.add_argument("--seed", type=int, default=42)

    data = parser.add_argument_group("data")
    data.add_argument("--data", choices=[s.value for s in DataSource], default=DataSource.SYNTHETIC.value)
    data.add_argument("--data-path", default="", help="dataset folder, or events file(s): path, glob or comma list")
    data.add_argument("--items-path", default="", help="--data=events: item catalogue file(s)")
    data.add_argument("--users-path", default="", help="--data=events: user attribute file(s)")
    data.add_argument("--column-map", action="append", default=[], help="canonical=input, e.g. user_id=uid,item_id=sku")
    data.add_argument("--delimiter", default="", help="CSV delimiter override")
    data.add_argument("--timezone", default="", help="IANA zone for local time when inputs carry no offsets")
    data.add_argument("--extra-event-types", default="", help="comma list of event types allowed besides the known ones")
    data.add_argument("--default-event-type", default="interaction")
    data.add_argument("--event-place", choices=["auto", "item", "user"], default="auto",
                      help="item: an event's place is its item's (check-ins); user: the user's own place; auto: detect")
    data.add_argument(
        "--pseudonymize-users",
        action="store_true",
        help=f"replace user ids by keyed hashes at ingestion; the key comes from ${KEY_ENV} or --pseudonymize-key-file",
    )
    data.add_argument("--pseudonymize-key-file", default="")
    data.add_argument("--min-user-events", type=int, default=1)
    data.add_argument("--min-item-events", type=int, default=1)
    data.add_argument("--ignore-item-columns", default="",
                      help="comma list of item attributes to leave out: text, category, location, price")
    defaults = SyntheticConfig()
    data.add_argument("--synthetic-users", type=int, default=defaults.num_users)
    data.add_argument("--synthetic-items", type=int, default=defaults.num_items)
    data.add_argument("--synthetic-events", type=int, default=defaults.num_events)
    data.add_argument("--synthetic-seed", type=int, default=defaults.seed)

    examples = parser.add_argument_group("examples")
    example_defaults = ExampleConfig()
    examples.add_argument("--split", choices=[s.value for s in SplitKind], default=example_defaults.split.value)
    examples.add_argument("--validation-start", default="", help="temporal split: unix seconds or zoned ISO time")
    examples.add_argument("--test-start", default="", help="temporal split: unix seconds or zoned ISO time")
    examples.add_argument("--max-history", type=int, default=example_defaults.max_history)
    examples.add_argument("--min-history", type=int, default=example_defaults.min_history)
    examples.add_argument("--examples-per-shard", type=int, default=example_defaults.examples_per_shard)
    examples.add_argument("--runner", default=example_defaults.runner,
                          help="where examples are made: local, or an Apache Beam runner (DirectRunner, DataflowRunner, ...)")
    examples.add_argument("--beam-option", action="append", default=[],
                          help="an option for the Beam runner, e.g. --beam-option=--project=my-project (repeatable)")
    feature_defaults = FeatureConfig()
    examples.add_argument("--coarse-cell-degrees", type=float, default=feature_defaults.coarse_cell_degrees)
    examples.add_argument("--fine-cell-degrees", type=float, default=feature_defaults.fine_cell_degrees)

    text = parser.add_argument_group("text tower")
    text_defaults = TextConfig()
    text.add_argument("--text-mode", choices=[m.value for m in TextMode], default=text_defaults.mode.value)
    text.add_argument("--bert-path", default="", help="local BERT checkpoint folder; default: packaged all-MiniLM-L6-v2")
    text.add_argument("--max-tokens", type=int, default=text_defaults.max_tokens)
    text.add_argument("--finetune-layers", type=int, default=text_defaults.finetune_layers)
    text.add_argument("--bert-lowercase", action=argparse.BooleanOptionalAction, default=text_defaults.lowercase,
                      help="lower-case text before WordPiece (uncased checkpoints); --no-bert-lowercase for cased ones")
    text.add_argument("--pretrain-epochs", type=int, default=2, help="--stage=pretrain-text: MLM epochs")

    model = parser.add_argument_group("model")
    model_defaults = ModelConfig()
    model.add_argument("--embedding-dim", type=int, default=model_defaults.embedding_dim)
    model.add_argument("--gru-units", default=",".join(map(str, model_defaults.gru_units)), help="comma list: stacked GRUs")
    model.add_argument("--retrieval", choices=[m.value for m in RetrievalMode], default=model_defaults.retrieval.value)
    model.add_argument("--temperature", type=float, default=model_defaults.temperature)
    model.add_argument("--repeat-aware", action=argparse.BooleanOptionalAction, default=model_defaults.repeat_aware)
    model.add_argument("--dropout", type=float, default=model_defaults.dropout)
    model.add_argument("--id-dropout", type=float, default=model_defaults.id_dropout)
    model.add_argument("--retrieval-weight", type=float, default=model_defaults.retrieval_weight,
                       help="loss weight of the retrieval (explore) task")
    model.add_argument("--repeat-weight", type=float, default=model_defaults.repeat_weight,
                       help="loss weight of the repeat gate and pointer tasks (with --repeat-aware)")
    model.add_argument("--behaviour-weight", type=float, default=model_defaults.behaviour_weight,
                       help="loss weight of the behaviour (ranking) heads")

    train = parser.add_argument_group("training and evaluation")
    train_defaults = TrainConfig()
    train.add_argument("--epochs", type=int, default=train_defaults.epochs)
    train.add_argument("--batch-size", type=int, default=train_defaults.batch_size)
    train.add_argument("--learning-rate", type=float, default=train_defaults.learning_rate)
    train.add_argument("--lr-decay", type=float, default=train_defaults.lr_decay,
                       help="multiply the learning rate by this after every epoch (1 = constant)")
    train.add_argument("--weight-decay", type=float, default=train_defaults.weight_decay,
                       help="decoupled weight decay (AdamW) on weights and embeddings, not biases (0 = Adam)")
    train.add_argument("--patience", type=int, default=train_defaults.patience)
    train.add_argument("--max-train-seconds", type=float, default=train_defaults.max_seconds)
    eval_defaults = EvalConfig()
    train.add_argument("--primary-filter", choices=["auto", "unfiltered", "seen_filtered"], default=eval_defaults.primary_filter)
    export = parser.add_argument_group("export (TensorFlow Serving)")
    export_defaults = ExportConfig()
    export.add_argument("--model-name", default=export_defaults.model_name, help="TF Serving model name")
    export.add_argument("--export-dir", default="", help="default: <job-dir>/export")
    export.add_argument("--export-version", type=int, default=export_defaults.version, help="0 = next free version")
    export.add_argument("--max-k", type=int, default=export_defaults.max_k, help="largest k a request may ask for")
    export.add_argument("--exclude-history", choices=["auto", "yes", "no"], default=export_defaults.exclude_history,
                        help="never recommend items in the request's history (auto: as the evaluation's primary filter)")
    export.add_argument("--mmr-pool", type=int, default=export_defaults.mmr_pool)
    export.add_argument("--serving-base-path", default=export_defaults.serving_base_path,
                        help="export dir as the TF Serving container sees it (models.config)")
    train.add_argument("--baselines", default=",".join(eval_defaults.baselines), help="comma list; '' for none")
    return parser


VERTEX_POOLS = {"workerpool0": "chief", "workerpool1": "worker"}


def distribution_from_env(environ: Mapping[str, str]) -> DistributionConfig:
    """The cluster from TF_CONFIG, else Vertex AI's CLUSTER_SPEC (worker pools 0 and 1)."""
    for name in ("TF_CONFIG", "CLUSTER_SPEC"):
        text = environ.get(name, "")
        if not text:
            continue
        try:
            spec = json.loads(text)
            cluster, task = spec.get("cluster", {}), spec.get("task", {})
        except (json.JSONDecodeError, AttributeError) as e:
            raise ValueError(f"${name} is not a JSON object with cluster and task: {e}. Received: {text[:200]!r}") from None
        if name == "CLUSTER_SPEC":
            cluster = {VERTEX_POOLS.get(pool, pool): hosts for pool, hosts in cluster.items() if hosts}
            task = dict(task, type=VERTEX_POOLS.get(task.get("type", ""), task.get("type", "")))
        return DistributionConfig(
            cluster={k: list(v) for k, v in cluster.items()}, task_type=str(task.get("type", "")),
            task_index=int(task.get("index", 0)),
        )
    return DistributionConfig()


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> Config:
    """The one place flags and environment become configuration."""
    model_dir = args.model_dir or environ.get("AIP_MODEL_DIR", "")
    job_dir = args.job_dir
    if not job_dir:
        # Vertex sets AIP_MODEL_DIR to <base output dir>/model; use the base.
        job_dir = os.path.dirname(model_dir.rstrip("/")) if model_dir else "runs/default"
    return Config(
        stage=Stage(args.stage),
        job_dir=job_dir,
        model_dir=model_dir,
        checkpoint_dir=args.checkpoint_dir or environ.get("AIP_CHECKPOINT_DIR", ""),
        tensorboard_dir=args.tensorboard_dir or environ.get("AIP_TENSORBOARD_LOG_DIR", ""),
        seed=args.seed,
        data=DataConfig(
            source=DataSource(args.data),
            data_path=args.data_path,
            items_path=args.items_path,
            users_path=args.users_path,
            column_map=_column_map(args.column_map),
            delimiter=args.delimiter,
            timezone=args.timezone,
            extra_event_types=tuple(t.strip() for t in args.extra_event_types.split(",") if t.strip()),
            default_event_type=args.default_event_type,
            event_place=args.event_place,
            pseudonymize_users=args.pseudonymize_users,
            min_user_events=args.min_user_events,
            min_item_events=args.min_item_events,
            ignore_item_columns=tuple(c.strip() for c in args.ignore_item_columns.split(",") if c.strip()),
            synthetic=SyntheticConfig(
                num_users=args.synthetic_users,
                num_items=args.synthetic_items,
                num_events=args.synthetic_events,
                seed=args.synthetic_seed,
            ),
        ),
        examples=ExampleConfig(
            max_history=args.max_history,
            split=SplitKind(args.split),
            validation_start=_parse_time(args.validation_start),
            test_start=_parse_time(args.test_start),
            min_history=args.min_history,
            examples_per_shard=args.examples_per_shard,
            runner=args.runner,
            beam_options=tuple(args.beam_option),
        ),
        features=FeatureConfig(
            coarse_cell_degrees=args.coarse_cell_degrees, fine_cell_degrees=args.fine_cell_degrees
        ),
        text=TextConfig(
            mode=TextMode(args.text_mode), bert_path=args.bert_path, max_tokens=args.max_tokens,
            finetune_layers=args.finetune_layers, lowercase=args.bert_lowercase,
        ),
        model=ModelConfig(
            embedding_dim=args.embedding_dim,
            id_embedding_dim=args.embedding_dim,
            gru_units=tuple(int(u) for u in args.gru_units.split(",") if u.strip()),
            retrieval=RetrievalMode(args.retrieval),
            temperature=args.temperature,
            repeat_aware=args.repeat_aware,
            dropout=args.dropout,
            id_dropout=args.id_dropout,
            retrieval_weight=args.retrieval_weight,
            repeat_weight=args.repeat_weight,
            behaviour_weight=args.behaviour_weight,
        ),
        train=TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
            lr_decay=args.lr_decay, weight_decay=args.weight_decay, patience=args.patience,
            max_seconds=args.max_train_seconds,
        ),
        evaluation=EvalConfig(
            primary_filter=args.primary_filter,
            baselines=tuple(b.strip() for b in args.baselines.split(",") if b.strip()),
        ),
        distribution=distribution_from_env(environ),
        export=ExportConfig(
            model_name=args.model_name, export_dir=args.export_dir, version=args.export_version, max_k=args.max_k,
            exclude_history=args.exclude_history, mmr_pool=args.mmr_pool, serving_base_path=args.serving_base_path,
        ),
    )


def pseudonymize_key(args: argparse.Namespace, environ: Mapping[str, str]) -> bytes | None:
    """The secret for --pseudonymize-users (never stored in the config or any output)."""
    if not args.pseudonymize_users:
        return None
    if args.pseudonymize_key_file:
        try:
            with open(args.pseudonymize_key_file, "rb") as f:
                key = f.read().strip()
        except OSError as e:
            raise ValueError(f"Cannot read --pseudonymize-key-file {args.pseudonymize_key_file!r}: {e}") from e
    else:
        key = environ.get(KEY_ENV, "").encode("utf-8")
    if not key:
        raise ValueError(
            f"--pseudonymize-users needs a secret key: set ${KEY_ENV} or pass --pseudonymize-key-file."
        )
    return key


def export_in_fresh_process(argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The chief of a cluster exports from a new single-machine process: functions traced in a
    cluster process pin ops to /job:worker devices, which a server could not place."""
    flags = [a for a in argv if not a.startswith("--stage")]
    env = {k: v for k, v in environ.items() if k not in ("TF_CONFIG", "CLUSTER_SPEC")}
    result = subprocess.run([sys.executable, "-m", "trainer.task", "--stage=export", *flags], env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ValueError(f"Export after multi-worker training failed: {result.stderr[-2000:]}")
    outputs = {}
    for line in result.stdout.splitlines():
        name, _, path = line.strip().partition(": ")
        if name in ("export", "models_config", "batching_parameters") and path:
            outputs[name] = path
    return outputs


def run(
    config: Config,
    key: bytes | None = None,
    pretrain_epochs: int = 2,
    argv: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Runs the configured stage(s); returns the main output paths by name.

    `all` = prepare -> analyze -> train -> evaluate -> export (`gate` is its own stage; text pretraining is its own
    stage: `--stage=pretrain-text`, then `--bert-path=<job-dir>/text_pretrained`).
    """
    # pylint: disable=g-import-not-at-top
    from trainer.data import prepare as prepare_lib

    stage = config.stage
    outputs: dict[str, str] = {}
    tables = None
    strategy = None
    distribution = config.distribution
    if distribution.multi_worker:
        # On a cluster (TF_CONFIG / CLUSTER_SPEC) every worker trains; the chief then
        # evaluates and exports. Data preparation is one machine's job, done before.
        if stage in (Stage.PREPARE, Stage.ANALYZE, Stage.PRETRAIN_TEXT):
            raise ValueError(f"--stage={stage.value} runs on one machine: run it without TF_CONFIG / CLUSTER_SPEC.")
        if not os.path.exists(os.path.join(prepare_lib.data_dir(config.job_dir), "manifest.json")) and "://" not in config.job_dir:
            raise ValueError(f"No prepared data in {config.job_dir!r}: run --stage=prepare on one machine first.")
        from trainer import training

        strategy = training.make_strategy(distribution)  # before any other TensorFlow op
    if stage in (Stage.PREPARE, Stage.ALL) and not distribution.multi_worker:
        result = prepare_lib.prepare(config, key)
        tables = result.tables
        outputs["manifest"] = os.path.join(result.data_dir, "manifest.json")
        outputs["examples"] = result.data_dir
        outputs["rejects"] = os.path.join(result.data_dir, "rejects")
    if stage in (Stage.ANALYZE, Stage.ALL) and not distribution.multi_worker:
        from trainer.analysis import report
        from trainer.data import sources

        if tables is None:
            tables, _, _ = prepare_lib.canonicalize(sources.read_source(config.data), config.data, key)
        outputs["analysis"] = report.write_report(tables, os.path.join(config.job_dir, "analysis"))
    del tables
    if stage == Stage.PRETRAIN_TEXT:
        from trainer import text_pretraining_stage

        outputs.update(text_pretraining_stage.run(config, pretrain_epochs))
    context = model = None
    if stage in (Stage.TRAIN, Stage.EVALUATE, Stage.ALL):
        from trainer import experiment

        context = experiment.load_context(config)
        train_result = None
        if stage in (Stage.TRAIN, Stage.ALL):
            train_result = experiment.train(config, context, strategy)
            outputs["model"] = config.resolved_model_dir()
            outputs["tensorboard"] = config.resolved_tensorboard_dir()
            model = train_result.model
        if not distribution.is_chief:
            log.info("Worker %s #%d done: the chief evaluates and exports.", distribution.task_type, distribution.task_index)
            return outputs
        if stage in (Stage.EVALUATE, Stage.ALL):
            if train_result is None:
                model = experiment.load_trained(config, context)
            outputs.update(experiment.evaluate(config, context, model, train_result))
    if stage == Stage.GATE:
        from trainer import gate

        outputs.update(gate.run(config, context, model))
    if stage in (Stage.EXPORT, Stage.ALL):
        if distribution.multi_worker:
            outputs.update(export_in_fresh_process(argv, environ or {}))
        else:
            from serving import export as export_lib

            outputs.update(export_lib.export(config, context, model))
    return outputs


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    environ = os.environ if environ is None else environ
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args, environ)
        key = pseudonymize_key(args, environ)
        outputs = run(config, key, args.pretrain_epochs, list(sys.argv[1:] if argv is None else argv), environ)
    except ValueError as e:
        log.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        from trainer.gate import GateFailed  # pylint: disable=g-import-not-at-top

        if not isinstance(e, GateFailed):
            raise
        print(f"gate failed: {e}", file=sys.stderr)
        return 3
    print(f"Stage {config.stage.value} done. Outputs:")
    for name, path in outputs.items():
        print(f"  {name}: {os.path.abspath(path) if '://' not in path else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
