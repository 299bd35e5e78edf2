"""moto's S3 service alone, served by werkzeug on one address.

Why not `python -m moto.server`: that server works out, for every request, which
of moto's ~150 services it is for (a scan of moto's package folders and hundreds
of URL patterns per request) and logs every request. In the crash sweeps, where
moto is the bottleneck, that was about 40% of its CPU. The S3 app below is the
same one moto.server hands S3 requests to, so the wire protocol is unchanged.
"""

import argparse
import logging

from moto.moto_server.werkzeug_app import create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    # One line per request is a log nobody reads and a cost every request pays.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    run_simple(args.host, args.port, create_backend_app("s3"), threaded=True)


if __name__ == "__main__":
    main()
