"""The pipeline's steps as KFP lightweight components. Each runs this package's
own code (`trainer.task`, `serving.batch_predict`) in the component's container
(`set_image`), so the code inside each function imports only what it needs.

No `from __future__ import annotations` here: KFP reads the annotations as types."""


from kfp import dsl

IMAGE = {"value": "us-docker.pkg.dev/PROJECT/recommender/st-recommender:latest"}


def set_image(image: str) -> None:
    IMAGE["value"] = image
    global run_stage, batch_predict  # pylint: disable=global-statement
    run_stage = dsl.component(_run_stage, base_image=image)
    batch_predict = dsl.component(_batch_predict, base_image=image)


def _run_stage(stage: str, flags_json: str, pretrain_text: bool) -> str:
    """Runs one trainer stage with the pipeline's flags; returns the job dir. Fails the step on error."""
    import json
    import os

    from trainer import task

    flags = json.loads(flags_json)
    job_dir = next((f.split("=", 1)[1] for f in flags if f.startswith("--job-dir=")), "runs/default")
    if stage == "pretrain-text" and not pretrain_text:
        print("pretrain_text is off: nothing to do")
        return job_dir
    if pretrain_text and stage != "prepare" and not any(f.startswith("--bert-path=") for f in flags):
        flags.append("--bert-path=" + job_dir.rstrip("/") + "/text_pretrained")
    if stage == "prepare":
        flags = [f for f in flags if not f.startswith("--bert-path=")]
    code = task.main(["--stage=" + stage, *flags], {})
    if code == 3:
        with open(os.path.join(job_dir, "gate.json"), encoding="utf-8") as f:
            raise RuntimeError("The gate stopped the run: " + json.load(f)["reason"])
    if code != 0:
        raise RuntimeError(f"trainer stage {stage!r} failed with exit code {code}")
    return job_dir


def _batch_predict(flags_json: str, k: int) -> str:
    """Nightly recommendations for every user of the prepared data, from the exported model."""
    import json

    from serving import batch_predict as bp

    flags = dict(f.split("=", 1) for f in json.loads(flags_json) if "=" in f)
    job_dir = flags.get("--job-dir", "runs/default").rstrip("/")
    export_dir = flags.get("--export-dir") or job_dir + "/export"
    model_base = export_dir.rstrip("/") + "/" + flags.get("--model-name", "recommender")
    summary = bp.run(model_base, job_dir + "/predictions", users_from=job_dir, k=int(k))
    print(json.dumps(summary))
    return json.dumps(summary)


run_stage = dsl.component(_run_stage, base_image=IMAGE["value"])
batch_predict = dsl.component(_batch_predict, base_image=IMAGE["value"])
