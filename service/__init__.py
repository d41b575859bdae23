"""The application service: the platform's operations over a Temporal client. Imports workflows, activities, domain."""
