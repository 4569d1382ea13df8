"""The "after": one FastAPI service per bounded context, each owning its own database.

Every service has the same shape (`settings`, `models`, `service`, `api`, `events` and an app
factory `create_app` in its package) so that two services differ only in their domain; the
smallest such service is what `strangler new service` renders from the toolkit's template
(`strangler/scaffold/template/`). A service never imports the monolith or another service: it
shares only `plumbing`.
"""
