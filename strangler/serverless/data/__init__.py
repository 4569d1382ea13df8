"""The data path between the monolith's SQL tables and a serverless context's DynamoDB table.

The same guarantees as the SQL data path (`strangler.datapath`), with DynamoDB on the service's
side: change capture on the monolith (the same triggers and change log), a resumable backfill,
the forward feed applying the log to items, verify by counts and per-range checksums, and after
cutover the reverse feed reading the table's stream back into the monolith's rows. One module
per concern; `link` names both sides; docs/serverless.md ("The data path") is the guide.
"""
