"""The durable message bus: a Postgres table of messages, leased per-consumer deliveries,
and LISTEN/NOTIFY as a wake-up only.

Publishing is one statement (insert + notify), inside the caller's transaction when one is
given, and is a durable commit (publisher.py). A producer publishing a stream of single
commits wakes consumers once per window rather than once per message (windows.py).

A consumer's claim takes a batch under a lease: first deliveries that already wait (FOR
UPDATE SKIP LOCKED), then every message on its topics that committed since its last look (by
snapshot visibility, so late commits are never skipped), leased as their deliveries are
inserted (bus_claim in migrations/schema.sql). A worker (worker.py) runs its handler
outside any transaction, renewing the lease while the handler runs (up to
bus_handler_max_s), then in ONE transaction marks the deliveries it still holds done and
writes their output messages (deliveries.py).
A crash or a hang lets the lease run out; the next reclaim (on each worker's slow poll) puts
the work back and it is redone; outputs are written only by the ack, so they exist exactly
once.
A handler's outputs are checked against their topics when it returns, and an ack whose own
writes fail is the message's failure, retried like a handler's error: one bad message never
sinks the batch it would be acked with, nor stops the bus. Stopping lets an ack in flight
finish, acks finished work, and hands back claimed work that was not finished.

Claims and acks commit without waiting for the WAL flush (synchronous_commit off). Losing
one in a server crash loses it whole, claim or ack together with its outputs, and the lease
brings the work back, so exactly-once outputs still hold; what it buys is that consumers
stop competing with producers for flushes. WAL is sequential, so any later durable commit
(a publish, or an ack a handler marks `durable`) also makes everything it read durable: a
handler with an effect outside the database makes its own durable write first (the executor
records the order row in a durable ack before the broker acts on it).
"""
from brain.bus.errors import Reject
from brain.bus.facade import Bus
from brain.bus.queries import Q, keep_session
from brain.bus.types import Delivery, Handler, HandlerResult, InTx, Outgoing

__all__ = ["Bus", "Delivery", "Handler", "HandlerResult", "InTx", "Outgoing", "Q", "Reject", "keep_session"]
