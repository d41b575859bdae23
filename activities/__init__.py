"""Activities: each does one side effect against one system (containers, a state store, Temporal itself)."""
