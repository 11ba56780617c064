"""Round trip with Microsoft's official Python SDK (azure-eventhub) against Hubcast's emulator.

Usage: sdk_roundtrip.py send CONNECTION_STRING PARTITION COUNT
       sdk_roundtrip.py receive CONNECTION_STRING PARTITION COUNT
`send` sends COUNT events to PARTITION in one batch; `receive` reads COUNT events from the start of
PARTITION and prints their bodies, one per line. Exits non-zero on failure or timeout.
"""
import sys
import threading

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient


def send(connection_string, partition, count):
    producer = EventHubProducerClient.from_connection_string(connection_string)
    with producer:
        batch = producer.create_batch(partition_id=partition)
        for index in range(count):
            batch.add(EventData(f"sdk-event-{index}"))
        producer.send_batch(batch)
    print(f"sent {count}")


def receive(connection_string, partition, count):
    consumer = EventHubConsumerClient.from_connection_string(connection_string, consumer_group="$Default")
    bodies = []
    done = threading.Event()

    def on_event(context, event):
        if event is None:
            return
        bodies.append(event.body_as_str())
        if len(bodies) >= count:
            done.set()

    worker = threading.Thread(
        target=lambda: consumer.receive(on_event=on_event, partition_id=partition, starting_position="-1",
                                        max_wait_time=1),
        daemon=True)
    worker.start()
    finished = done.wait(timeout=60)
    consumer.close()
    for body in bodies[:count]:
        print(body)
    if not finished:
        print(f"timed out after {len(bodies)} of {count} events", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    mode, connection_string, partition, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    {"send": send, "receive": receive}[mode](connection_string, partition, count)
