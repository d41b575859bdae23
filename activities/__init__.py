"""Activities: each does one side effect against one system (containers, a state store, Temporal itself).

Grouped by concern, each subpackage saying what it may import of the others (tests/unit/test_import_layers.py holds
them to it): artifacts/ (pipeline output trees), pipelines/ (runs), stores/ (state stores, secret providers),
actions/ (off-platform), platform/ (the platform's own state). Every one may also import the two modules shared at
this root, metrics.py (Prometheus metrics of the activities) and kube_client.py (the Kubernetes API client), and the
domain; none imports workflows, the service or anything above them.
"""
