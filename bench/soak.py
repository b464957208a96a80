#!/usr/bin/env python3
# bench/soak.py: run by bench/soak (read it for the settings). MESSAGES distinct messages over SESSIONS
# parallel sessions into our smtpd -L → glenda's mbox; then every entry of the mbox is checked against
# what was acknowledged: none lost, none duplicated, none changed.
import hashlib, os, random, resource, sys, threading, time
from measure import Ours, MboxCounter, cpu_seconds, die, hwm_bytes, send_one, SmtpError

N = int(os.environ.get("MESSAGES", "100000"))
SESSIONS = int(os.environ.get("SESSIONS", "50"))
TIMEOUT = float(os.environ.get("TIMEOUT", "600"))
CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?-_=+*/()<>[]'\"#%&@~"
TABLE = bytes(CHARS[i % len(CHARS)] for i in range(256))	# random bytes to printable ASCII, fast


def body(i):
	"""The body of message i, LF line ends: a few lines of varied length, some starting with '.' (the
	client dot-stuffs them), some empty, never a trailing empty line, never a line starting "From "."""
	rng = random.Random(i)
	lines = []
	for _ in range(rng.randint(1, 40)):
		n = rng.choice((0, rng.randint(1, 80), rng.randint(1, 80), rng.randint(80, 990)))
		s = rng.randbytes(n).translate(TABLE)
		if rng.random() < 0.05:
			s = b"." + s
		if s.startswith(b"From "):
			s = b"x" + s
		lines.append(s)
	lines.append(f"end of {i}".encode())
	return b"\n".join(lines) + b"\n"


def message(i):
	b = body(i)
	head = (f"From: alice@9fans.net\nTo: glenda@example.com\nSubject: soak {i}\n"
		f"Message-ID: <{i}.soak@example.org>\nX-Soak-Id: {i}\nX-Soak-Sum: {hashlib.sha256(b).hexdigest()}\n\n")
	lines = (head.encode() + b).split(b"\n")[:-1]
	return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)


def check(mbox):
	"""Parses the mbox: {id: [True if the body's checksum matches, per copy]}, entries without an id."""
	seen, anon = {}, 0

	def finish(head, lines):
		nonlocal anon
		if head is None:
			return
		if lines and lines[-1] == b"\n":	# the blank line that ends an mbox entry
			lines = lines[:-1]
		b = b"".join(lines)
		hid = head.get(b"x-soak-id")
		if hid is None:
			anon += 1
			return
		seen.setdefault(int(hid), []).append(hashlib.sha256(b).hexdigest().encode() == head.get(b"x-soak-sum"))

	head, lines, inhead, prev_blank = None, [], False, True
	with open(mbox, "rb") as f:
		for line in f:
			if prev_blank and line.startswith(b"From "):
				finish(head, lines)
				head, lines, inhead = {}, [], True
			elif inhead:
				if line == b"\n":
					inhead = False
				elif b":" in line and not line[:1].isspace():
					k, v = line.split(b":", 1)
					head[k.strip().lower()] = v.strip()
			elif head is not None:
				lines.append(line)
			prev_blank = line == b"\n"
	finish(head, lines)
	return seen, anon


def main():
	srv = Ours("soak")
	try:
		nxt = iter(range(1, N + 1))
		lock = threading.Lock()
		acked, refused = set(), []

		def worker():
			while True:
				with lock:
					i = next(nxt, None)
				if i is None:
					return
				try:
					send_one(srv.port, "alice@9fans.net", srv.rcpt, message(i))
					with lock:
						acked.add(i)
				except (SmtpError, OSError) as e:
					with lock:
						refused.append((i, str(e)))

		c0 = cpu_seconds(srv.pid)
		t0 = time.monotonic()
		ts = [threading.Thread(target=worker) for _ in range(SESSIONS)]
		for t in ts:
			t.start()
		for t in ts:
			t.join()
		secs = time.monotonic() - t0
		MboxCounter(srv.mbox).wait(len(acked), TIMEOUT, "soak") if acked else None
		cpu = cpu_seconds(srv.pid) - c0
		hwm = hwm_bytes(srv.pid)
		client = resource.getrusage(resource.RUSAGE_SELF)
		seen, anon = check(srv.mbox)
	finally:
		srv.close()
	lost = sorted(i for i in acked if i not in seen)
	dup = sorted(i for i, v in seen.items() if len(v) > 1)
	bad = sorted(i for i, v in seen.items() if not all(v))
	extra = sorted(i for i in seen if i not in acked)
	total = sum(len(v) for v in seen.values())
	print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {N} messages over {SESSIONS} sessions in "
		f"{secs:.1f} s: {N / secs:.1f} msgs/s; smtpd -L CPU {cpu * 1000 / N:.2f} ms/msg, listener VmHWM "
		f"{hwm / 2**20:.1f} MB; the client's CPU {(client.ru_utime + client.ru_stime) * 1000 / N:.2f} ms/msg")
	print(f"acknowledged {len(acked)}, refused {len(refused)}; in the mbox {total} entries: "
		f"lost {len(lost)}, duplicated {len(dup)}, corrupted {len(bad)}, unacknowledged but delivered "
		f"{len(extra)}, without an id {anon}")
	for what, ids in (("lost", lost), ("duplicated", dup), ("corrupted", bad), ("unacknowledged", extra)):
		if ids:
			print(f"{what}: {ids[:20]}{' ...' if len(ids) > 20 else ''}", file=sys.stderr)
	for i, e in refused[:5]:
		print(f"refused {i}: {e}", file=sys.stderr)
	if refused or lost or dup or bad or extra or anon or total != N:
		sys.exit(1)


if __name__ == "__main__":
	main()
