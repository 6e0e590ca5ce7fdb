"""A LangGraph agent: a one-node graph that sums up the message it gets."""

from by_framework_langgraph import langgraph_worker
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph


def summarize(state: MessagesState) -> dict:
    words = str(state["messages"][-1].content).split()
    longest = max(words, key=len) if words else "-"
    return {"messages": [AIMessage(f"{len(words)} words, the longest is '{longest}'")]}


graph = StateGraph(MessagesState)
graph.add_node("summarize", summarize)
graph.add_edge(START, "summarize")
graph.add_edge("summarize", END)

SummarizerWorker = langgraph_worker(graph, "summarizer")
