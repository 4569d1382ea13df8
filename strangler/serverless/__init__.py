"""Contexts served as functions, locally: the AWS emulator, provisioning, the stream poller."""
