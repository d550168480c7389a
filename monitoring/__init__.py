"""Operations: drift detection, capacity forecasts, alerts and remediation, dashboards and
the business report, each in its own subpackage (``monitoring.<part>``).

Uses the core (:mod:`hydatis`) only; other processes are reached over HTTP or through
their commands.
"""

__all__: list[str] = []
