"""Data layer: one Parquet format, loaders, converters and simulators."""
