"""State stores (Git, bucket: writers, batching, activities), secret providers. Imports domain, artifacts."""
