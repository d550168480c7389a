"""Pipeline step: train the node anomaly detector and evaluate it on labelled server
metrics (SMD, ASD, NAB) and on a cluster replay with injected anomalies."""

from components.train_anomaly.core import train_anomaly

__all__ = ["train_anomaly"]
