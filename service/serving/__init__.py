"""How gunicorn runs the service: its worker classes and the hooks of gunicorn.conf.py."""
