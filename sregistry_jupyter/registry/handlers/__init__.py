"""Protocol adapters: each module turns one surface's requests into service calls."""
