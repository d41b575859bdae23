"""State stores (Git, bucket) and secret providers: writers and activities. Imports domain, artifacts, metrics, kube_client."""
