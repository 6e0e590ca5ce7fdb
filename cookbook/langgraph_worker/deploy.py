"""my_graph.graph, deployed as agent type "trip-planner": the lines this recipe is about."""

from by_framework_langgraph import langgraph_worker, serve_graph
from my_graph import graph

# For the CLI: python -m by_framework --worker-class deploy.TripPlanner --worker-id trip-1
TripPlanner = langgraph_worker(graph, "trip-planner")

if __name__ == "__main__":
    # REDIS_URL, BYAI_WORKER_ID and BYAI_LANGGRAPH_CHECKPOINTER_URL come from the environment.
    serve_graph(graph, "trip-planner")
