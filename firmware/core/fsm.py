"""Tiny table-driven state machine engine: runs fsm_table.TRANSITIONS."""


class IllegalTransition(Exception):
    pass


class Fsm:
    def __init__(self, transitions, initial, on_change=None):
        # source -> {trigger: destination}, built once; the table itself can then be dropped
        self._next = {}
        for trigger, source, dest in transitions:
            if source not in self._next:
                self._next[source] = {}
            self._next[source][trigger] = dest
        self.state = initial
        self._on_change = on_change

    def can(self, trigger):
        edges = self._next.get(self.state)
        return edges is not None and trigger in edges

    def fire(self, trigger):
        """Apply trigger; raise IllegalTransition if the table has no such edge."""
        edges = self._next.get(self.state)
        dest = edges.get(trigger) if edges else None
        if dest is None:
            raise IllegalTransition(trigger + " from " + self.state)
        source = self.state
        self.state = dest
        if self._on_change is not None:
            self._on_change(source, trigger, dest)
        return dest
