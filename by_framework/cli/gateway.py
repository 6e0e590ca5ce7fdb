"""``gateway``: serve the HTTP gateway (extra ``[gateway]``)."""

import asyncio

from by_framework.cli.options import checked_settings, command_parser, redis_options
from by_framework.errors import ConfigurationError


def gateway(argv: list[str]) -> None:
    parser = command_parser(
        "gateway",
        "Serve the HTTP gateway (extra [gateway]). Auth is set by env "
        "BYAI_GATEWAY_API_KEYS / BYAI_GATEWAY_JWT_SECRET / BYAI_GATEWAY_JWT_PUBLIC_KEY "
        "(see docs/gateway.md), not by flags: flags show in the process list.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--insecure", action="store_true", default=None, help="serve without auth on any host"
    )
    parser.add_argument("--cors-origins", help="comma-separated origins CORS allows")
    parser.add_argument("--max-body-bytes", type=int)
    parser.add_argument("--heartbeat-seconds", type=float, help="SSE keep-alive while idle")
    parser.add_argument("--rate", type=float, help="requests per second per caller")
    parser.add_argument("--burst", type=int, help="rate limit's bucket size")
    parser.add_argument(
        "--dashboard",
        action="store_true",
        default=None,
        help="mount the dashboard at /dashboard (docs/dashboard.md)",
    )
    redis_options(parser)
    args = parser.parse_args(argv)
    try:
        from by_framework.gateway.serve import serve
    except ImportError as exc:
        raise ConfigurationError(
            f"the gateway needs the [gateway] extra ({exc}): pip install 'by-framework[gateway]'"
        ) from None
    from by_framework.gateway.settings import GatewaySettings

    settings = GatewaySettings.resolve(
        insecure=args.insecure,
        cors_origins=args.cors_origins,
        max_body_bytes=args.max_body_bytes,
        heartbeat_seconds=args.heartbeat_seconds,
        rate=args.rate,
        burst=args.burst,
        dashboard=args.dashboard,
    )
    settings.check_host(args.host)
    serve(asyncio.run(checked_settings(args)), settings, args.host, args.port)
