"""The trace-driven cluster simulator: importers, the discrete-time engine, the baseline
schedulers and the evaluation metrics."""

__all__: list[str] = []
