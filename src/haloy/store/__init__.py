"""SQLite deployment history: `DeploymentStore`, `Deployment`, `Status`."""

from haloy.store.history import INTERRUPTED, Deployment, DeploymentStore
from haloy.store.states import Status

__all__ = ["INTERRUPTED", "Deployment", "DeploymentStore", "Status"]
