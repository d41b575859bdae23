"""The platform's own state in Temporal (catalog, redelivery, config) and apply-back. Imports domain, artifacts, stores."""
