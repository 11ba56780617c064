"""Benchmark helper: sends COUNT events of SIZE bytes with the official Python SDK in full batches and prints events/s and CPU per event.
Usage: sdk_bench.py CONNECTION_STRING COUNT SIZE"""
import sys, time, resource
from azure.eventhub import EventData, EventHubProducerClient
cs, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = "x" * size
producer = EventHubProducerClient.from_connection_string(cs)
sent = 0
start = time.monotonic(); cpu0 = time.process_time()
with producer:
    while sent < count:
        batch = producer.create_batch()
        while sent < count:
            try:
                batch.add(EventData(body))
            except ValueError:
                break
            sent += 1
        producer.send_batch(batch)
elapsed = time.monotonic() - start; cpu = time.process_time() - cpu0
print(f"python sdk: {sent} events in {elapsed:.2f} s = {sent/elapsed:.0f} events/s, CPU {cpu*1e6/sent:.1f} us/event")
