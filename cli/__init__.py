"""`ktx`: a kubectl-like command line for the platform."""
