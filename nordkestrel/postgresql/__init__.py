"""Django's PostgreSQL backend with client-side bounds on every wait (see ``base``)."""
