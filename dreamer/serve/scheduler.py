"""Which waiting dreams run next, and which run together.

Clients take turns: the one served longest ago goes first (one not served since everyone now waiting was, or
never, before them all), and a client's own dreams go first come, first served, so one client's fifty dreams do
not starve another's one. The dream chosen heads a batch of the waiting dreams of its kind (one style at one
size, on one canvas: the same image shape, or the stepper's canvas as dreamer.dreaming groups a gallery's
photos), taken in the same turns, as many as the maximum batch (`batch = "auto"` resolved as a build resolves
it). A batch that is not full waits for more of its kind until `max_wait_ms` after its first dream arrived, as
TensorFlow Serving's (max_batch_size, batch_timeout_micros) and Triton's (max_queue_delay_microseconds)
batchers do; newcomers join the next batch.
"""

import itertools
import time


class Turns:
    """The clients' turns: the turn each was last served at (forgotten once everyone waiting was served since)."""

    def __init__(self):
        self.turn, self.last = 0, {}

    def order(self, waiting) -> list:
        """`waiting` (oldest first) in the order they would run one at a time: each client's oldest, client by
        client, the one served longest ago first; then each client's second; and so on."""
        mine = {}
        for dream in waiting:
            mine.setdefault(dream.client, []).append(dream)
        clients = sorted(mine, key=lambda client: self.last.get(client, 0))  # stable: ties by first arrival
        return [dream for row in itertools.zip_longest(*(mine[client] for client in clients))
                for dream in row if dream is not None]

    def served(self, dreams, active) -> None:
        """Note a new turn for the clients of `dreams`; forget the clients served before every one of `active`
        (the dreams waiting or running): they would come first anyway, as new clients do."""
        self.turn += 1
        for dream in dreams:
            self.last[dream.client] = self.turn
        oldest = min((self.last.get(dream.client, 0) for dream in active), default=self.turn + 1)
        self.last = {client: turn for client, turn in self.last.items() if turn >= oldest}


class Scheduler:
    """Chooses the next batch from a DreamQueue's waiting dreams (under its lock, waiting on its condition)."""

    def __init__(self, queue, max_batch, max_wait_ms: int):
        self.queue, self.max_batch, self.max_wait = queue, max_batch, max_wait_ms / 1000
        self.turns = Turns()

    def place(self, dream) -> int | None:
        """The dream's place in the turns (1: next), or None when it is not waiting."""
        return next((n for n, d in enumerate(self.turns.order(self.queue.waiting), 1) if d is dream), None)

    def next_batch(self) -> list | None:
        """Wait for a batch to start; its dreams, taken off the waiting list and running (None: the queue stops)."""
        queue = self.queue
        while True:
            with queue.lock:
                while not queue.waiting and not queue.stopping:
                    queue.lock.wait()
                if queue.stopping:
                    return None
                head = self.turns.order(queue.waiting)[0]
            stepper = self._stepper(head)  # outside the lock: the first dream of a network loads it
            with queue.lock:
                if queue.stopping:
                    return None
                order = self.turns.order(queue.waiting)
                if not order or order[0] is not head:  # cancelled meanwhile, or another client's turn came
                    continue
                fellows, room = self._fellows(head, order, stepper)
                wait = head.arrived + self.max_wait - time.monotonic()
                if len(fellows) < room and wait > 0:
                    queue.lock.wait(wait)
                    continue
                batch = fellows[:room]
                for dream in batch:
                    queue.waiting.remove(dream)
                    dream.status, dream.batch = "running", len(batch)
                self.turns.served(batch, [*queue.waiting, *batch])
                return batch

    def _stepper(self, dream):
        """The stepper `dream` would batch with, or None when it dreams alone (a class style, a maximum batch of
        one, or a style whose network does not load: it then fails alone, with its one line, when it runs)."""
        if self.max_batch == 1 or dream.style.target_class:
            return None
        from dreamer.dreaming import prepare
        from dreamer.engine.backends import activate

        try:
            activate()
            return prepare(dream.style, dream.size).stepper
        except Exception:  # the dream itself reports it when it runs
            return None

    def _fellows(self, head, order: list, stepper) -> tuple[list, int]:
        """(`head` and the dreams of `order` that can dream with it, in turn order; how many may)."""
        if stepper is None:
            return [head], 1
        from dreamer.dreaming import canvas, schedule_of
        from dreamer.engine.batching import resolve_batch

        schedule = schedule_of(head.style)
        shape = canvas(shape_of(head), stepper, schedule)
        fellows = [dream for dream in order if dream is head or (
            dream.style == head.style and dream.size == head.size
            and canvas(shape_of(dream), stepper, schedule) == shape)]
        return fellows, resolve_batch(self.max_batch, stepper, *shape, schedule.tile_size)


def shape_of(dream) -> tuple[int, int]:
    """(height, width) the dream's image has: the photo's, already at its size, or static's."""
    from dreamer.media.images import noise_shape

    return dream.photo.shape[:2] if not isinstance(dream.photo, str) else noise_shape(dream.photo, dream.size)
