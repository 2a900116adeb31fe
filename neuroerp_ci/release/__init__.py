"""Releasing a version once its gates passed: promotion between stages, the production rollout
(approval, hooks, canary, rollback) and notifications."""
