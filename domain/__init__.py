"""Pure domain logic of the platform: documents, validation, scheduling, layout and status. No I/O here."""
