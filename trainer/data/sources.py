"""Picks the reader for `DataConfig.source` and returns its `RawTables`."""

from __future__ import annotations

from trainer.config import DataConfig, DataSource
from trainer.data import schema


def read_source(config: DataConfig) -> schema.RawTables:
    """The raw tables of the configured source (readers are imported on demand)."""
    # pylint: disable=g-import-not-at-top
    if config.source == DataSource.SYNTHETIC:
        from trainer.data.readers import synthetic

        return synthetic.generate(config.synthetic)
    if config.source == DataSource.MOVIELENS_100K:
        from trainer.data.readers import movielens

        return movielens.read_movielens_100k(config.data_path)
    if config.source == DataSource.FOURSQUARE_CSV:
        from trainer.data.readers import foursquare

        return foursquare.read_foursquare_csv(config.data_path, timezone=config.timezone)
    if config.source == DataSource.FOURSQUARE_TSMC:
        from trainer.data.readers import foursquare

        return foursquare.read_foursquare_tsmc(config.data_path)
    if config.source == DataSource.EVENTS:
        from trainer.data.readers import events

        return events.read_events_files(
            config.data_path,
            config.items_path,
            config.users_path,
            column_map=dict(config.column_map),
            delimiter=config.delimiter,
        )
    raise ValueError(f"Unknown data source. Received: source={config.source!r}")
