"""moto's S3 service alone, served by werkzeug on one address.

Why not `python -m moto.server`: that server works out, for every request, which
of moto's ~150 services it is for (a scan of moto's package folders and hundreds
of URL patterns per request) and logs every request. In the crash sweeps, where
moto is the bottleneck, that was about 40% of its CPU. The S3 app below is the
same one moto.server hands S3 requests to, so the wire protocol is unchanged.
"""

import argparse
import logging
import threading

from moto.moto_server.werkzeug_app import create_backend_app
from werkzeug.serving import run_simple


_CONDITIONAL = threading.Lock()


def serialize_conditional_writes(app):
    """moto checks a write's If-Match / If-None-Match and stores the object in two
    steps, and the threaded server runs requests side by side: two conditional writes
    from one version could both pass the check (seen in CI: two winners of one
    compare-and-swap round). S3 itself decides a conditional write atomically, so the
    emulator is made to: conditional writes run one at a time, the whole response
    included. Unconditional requests are not held (multipart parts still run in
    parallel); savepoint's lease and pointer only ever write conditionally."""

    def wrapped(environ, start_response):
        conditional = environ.get("REQUEST_METHOD") in ("PUT", "POST", "DELETE") and (
            "HTTP_IF_MATCH" in environ or "HTTP_IF_NONE_MATCH" in environ
        )
        if not conditional:
            return app(environ, start_response)
        with _CONDITIONAL:
            result = app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
        return [body]

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    # One line per request is a log nobody reads and a cost every request pays.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple(args.host, args.port, serialize_conditional_writes(create_backend_app("s3")), threaded=True)


if __name__ == "__main__":
    main()
