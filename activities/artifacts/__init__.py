"""Pipeline output trees: read safely, stored by content (disk, S3), collected. Imports domain only."""
