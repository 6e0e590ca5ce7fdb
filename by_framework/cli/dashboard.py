"""``dashboard``: serve the live web dashboard (extra ``[gateway]``)."""

import asyncio

from by_framework.cli.options import checked_settings, command_parser, redis_options
from by_framework.errors import ConfigurationError


def dashboard(argv: list[str]) -> None:
    parser = command_parser(
        "dashboard",
        "Serve the live web dashboard (extra [gateway]): the fleet, sessions, dead letters and "
        "tasks in a browser (docs/dashboard.md). Viewers sign in with the gateway's tokens, set "
        "by env BYAI_GATEWAY_API_KEYS / BYAI_GATEWAY_JWT_SECRET / BYAI_GATEWAY_JWT_PUBLIC_KEY; "
        "only admins act.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--insecure", action="store_true", default=None, help="serve without auth on any host"
    )
    redis_options(parser)
    args = parser.parse_args(argv)
    try:
        from by_framework.dashboard.serve import serve
    except ImportError as exc:
        raise ConfigurationError(
            f"the dashboard needs the [gateway] extra ({exc}): pip install 'by-framework[gateway]'"
        ) from None
    from by_framework.gateway.settings import GatewaySettings

    settings = GatewaySettings.resolve(insecure=args.insecure)
    settings.check_host(args.host)
    serve(asyncio.run(checked_settings(args)), settings, args.host, args.port)
