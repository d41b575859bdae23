"""Pipeline runs: the activity, its runners (podman, Kubernetes Job), their parts. Imports domain, artifacts."""
