"""The forum's simulated users for `strangler compare`: its tasks and how a user signs in.

`strangler compare` runs it headless, alone or as a master with worker processes:

    STRANGLER_LOAD_PLAN=plan.json STRANGLER_LOAD_WINDOWS=windows.jsonl \\
        locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8000 [--processes 2]

The user classes (one per kind of `scenario.toml`, its tasks looked up by name here), the load
shape (the limit search, the reference phase, the hot spot) and the figures each window records
are the toolkit's (`strangler.compare.locust_support`, which documents the protocol); this file
declares only what the forum's users do.

Without a plan, `locust -f loadtests/locustfile.py --host http://127.0.0.1:8000` runs the mix
with the scenario's think times under locust's own web UI, against the system `strangler up`
serves from this folder: the users' tokens are signed with that home's secret, and the seed's
size is `STRANGLER_LOAD_SCALE` (default 1.0, as `strangler up` seeds).

Every request is named by its route template, so ids never split an endpoint's row. A vote for
a poll the user already voted in gets the contract's 409, which counts as a success: it is the
right answer, and the generator cannot know every seeded ballot. Anything else that is not the
expected status is a failure. This module must never judge the figures.
"""

from __future__ import annotations

import uuid
from typing import Any

from strangler.compare.locust_support import Visitor, install

WORDS = "python garden tomato travel music cycling sourdough chord gravel recipe".split()


def sign_in(user: Visitor) -> None:
    """Act as one seeded user, with a real bearer token signed by the workspace's key."""
    user.user_id = user.chance.randint(1, user.plan.data["users"])
    user.headers = {"Authorization": f"Bearer {user.plan.data['tokens'][str(user.user_id)]}"}


# Reads
def list_threads(user: Visitor) -> None:
    user.expect("GET", "/api/threads?limit=20", "/api/threads", (200,))


def get_thread(user: Visitor) -> None:
    path = f"/api/threads/{user.some(user.plan.data['threads'])}"
    user.expect("GET", path, "/api/threads/{id}", (200,))


def list_posts(user: Visitor) -> None:
    path = f"/api/threads/{user.some(user.plan.data['threads'])}/posts?limit=20"
    user.expect("GET", path, "/api/threads/{id}/posts", (200,))


def get_user(user: Visitor) -> None:
    path = f"/api/users/{user.some(user.plan.data['users'])}"
    user.expect("GET", path, "/api/users/{id}", (200,))


def list_users(user: Visitor) -> None:
    user.expect("GET", "/api/users?limit=20", "/api/users", (200,))


def me(user: Visitor) -> None:
    user.expect("GET", "/api/me", "/api/me", (200,), headers=user.headers)


def get_poll(user: Visitor) -> dict[str, Any] | None:
    answer = user.expect(
        "GET", f"/api/polls/{user.some(user.plan.data['polls'])}", "/api/polls/{id}", (200,)
    )
    return answer.json() if answer.status_code == 200 else None


def results(user: Visitor) -> None:
    path = f"/api/polls/{user.some(user.plan.data['polls'])}/results"
    user.expect("GET", path, "/api/polls/{id}/results", (200,))


def results_page(user: Visitor) -> None:
    path = f"/results/{user.some(user.plan.data['polls'])}.html"
    user.expect("GET", path, "/results/{id}.html", (200,))


def search(user: Visitor) -> None:
    path = f"/api/search?q={user.chance.choice(WORDS)}&limit=10"
    user.expect("GET", path, "/api/search", (200,))


# Writes
def vote(user: Visitor) -> None:
    poll = get_poll(user)
    if poll is None:
        return
    option = user.chance.choice(poll["options"])["id"]
    user.expect(
        "POST", f"/api/polls/{poll['id']}/votes", "/api/polls/{id}/votes", (201, 409),
        json={"option_id": option}, headers=user.headers,
    )  # fmt: skip


def start_thread(user: Visitor) -> None:
    body = {"title": f"Load thread {user.chance.getrandbits(32):08x}", "body": "measured"}
    user.expect("POST", "/api/threads", "/api/threads", (201,), json=body, headers=user.headers)


def add_post(user: Visitor) -> None:
    path = f"/api/threads/{user.some(user.plan.data['threads'])}/posts"
    body = {"body": f"a reply about {user.chance.choice(WORDS)}"}
    user.expect("POST", path, "/api/threads/{id}/posts", (201,), json=body, headers=user.headers)


def change_profile(user: Visitor) -> None:
    body = {"display_name": f"Load {user.chance.getrandbits(24):06x}"}
    user.expect(
        "PATCH", f"/api/users/{user.user_id}", "/api/users/{id}", (200,),
        json=body, headers=user.headers,
    )  # fmt: skip


def sign_up(user: Visitor) -> None:
    name = f"load_{uuid.uuid4().hex[:20]}"  # unique in every run, whatever the seed
    body = {"username": name, "email": f"{name}@example.org",
            "password": "load-password", "display_name": f"Load {name[-4:]}"}  # fmt: skip
    created = user.expect("POST", "/api/users", "/api/users", (201,), json=body)
    if created.status_code != 201:
        return
    session = user.expect(
        "POST", "/api/sessions", "/api/sessions", (200,),
        json={"username": name, "password": "load-password"},
    )  # fmt: skip
    if session.status_code == 200:
        user.headers = {"Authorization": f"Bearer {session.json()['token']}"}
        user.user_id = int(session.json()["user_id"])


def hot_search(user: Visitor) -> None:
    """The isolation experiment's hot spot: searches, back to back."""
    path = f"/api/search?q={user.chance.choice(WORDS)}&limit=20"
    user.expect("GET", path, "/api/search", (200,))


TASKS = [list_threads, get_thread, list_posts, get_user, list_users, me, get_poll, vote, results,
         results_page, search, start_thread, add_post, change_profile, sign_up]  # fmt: skip
install(globals(), tasks=TASKS, hot=hot_search, sign_in=sign_in)
