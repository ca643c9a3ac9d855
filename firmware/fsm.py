"""Tiny table-driven state machine engine: runs fsm_table.TRANSITIONS."""


class IllegalTransition(Exception):
    pass


class Fsm:
    def __init__(self, transitions, initial, on_change=None):
        # (trigger, source) -> destination, built once
        self._next = {}
        for trigger, source, dest in transitions:
            self._next[(trigger, source)] = dest
        self.state = initial
        self._on_change = on_change

    def can(self, trigger):
        return (trigger, self.state) in self._next

    def fire(self, trigger):
        """Apply trigger; raise IllegalTransition if the table has no such edge."""
        dest = self._next.get((trigger, self.state))
        if dest is None:
            raise IllegalTransition(trigger + " from " + self.state)
        source = self.state
        self.state = dest
        if self._on_change is not None:
            self._on_change(source, trigger, dest)
        return dest
