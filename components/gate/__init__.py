"""Pipeline steps: register behind the gate, and the deployment decision."""

from components.gate.core import gate_summary, register_bundle

__all__ = ["gate_summary", "register_bundle"]
