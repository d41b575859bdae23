"""The Kubernetes API's shapes, pure: the objects ktx serves as a Kubernetes API server, their discovery and OpenAPI
documents, selectors, patches, tables and access rules. Nothing here talks to Temporal or HTTP."""
