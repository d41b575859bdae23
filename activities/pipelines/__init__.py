"""Pipeline runs: the activity, its runners (podman, Kubernetes Job) and their parts. Imports domain, artifacts, metrics."""
