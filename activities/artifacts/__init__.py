"""Pipeline output trees: read safely, stored by content (local and S3), collected. Imports domain and nothing above."""
