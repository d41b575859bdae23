"""The platform's own state in Temporal (catalog, redelivery, config), apply-back. Imports domain, artifacts, stores."""
