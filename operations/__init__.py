"""Production operations: emergency fallback, gated rollout, model A/B tests, health
checks and post-deployment validation. Each acts on a cluster through the ``kubernetes``
client and on a simulator replay, where its effect is measured."""
