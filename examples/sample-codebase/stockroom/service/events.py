"""Domain events: what happened to orders and stock, published to subscribers inside the process."""

import time
from collections import defaultdict
from typing import Callable, Dict, List


class Event:
    name = "event"

    def __init__(self, order_id: int) -> None:
        self.order_id = order_id
        self.at = time.time()

    def payload(self) -> Dict[str, object]:
        return {"event": self.name, "order_id": self.order_id, "at": self.at}


class OrderPlaced(Event):
    name = "order.placed"

    def __init__(self, order_id: int, total_cents: int) -> None:
        super().__init__(order_id)
        self.total_cents = total_cents

    def payload(self) -> Dict[str, object]:
        data = super().payload()
        data["total_cents"] = self.total_cents
        return data


class OrderShipped(Event):
    name = "order.shipped"

    def __init__(self, order_id: int, tracking: str) -> None:
        super().__init__(order_id)
        self.tracking = tracking


Handler = Callable[[Event], None]


class EventBus:
    """Subscribers by event name; "*" receives everything."""

    def __init__(self) -> None:
        self._handlers: Dict[str, List[Handler]] = defaultdict(list)
        self.published = 0

    def subscribe(self, name: str, handler: Handler) -> None:
        self._handlers[name].append(handler)

    def publish(self, event: Event) -> int:
        handlers = self._handlers[event.name] + self._handlers["*"]
        for handler in handlers:
            handler(event)
        self.published += 1
        return len(handlers)


if __name__ == "__main__":
    bus = EventBus()
    bus.subscribe("*", lambda e: print(e.payload()))
    bus.publish(OrderPlaced(1001, 7498))
    bus.publish(OrderShipped(1001, "JD014600003812345678"))
