"""The other frameworks' agents the cross-framework test calls from ADK: a LangGraph graph and a
plain async function."""

from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from by_framework import AgentContext, agent


def research_graph() -> StateGraph:
    """Two nodes: look the topic up, then write the finding."""

    def look_up(state: MessagesState) -> dict:
        topic = str(state["messages"][-1].content)
        return {"messages": [AIMessage(f"(notes on {topic})")]}

    def write(state: MessagesState) -> dict:
        topic = str(state["messages"][-2].content)
        return {"messages": [AIMessage(f"{topic} is a log of entries")]}

    graph = StateGraph(MessagesState)
    graph.add_node("look_up", look_up)
    graph.add_node("write", write)
    graph.add_edge(START, "look_up")
    graph.add_edge("look_up", "write")
    graph.add_edge("write", END)
    return graph


@agent("formatter")
async def formatter(content: str, context: AgentContext) -> str:
    await context.emit_chunk("formatting", kind="reasoning")
    return f"**{content}**"
