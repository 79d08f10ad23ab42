#!/usr/bin/env python3
"""An outside room client: Python's `websockets` (PyPI) against onair's room WebSocket.

    room_client.py URL --text TEXT [--expect PEER_TEXT ...] [--timeout SECONDS]

Connects to URL (ws://HOST/ws/APP/NAME?token=...; add since=0 so chat sent before this
client joined still arrives), waits for `welcome`, sends one chat message with TEXT,
and waits for its own chat event back and for a chat event with each PEER_TEXT. Every
event it reads is checked against docs/rooms.md (fields, their types and their order);
`gap` events (a flood the client fell behind) are counted, and chat seqs must still
increase across them.
On success it prints one JSON line and exits 0; otherwise it prints the reason to
stderr and exits 1. Everything is bounded by --timeout (10 s).

crates/server/tests/python_client.rs runs it.
"""

import argparse
import asyncio
import json
import sys
from urllib.parse import urlsplit

try:
    from websockets.asyncio.client import connect
except ImportError:  # websockets < 13
    from websockets import connect

ROLES = ("viewer", "moderator", "streamer")


class ShapeError(Exception):
    pass


def expect(condition, what, event):
    if not condition:
        raise ShapeError(f"{what}: {json.dumps(event)}")


def check_order(event, fields):
    """The documented fields are present and appear in the documented order
    (fields a client does not know may be added anywhere)."""
    keys = list(event)
    missing = [f for f in fields if f not in keys]
    expect(not missing, f"missing fields {missing}", event)
    positions = [keys.index(f) for f in fields]
    expect(positions == sorted(positions), f"fields out of order (want {fields})", event)


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_user(user, event):
    expect(isinstance(user, dict), "user is not an object", event)
    check_order(user, ["id", "name", "role"])
    expect(isinstance(user["id"], str) and user["id"], "user.id", event)
    expect(isinstance(user["name"], str), "user.name", event)
    expect(user["role"] in ROLES, "user.role", event)


def check_welcome(event, room):
    check_order(
        event,
        ["type", "ts", "room", "last_seq", "viewers", "likes", "stream",
         "slow_mode_ms", "user", "can_send"],
    )
    expect("seq" not in event, "welcome has a seq", event)
    expect(is_int(event["ts"]) and event["ts"] > 0, "welcome.ts", event)
    expect(event["room"] == room, f"welcome.room is not {room!r}", event)
    for field in ("last_seq", "viewers", "likes", "slow_mode_ms"):
        expect(is_int(event[field]) and event[field] >= 0, f"welcome.{field}", event)
    expect(event["stream"] in ("live", "offline"), "welcome.stream", event)
    check_user(event["user"], event)
    expect(event["can_send"] is True, "welcome.can_send is not true for a signed-in user", event)


def check_gap(event):
    check_order(event, ["type", "ts", "from_seq", "to_seq", "lost"])
    for field in ("from_seq", "to_seq", "lost"):
        expect(is_int(event[field]) and event[field] >= 0, f"gap.{field}", event)
    expect(event["from_seq"] <= event["to_seq"], "gap.from_seq after gap.to_seq", event)
    expect(event["lost"] <= event["to_seq"] - event["from_seq"] + 1, "gap.lost", event)


def check_chat(event):
    check_order(event, ["type", "seq", "ts", "id", "user", "text"])
    expect(is_int(event["seq"]) and event["seq"] >= 1, "chat.seq", event)
    expect(is_int(event["ts"]) and event["ts"] > 0, "chat.ts", event)
    expect(event["id"] == event["seq"], "chat.id is not its seq", event)
    check_user(event["user"], event)
    expect(isinstance(event["text"], str), "chat.text", event)


async def run(url, text, peers):
    room = urlsplit(url).path.removeprefix("/ws/")
    async with connect(url, open_timeout=5, close_timeout=1) as ws:
        first = json.loads(await ws.recv())
        expect(isinstance(first, dict) and first.get("type") == "welcome",
               "the first event is not welcome", first)
        check_welcome(first, room)
        me = first["user"]
        await ws.send(json.dumps({"type": "chat", "text": text}))
        own = None
        seen = {}
        last_seq = 0
        gaps = lost = 0
        while own is None or len(seen) < len(peers):
            event = json.loads(await ws.recv())
            expect(isinstance(event, dict) and isinstance(event.get("type"), str),
                   "an event without a type", event)
            if event["type"] == "error":
                raise ShapeError(f"the server refused a message: {json.dumps(event)}")
            if event["type"] == "gap":
                check_gap(event)
                gaps += 1
                lost += event["lost"]
                continue
            if event["type"] != "chat":
                continue  # viewers, like, ...: not this script's business
            check_chat(event)
            expect(event["seq"] > last_seq, "chat seqs do not increase", event)
            last_seq = event["seq"]
            if event["user"] == me and event["text"] == text:
                own = event
            elif event["text"] in peers:
                seen[event["text"]] = event
        return {
            "ok": True,
            "room": room,
            "user": me,
            "own_seq": own["seq"],
            "peers": {t: {"seq": e["seq"], "user": e["user"]["id"]} for t, e in seen.items()},
            "welcome_last_seq": first["last_seq"],
            "gaps": gaps,
            "lost": lost,
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--text", required=True, help="the chat text this client sends")
    parser.add_argument("--expect", action="append", default=[],
                        help="chat text another client sends, to wait for (repeatable)")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    try:
        result = asyncio.run(asyncio.wait_for(run(args.url, args.text, set(args.expect)),
                                              args.timeout))
    except asyncio.TimeoutError:
        print(f"room_client: timed out after {args.timeout} s", file=sys.stderr)
        return 1
    except ShapeError as error:
        print(f"room_client: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # connection refused, closed, bad JSON, ...
        print(f"room_client: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
