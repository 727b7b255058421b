"""The orders service: carts, idempotent checkout, the order state machine (port 3005)."""
