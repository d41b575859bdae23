"""The Kubernetes API client the runner and the secret provider share."""

from __future__ import annotations

import os

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException


def kube_api_client() -> client.ApiClient:
    """In a Pod, its service account; elsewhere, KUBECONFIG. A fresh Configuration so nothing global is mutated."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException:
        # Read KUBECONFIG now: the client's default was fixed when it was imported.
        config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration, persist_config=False
        )
    return json_api_client(configuration)


def json_api_client(configuration: client.Configuration) -> client.ApiClient:
    """Says every body is JSON. Clients from kubernetes 37 send none, and the apiserver only guesses JSON from its
    own defaults; 35 and older chose one per call."""
    api = client.ApiClient(configuration)
    api.set_default_header("Content-Type", "application/json")
    return api
