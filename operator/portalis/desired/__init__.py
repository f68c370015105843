"""Pure desired-state builders and policies: no I/O, no kopf, no Kubernetes or Redis clients."""
