import pytest

from trainer.config import (
    Config, DataConfig, DataSource, ExampleConfig, FeatureConfig, ModelConfig, SplitKind, SyntheticConfig,
)


def test_json_round_trip_keeps_every_field():
    config = Config(
        job_dir="gs://bucket/job",
        data=DataConfig(
            source=DataSource.EVENTS,
            data_path="a.csv",
            column_map={"user_id": "uid"},
            extra_event_types=("bookmark",),
            timezone="America/New_York",
            synthetic=SyntheticConfig(num_users=5, num_items=30, num_events=100),
        ),
        examples=ExampleConfig(split=SplitKind.TEMPORAL, validation_start=10, test_start=20, max_history=7),
        features=FeatureConfig(coarse_cell_degrees=1.0, fine_cell_degrees=0.1),
    )
    again = Config.from_json(config.to_json())
    assert again == config
    assert isinstance(again.data.source, DataSource)
    assert again.data.extra_event_types == ("bookmark",)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: ExampleConfig(max_history=0), "max_history=0"),
        (lambda: ExampleConfig(validation_start=5, test_start=9), "split=leave-one-out"),
        (lambda: ExampleConfig(split=SplitKind.TEMPORAL, validation_start=9, test_start=5), "validation_start=9"),
        (lambda: DataConfig(source=DataSource.EVENTS), "data_path"),
        (lambda: DataConfig(timezone="Mars/Olympus"), "Mars/Olympus"),
        (lambda: FeatureConfig(coarse_cell_degrees=0.01, fine_cell_degrees=0.5), "fine_cell_degrees=0.5"),
        (lambda: SyntheticConfig(num_items=3), "num_items=3"),
        (lambda: ModelConfig(retrieval_weight=0.0), "retrieval_weight=0.0"),
        (lambda: ModelConfig(repeat_weight=-1.0), "repeat_weight=-1.0"),
        (lambda: ModelConfig(behaviour_weight=float("nan")), "behaviour_weight=nan"),
    ],
)
def test_invalid_values_name_the_field_and_value(build, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        build()


def test_unknown_keys_are_rejected():
    with pytest.raises(ValueError, match="nonsense"):
        Config.from_dict({"nonsense": 1})
