"""HYDATIS core: the cluster dataset schema, configuration and errors.

The core imports none of the project's other packages (simulator, serving, ...).
"""

from hydatis.config import DATA_DIR_ENV, data_dir, require_data_dir
from hydatis.dataset import TABLES, ClusterDataset, load_dataset, save_dataset, validate
from hydatis.errors import ConfigError, DataSourceError, HydatisError, SchemaError

__all__ = [
    "DATA_DIR_ENV",
    "TABLES",
    "ClusterDataset",
    "ConfigError",
    "DataSourceError",
    "HydatisError",
    "SchemaError",
    "data_dir",
    "load_dataset",
    "require_data_dir",
    "save_dataset",
    "validate",
]
__version__ = "0.1.0"
