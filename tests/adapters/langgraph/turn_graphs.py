"""A graph whose runs can be caught half-way (for double-texting): ``step 1`` writes at once,
``step 2`` sleeps the input's ``sleep`` seconds before it writes. Each write names its task's
``tag``, so the thread's log shows which runs' writes survived."""

import asyncio
import operator
from typing import Annotated, Any, TypedDict

from by_framework_langgraph import langgraph_worker
from langgraph.graph import END, START, StateGraph


class Steps(TypedDict):
    tag: str
    sleep: float
    log: Annotated[list[str], operator.add]


def _step_1(state: Steps) -> dict[str, Any]:
    return {"log": [f"{state['tag']}: step 1"]}


async def _step_2(state: Steps) -> dict[str, Any]:
    await asyncio.sleep(state["sleep"])
    return {"log": [f"{state['tag']}: step 2"]}


def steps_graph() -> StateGraph[Steps]:
    graph = StateGraph(Steps)
    graph.add_node("step 1", _step_1)
    graph.add_node("step 2", _step_2)
    graph.add_edge(START, "step 1")
    graph.add_edge("step 1", "step 2")
    graph.add_edge("step 2", END)
    return graph


StepsWorker = langgraph_worker(steps_graph(), "lg-steps")
