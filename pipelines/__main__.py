"""`python -m pipelines compile --output=pipeline.yaml [--image=...]`
`python -m pipelines run-local --job-dir=DIR [--pretrain-text] [-- trainer flags ...]`

compile: the KFP v2 pipeline as a YAML for Vertex AI Pipelines (components run
`--image`, a container with this package installed).
run-local: runs it end to end here with kfp.local (subprocesses, this Python
environment); trainer flags after `--` become the pipeline's parameters.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import trainer  # noqa: F401  (Keras 2 before TensorFlow)


def arguments_from_flags(flags: Sequence[str], job_dir: str) -> dict:
    """Pipeline arguments from trainer flags (validated by the trainer's own parser and config)."""
    from pipelines.pipeline import parameters  # pylint: disable=g-import-not-at-top
    from trainer import task  # pylint: disable=g-import-not-at-top

    args = task.build_parser().parse_args([f"--job-dir={job_dir}", *flags])
    task.config_from_args(args, {})  # raises ValueError on a bad combination, before any step runs
    values = vars(args)
    out = {}
    for spec in parameters():
        value = values[spec["name"]]
        if spec["kind"] == "append":
            value = ",".join(value)
        if value != spec["default"]:
            out[spec["name"]] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    parser = argparse.ArgumentParser(prog="python -m pipelines", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    compile_parser = commands.add_parser("compile", help="write the pipeline YAML")
    compile_parser.add_argument("--output", default="pipeline.yaml")
    compile_parser.add_argument("--image", default="", help="container image with this package (components run it)")
    local_parser = commands.add_parser("run-local", help="run the pipeline here with kfp.local")
    local_parser.add_argument("--job-dir", required=True)
    local_parser.add_argument("--pipeline-root", default="", help="default: <job-dir>/pipeline_root")
    local_parser.add_argument("--pretrain-text", action="store_true")
    local_parser.add_argument("--predict-k", type=int, default=10)
    args = parser.parse_args(argv)
    # pylint: disable=g-import-not-at-top
    from pipelines import pipeline

    try:
        if args.command == "compile":
            path = pipeline.compile_pipeline(args.output, args.image or pipeline.DEFAULT_IMAGE)
            print(f"Wrote {os.path.abspath(path)}")
            return 0
        job_dir = os.path.abspath(args.job_dir)
        arguments = arguments_from_flags(extra, job_dir)
        arguments.update(pretrain_text=args.pretrain_text, predict_k=args.predict_k)
        pipeline.run_local(arguments, args.pipeline_root or os.path.join(job_dir, "pipeline_root"))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # a failed step (e.g. the gate) ends the local run
        print(f"pipeline stopped: {e}", file=sys.stderr)
        return 1
    print(f"Pipeline done. Job dir: {job_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
