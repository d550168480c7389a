"""Pipeline steps: one subpackage per step, each a plain function testable without kfp
(``core.py``) plus the thin ``@dsl.component`` wrapper that a pipeline uses."""

__all__: list[str] = []
