"""The library every service imports: settings, envelope and errors, auth, passwords,
the document store, the inter-service client, the outbox and the app factory.

It holds no business rules; those live in each service's ``domain.py``.
"""
