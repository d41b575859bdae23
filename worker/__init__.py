"""The worker process: runs every workflow and activity of the platform."""
