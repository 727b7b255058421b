"""The API gateway (port 8000): the one public entry, routing ``/api/<service>/…`` to the services."""
