"""The sending side: GatewayClient and ByaiGatewayClient."""
