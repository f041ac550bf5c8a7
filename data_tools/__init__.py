"""Readers for the real datasets' layouts and the tf.data pipelines that feed the zoo."""
from data_tools.records import BadInputPolicy, DatasetError, Record

__all__ = ["BadInputPolicy", "DatasetError", "Record"]
