"""A ``reporter`` agent: each run counts the support tickets in ``tickets.csv`` and returns the
counts as that run's report. A schedule sends it a task on every tick."""

import csv
from collections import Counter
from pathlib import Path
from typing import Any

from by_framework import AgentContext, GatewayWorker

TICKETS = Path(__file__).with_name("tickets.csv")


class ReporterWorker(GatewayWorker):
    def get_agent_types(self) -> list[str]:
        return ["reporter"]

    async def process_command(self, command: Any, context: AgentContext) -> dict[str, Any]:
        with TICKETS.open(newline="") as file:
            rows = list(csv.DictReader(file))
        status = Counter(row["status"] for row in rows)
        urgent = sum(row["status"] == "open" and row["priority"] == "urgent" for row in rows)
        report = f"open: {status['open']}, closed: {status['closed']}, urgent and open: {urgent}"
        return {"status": "completed", "content": f"{command.content['report']} report: {report}"}
