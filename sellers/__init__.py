"""The sellers service: seller accounts, business profiles, lockout, admin and service endpoints (port 3002)."""
