"""Checks every test of an answer shares."""


def assert_error_shape(response, status, error_type):
    """Check the one error shape every failure shares (a Flask test response); return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == status
    assert body["error_type"] == error_type
    assert isinstance(body["message"], str) and body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body
