"""The load comparison: every architecture under the same locust load, the report and its diff."""
