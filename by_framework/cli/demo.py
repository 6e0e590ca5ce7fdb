"""``demo``: a worker and a client in one process, on an embedded Redis if none answers."""

import asyncio

from by_framework.cli.options import command_parser, redis_for, redis_options


def demo(argv: list[str]) -> None:
    parser = command_parser("demo", "Run the demo: a worker and a client in one process.")
    redis_options(parser)
    parser.add_argument("--topic", default="Redis Streams")
    args = parser.parse_args(argv)
    from by_framework.demo import run_demo

    with redis_for(args) as url:
        asyncio.run(run_demo(url, args.topic, args.key_prefix))
