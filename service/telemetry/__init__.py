"""What the service tells about itself: metrics, log records and their redaction."""
