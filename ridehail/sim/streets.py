"""Moving along the city's street grid: shortest paths between intersections and travel."""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from dispatch.model import Position, haversine_m
from ridehail.sim.city import City

Node = tuple[int, int]


def shortest_path(city: City, start: Node, goal: Node) -> list[Node]:
    """Breadth-first over the grid inside the outline (every block is the same length)."""
    if start == goal:
        return [start]
    came: dict[Node, Node | None] = {start: None}
    queue: deque[Node] = deque([start])
    while queue:
        node = queue.popleft()
        r, c = node
        for nxt in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if nxt in city.node_set and nxt not in came:
                came[nxt] = node
                if nxt == goal:
                    path = [goal]
                    while (prev := came[path[-1]]) is not None:
                        path.append(prev)
                    return path[::-1]
                queue.append(nxt)
    return [start]  # unreachable goal (outline with islands): stay put


@dataclass
class Vehicle:
    """A position on the grid that moves along a route at a street speed."""

    city: City
    node: Node
    speed_mps: float
    position: Position = field(init=False)
    route: list[Node] = field(default_factory=list)
    _leg_done_m: float = 0.0

    def __post_init__(self) -> None:
        self.position = self.city.node(*self.node)

    def go_to(self, target: Position) -> None:
        self.route = shortest_path(self.city, self.node, self.city.nearest_node(target))[1:]
        self._leg_done_m = 0.0

    def wander(self, rng: random.Random, blocks: int = 6) -> None:
        """Cruise a few blocks in a random direction (what idle drivers do)."""
        r, c = self.node
        target = (r + rng.randint(-blocks, blocks), c + rng.randint(-blocks, blocks))
        if target in self.city.node_set:
            self.go_to(self.city.node(*target))

    @property
    def arrived(self) -> bool:
        return not self.route

    def advance(self, seconds: float) -> None:
        """Drive `seconds` along the route, interpolating within the current block."""
        budget = self.speed_mps * seconds
        while self.route and budget > 0:
            start, end = self.city.node(*self.node), self.city.node(*self.route[0])
            leg = max(haversine_m(start, end), 0.1)
            step = min(budget, leg - self._leg_done_m)
            self._leg_done_m += step
            budget -= step
            if self._leg_done_m >= leg - 1e-6:
                self.node = self.route.pop(0)
                self._leg_done_m = 0.0
                self.position = end
            else:
                f = self._leg_done_m / leg
                self.position = Position(
                    start.lat + (end.lat - start.lat) * f, start.lng + (end.lng - start.lng) * f
                )
