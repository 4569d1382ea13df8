"""A steady load on the bookshelf through its public entry, with a ledger of what it was told.

Writers (the librarian, by HTTP basic auth) add books and tags, tag and untag books, sign up
members and lend them books; a reader asks for books, their pages and the tags. Every answer is
kept with its time. Each writer only ever touches what it made itself (its own ISBNs, slugs,
members), so the last acknowledged write of each thing is what must read back: `verify` asks
for every one of them at the end.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

SEEDED_BOOKS = 60  # bookshelf.seed's default: ISBNs 978-0-00-000000-0 ...


def seeded_isbn(number: int) -> str:
    return f"978-0-00-{number:06d}-0"


@dataclass(frozen=True)
class Answer:
    started: float
    ended: float
    method: str
    path: str
    status: int


@dataclass
class Ledger:
    """What the load was told it wrote: the expected state of everything it made."""

    books: dict[str, str] = field(default_factory=dict)  # isbn -> title
    tags: set[str] = field(default_factory=set)
    tagged: dict[tuple[str, str], bool] = field(default_factory=dict)  # (isbn, slug) -> on
    members: set[str] = field(default_factory=set)
    loans: dict[int, str] = field(default_factory=dict)  # loan id -> member id

    @property
    def acknowledged(self) -> int:
        made = (self.books, self.tags, self.tagged, self.members, self.loans)
        return sum(len(things) for things in made)


@dataclass
class BookshelfLoad:
    """`writers` writing and `readers` reading through `url` until `stop()`."""

    url: str
    password: str
    writers: int = 2
    readers: int = 1
    answers: list[Answer] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    _running: threading.Event = field(default_factory=threading.Event)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> BookshelfLoad:
        self._running.set()
        for number in range(self.writers):
            self._spawn(self._write, number)
        for number in range(self.readers):
            self._spawn(self._read, number)
        return self

    def _spawn(self, target: Any, number: int) -> None:
        thread = threading.Thread(target=target, args=(number,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def pause(self) -> None:
        """Stop sending (requests in flight finish)."""
        self._running.clear()
        time.sleep(0.5)

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stopping.set()
        self._running.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def wait_for(self, writes: int, timeout: float = 120) -> None:
        target = self.ledger.acknowledged + writes
        deadline = time.monotonic() + timeout
        while self.ledger.acknowledged < target:
            assert time.monotonic() < deadline, f"the load stalled at {self.ledger.acknowledged}"
            time.sleep(0.05)

    def failures(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.status >= 500 or answer.status == 0]

    def _call(self, client: httpx.Client, method: str, path: str, **options: Any) -> httpx.Response:
        started = time.time()
        try:
            response = client.request(method, path, **options)
            status = response.status_code
        except httpx.HTTPError:
            response, status = httpx.Response(0), 0
        with self._lock:
            self.answers.append(Answer(started, time.time(), method, path, status))
        return response

    def _write(self, number: int) -> None:
        chance = random.Random(number)
        counter = itertools.count()
        mine: list[str] = []  # this writer's books
        slugs: list[str] = []
        members: list[str] = []
        auth = ("librarian", self.password)
        with httpx.Client(base_url=self.url, auth=auth, timeout=60) as client:
            while not self._stopping.is_set():
                self._running.wait()
                step = next(counter)
                kind = chance.choice(["book", "book", "tag", "tag_on", "tag_off", "member", "lend"])
                if kind == "book":
                    isbn, title = (
                        f"979-{number}-{step:06d}",
                        f"Book {number}/{step} \u00e9\U0001f4da",
                    )
                    body = {"isbn": isbn, "title": title}
                    if self._call(client, "POST", "/api/books", json=body).status_code == 201:
                        self.ledger.books[isbn] = title
                        mine.append(isbn)
                elif kind == "tag":
                    slug = f"w{number}-{step}"
                    parent = chance.choice([None, "sf", *slugs[-3:]])
                    body = {"slug": slug, "label": f"Tag {slug} \u00f1", "parent": parent}
                    if self._call(client, "POST", "/api/tags", json=body).status_code == 201:
                        self.ledger.tags.add(slug)
                        slugs.append(slug)
                elif kind == "tag_on" and mine and slugs:
                    pair = (chance.choice(mine), chance.choice(slugs))
                    path = f"/api/books/{pair[0]}/tags/{pair[1]}"
                    if self._call(client, "PUT", path).status_code == 204:
                        self.ledger.tagged[pair] = True
                elif kind == "tag_off" and self.ledger.tagged:
                    on = [
                        pair
                        for pair, is_on in self.ledger.tagged.items()
                        if is_on and pair[1] in slugs
                    ]
                    if on:
                        pair = chance.choice(on)
                        path = f"/api/books/{pair[0]}/tags/{pair[1]}"
                        if self._call(client, "DELETE", path).status_code == 204:
                            self.ledger.tagged[pair] = False
                elif kind == "member":
                    body = {"name": f"Reader {number}-{step} \u0410"}
                    answer = self._call(client, "POST", "/api/members", json=body)
                    if answer.status_code == 201:
                        members.append(answer.json()["id"])
                        self.ledger.members.add(members[-1])
                elif kind == "lend" and members:
                    member = chance.choice(members)
                    body = {
                        "member_id": member,
                        "isbn": seeded_isbn(chance.randrange(SEEDED_BOOKS)),
                    }
                    answer = self._call(client, "POST", "/api/loans", json=body)
                    if answer.status_code == 201:
                        self.ledger.loans[int(answer.json()["id"])] = member
                time.sleep(chance.uniform(0.02, 0.06))

    def _read(self, number: int) -> None:
        chance = random.Random(1000 + number)
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self._stopping.is_set():
                self._running.wait()
                isbn = seeded_isbn(chance.randrange(SEEDED_BOOKS))
                paths = [f"/api/books/{isbn}", f"/books/{isbn}", "/api/tags", "/api/books?limit=5"]
                path = chance.choice(paths)
                self._call(client, "GET", path)
                time.sleep(chance.uniform(0.02, 0.06))


def verify(load: BookshelfLoad) -> list[str]:
    """Read back every acknowledged write through the public entry; what is missing."""
    ledger, missing = load.ledger, []
    with httpx.Client(base_url=load.url, timeout=30) as client:
        for isbn, title in ledger.books.items():
            answer = client.get(f"/api/books/{isbn}")
            if answer.status_code != 200 or answer.json()["title"] != title:
                missing.append(f"book {isbn}: {answer.status_code}")
                continue
            tags = set(answer.json()["tags"])
            for (tagged, slug), is_on in ledger.tagged.items():
                if tagged == isbn and (slug in tags) != is_on:
                    missing.append(f"tag {slug} of {isbn}: {'missing' if is_on else 'still on'}")
        listed = {tag["slug"] for tag in client.get("/api/tags").json()["items"]}
        missing += [f"tag {slug}" for slug in ledger.tags - listed]
        for member in ledger.members:
            if client.get(f"/api/members/{member}").status_code != 200:
                missing.append(f"member {member}")
        for member in set(ledger.loans.values()):
            loans = {
                loan["id"] for loan in client.get(f"/api/members/{member}/loans").json()["items"]
            }
            wanted = {loan for loan, owner in ledger.loans.items() if owner == member}
            missing += [f"loan {loan}" for loan in wanted - loans]
    return missing
