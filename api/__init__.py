"""The HTTP facade (FastAPI) over the platform's Temporal workflows."""
