"""The inference gateway: Hugging Face models behind one stable HTTP API.

The package imports nothing at first: the batch command and gunicorn's configuration load
only what they use, and gevent can patch the standard library before the service is imported.
"""


def create_app(settings=None, catalog=None, keyring=None, **seams):
    """Build the Flask app (service/app.py): the only place an app is built. `seams` are its
    keyword-only `clock` and `resolver`."""
    from service.app import create_app as build

    return build(settings, catalog, keyring, **seams)
