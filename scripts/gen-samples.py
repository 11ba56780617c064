#!/usr/bin/env python3
"""Writes samples/updates.jsonl and samples/vip.csv: sample profile updates (docs/input.md) for the demo
and for `hubcast run --dry-run`. Deterministic (fixed seed); a few lines are malformed on purpose."""
import hashlib, json, random, os

random.seed(7)
here = os.path.join(os.path.dirname(__file__), "..", "samples")
first = ["John", "Anna", "Maria", "Peter", "Sofia", "Jean", "Lukas", "Emma", "Noah", "Mia", "Liam", "Clara"]
last = ["Doe", "Martin", "Meyer", "Dupont", "Schmidt", "Rossi", "Garcia", "Smith", "Novak", "Berg"]
countries = ["FR", "DE", "ES", "IT", "US"]
tiers = ["bronze", "silver", "gold", "platinum"]
profiles = 1500
lines = []
second = 0

def stamp():
    global second
    second += 7
    return "2026-11-%02dT%02d:%02d:%02dZ" % (20 + second // 86400, second // 3600 % 24, second // 60 % 60, second % 60)

def ecid(i):
    return str(14575006536349286404619648085736425115 + i * 7919)

def email(i):
    return hashlib.sha256(("user%d@example.org" % i).encode()).hexdigest()[:34]

for i in range(profiles):
    name = random.choice(first)
    lines.append({"profileId": "p-%04d" % i, "timestamp": stamp(),
                  "identities": {"ecid": [ecid(i)], "email_lc_sha256": [email(i)]},
                  "attributes": {"person": {"name": {"firstName": name, "lastName": random.choice(last)},
                                            "birthDate": "19%02d-%02d-%02d" % (random.randint(50, 99), random.randint(1, 12), random.randint(1, 28))},
                                 "personalEmail": {"address": "%s.%d@example.org" % (name.lower(), i)},
                                 "homeAddress": {"country": random.choice(countries)},
                                 "loyalty": {"tier": random.choice(tiers), "points": random.randint(0, 9000)},
                                 "consent": {"email": random.random() < 0.6},
                                 "commerce": {"lastPurchase": "2026-%02d-%02d" % (random.randint(1, 11), random.randint(1, 28))}}})
for n in range(3000):
    i = random.randrange(profiles)
    kind = random.random()
    update = {"profileId": "p-%04d" % i, "timestamp": stamp()}
    if kind < 0.35:
        update["attributes"] = {"web": {"visits": random.randint(1, 400), "lastPage": "/products/%d" % random.randint(1, 300)}}
    elif kind < 0.55:
        update["attributes"] = {"loyalty": {"tier": random.choice(tiers)}}
    elif kind < 0.7:
        update["attributes"] = {"commerce": {"lastPurchase": "2026-11-%02d" % random.randint(1, 24)}, "homeAddress": {"country": random.choice(countries)}}
    elif kind < 0.8:
        update["attributes"] = {"consent": {"email": random.random() < 0.5}}
    elif kind < 0.88:
        update = {"identities": {"ecid": [ecid(i)], "email_lc_sha256": [email(i + 100000)]}, "timestamp": stamp()}
    elif kind < 0.95:
        update["attributes"] = {"person": {"name": {"firstName": random.choice(first)}}}
    else:
        update["removeAttributes"] = ["personalEmail.address"]
    lines.append(update)
text = [json.dumps(line, separators=(",", ":")) for line in lines]
text.insert(1700, '{"profileId": "p-0001", "timestamp": "not a time"}')
text.insert(2500, '{"attributes": {"person": {"name": {"firstName": "Nobody"}}}}')
text.insert(3300, '{"profileId": "p-0002", "identities": {"ecid": ["%s"]}}' % ecid(3))
text.insert(4000, 'this line is not JSON')
with open(os.path.join(here, "updates.jsonl"), "w") as f:
    f.write("\n".join(text) + "\n")
with open(os.path.join(here, "vip.csv"), "w") as f:
    f.write("namespace,id\n")
    for i in random.sample(range(profiles), 60):
        f.write("ecid,%s\n" % ecid(i))
    f.write("ecid\n")
