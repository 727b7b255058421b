"""The products service: catalogue, search, seller product management, history, analytics and stock."""
