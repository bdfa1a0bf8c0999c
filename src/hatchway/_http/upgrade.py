"""What an HTTP/1.1 ``Upgrade: h2c`` request must carry to be accepted.

A decision only: the protocol (``HttpProtocol._try_h2c``) hands the connection over. A WebSocket's scope is
made by ``hatchway._ws.scope.websocket_scope``, shared with HTTP/2's extended CONNECT.
"""

from __future__ import annotations

import base64

from hatchway._http.events import RequestHead
from hatchway._http.validate import content_length


def h2c_settings(head: RequestHead) -> bytes | None:
    """``Upgrade: h2c`` (RFC 7540 3.2, what ``curl --http2`` sends on a plain URL): the request's
    HTTP2-Settings, padded for decoding, when the upgrade is taken; None when it is answered over HTTP/1.1."""
    settings = None
    for name, value in head.headers:
        if name == b"http2-settings":
            settings = value
        elif name == b"transfer-encoding":
            return None  # (refused by the codecs already: validate.upgrade_body_problem)
    # A request with a body is answered over HTTP/1.1, ignoring the offer (RFC 7540 3.2 lets the server
    # choose): its body then arrives as HTTP/1.1 framing says.
    if settings is None or content_length(head.headers):
        return None
    settings = settings + b"=" * (-len(settings) % 4)  # RFC 7540 3.2.1: sent without padding
    try:
        base64.urlsafe_b64decode(settings)
    except ValueError:
        return None
    return settings
