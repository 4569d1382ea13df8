"""The native data plane and the exports: the route table rendered for nginx, Envoy, Gateway API
and AWS API Gateway.

The Python proxy (`strangler_proxy`) stays the embedded data plane and the home of every
migration feature; this package renders the same table for gateways teams run in production.
It must never import the example (monolith, services) nor change a route table.
"""
