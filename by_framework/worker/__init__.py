"""The execution side: GatewayWorker, AgentContext, WorkerRunner, run_worker."""
