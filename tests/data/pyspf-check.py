# pyspf-check.py PORT: evaluate SPF cases with Debian's pyspf against the DNS server on 127.0.0.1:PORT.
# Reads one JSON object a line on stdin ({"id", "ip", "sender", "helo", "receiver"}), writes one a line
# ({"id", "result", "explanation"}); the explanation is pyspf's text for a fail (its default when no exp=).
import json
import sys

import dns.resolver
import spf

resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = ['127.0.0.1']
resolver.port = int(sys.argv[1])
resolver.lifetime = 5
resolver.cache = None
dns.resolver.default_resolver = resolver

for line in sys.stdin:
    c = json.loads(line)
    q = spf.query(i=c['ip'], s=c['sender'], h=c['helo'], receiver=c['receiver'], strict=True)
    result, _, explanation = q.check()
    print(json.dumps({'id': c['id'], 'result': result, 'explanation': explanation}), flush=True)
