#!/usr/bin/env python3
# bench/postfix.py: run by bench/postfix (read it for the settings). Throughput with smtp-source, CPU per
# message, peak memory and one-message latency of our smtpd -L (→ send → mbox, and -m a discarding
# script), a private Postfix (→ local(8) → mbox) and smtp-sink, interleaved, RUNS repetitions.
import os, random, shutil, statistics, subprocess, sys, time
from measure import (LocalDns, Ours, Postfix, Sink, MboxCounter, MemSampler, cpu_seconds, die, hwm_bytes,
	percentile, reset_hwm, send_one, SmtpError, REPO)

RUNS = int(os.environ.get("RUNS", "3"))
N = int(os.environ.get("MESSAGES", "1000"))
SESSIONS = [int(x) for x in os.environ.get("SESSIONS", "1 20 100").split()]
SIZES = [int(x) for x in os.environ.get("SIZES", "1024 65536").split()]
LATENCY = int(os.environ.get("LATENCY", "200"))
TIMEOUT = float(os.environ.get("TIMEOUT", "600"))
TARGETS = os.environ.get("TARGETS", "ours ours-m postfix sink").split()
OLD = os.environ.get("OLD", "")	# another build's bin/upas, the target ours-old (e.g. the code before a change)
SIGNED = os.environ.get("SIGNED", "") == "1"	# send a DKIM-signed message (smtp-source -F) instead of -l bytes
SENDER = "alice@9fans.net"
HELO = "mail.9fans.net"
# smtpd checks SPF, DKIM and DMARC with the policies on; dnsmasq answers for 9fans.net: SPF passes,
# DMARC p=reject is met by the aligned SPF pass (and the DKIM signature when SIGNED)
POLICY = "spf reject\ndmarc reject\n"
SELECTOR = "bench"

LABEL = {
	"ours": "our `smtpd -L` → send → mbox",
	"ours-m": "our `smtpd -L -m` a script that discards",
	"ours-old": "the same `smtpd -L` built from $OLD",
	"postfix": "Postfix 3.7 → local(8) → mbox",
	"sink": "Postfix `smtp-sink` (discards)",
}


def log(*a):
	print(*a, file=sys.stderr, flush=True)


def start(name, dns):
	conf = f"dnsserver {dns.server}\n" + POLICY
	if name == "ours":
		return Ours(name, conf=conf)
	if name == "ours-m":
		return Ours(name, mailer=("discard", "#!/bin/sh\ncat >/dev/null\n"), conf=conf)
	if name == "ours-old":
		if not OLD:
			die("the target ours-old needs OLD=another build's bin/upas")
		return Ours(name, conf=f"dnsserver {dns.server}\n", bindir=OLD)
	if name == "postfix":
		return Postfix()
	if name == "sink":
		return Sink()
	die(f"unknown target {name}")


def blast(srv, counter, sessions, size, n):
	"""n messages with smtp-source over `sessions` parallel sessions (one message per session); seconds
	until every message is in the mailbox (or, without one, until smtp-source is done)."""
	body = ["-F", SIGNED_FILES[size]] if SIGNED else ["-l", str(size)]
	argv = ["smtp-source", "-s", str(sessions), "-m", str(n), *body, "-M", HELO,
		"-f", SENDER, "-t", srv.rcpt, f"127.0.0.1:{srv.port}"]
	t0 = time.monotonic()
	p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
	end = t0 + TIMEOUT
	while True:
		rc = p.poll()
		if rc is not None and rc != 0:
			die(f"{srv.name}: smtp-source exited {rc}: {p.stderr.read().decode(errors='replace').strip()}")
		if counter is None:
			if rc == 0:
				break
		elif counter.complete(n):
			break
		if time.monotonic() > end:
			p.kill()
			got = f"{counter.count} of {n} in the mbox" if counter else "smtp-source not done"
			die(f"{srv.name}: {got} after {TIMEOUT} s ({sessions} sessions, {size} bytes)")
		time.sleep(0.002)
	t1 = time.monotonic()
	if p.wait(TIMEOUT) != 0:
		die(f"{srv.name}: smtp-source exited {p.returncode}: {p.stderr.read().decode(errors='replace').strip()}")
	return t1 - t0


def measure(srv, counter, sessions, size):
	"""One cell on a freshly started server, warmed up by one message per session at the cell's
	concurrency (Postfix's processes exist, our thread pool has grown), so that what one cell leaves
	behind (a grown heap, idle processes) is not charged to the next."""
	srv.start()
	try:
		blast(srv, counter, sessions, size, max(sessions, 10))
		if counter is not None:
			counter.truncate()
		if srv.proc is not None:
			reset_hwm(srv.pid)
		c0 = cpu_seconds(srv.pid)
		with MemSampler(srv.pid) as mem:
			secs = blast(srv, counter, sessions, size, N)
			time.sleep(0.3)	# let the server finish what follows delivery (Postfix removes the queue file)
		c1 = cpu_seconds(srv.pid)
		if counter is not None:
			if counter.poll() != N:
				die(f"{srv.name}: {counter.count} messages in the mbox, expected {N}")
			counter.truncate()
		peak = hwm_bytes(srv.pid) if srv.proc is not None else mem.rss
	finally:
		srv.stop()
	return {"rate": N / secs, "cpu": (c1 - c0) * 1000 / N, "rss": peak / 2**20, "pss": mem.pss / 2**20}


def latency(srv, counter):
	body = b"From: alice@9fans.net\r\nTo: glenda\r\nSubject: latency\r\n\r\n" + (b"x" * 78 + b"\r\n") * 12
	if SIGNED:
		with open(SIGNED_FILES[1024], "rb") as f:
			body = f.read().replace(b"\n", b"\r\n")
	xs = []
	srv.start()
	try:
		for i in range(LATENCY + 10):	# the first 10 warm up, uncounted
			try:
				t = send_one(srv.port, SENDER, srv.rcpt, body, HELO) * 1000
			except (SmtpError, OSError) as e:
				die(f"{srv.name}: latency message refused: {e}")
			if i >= 10:
				xs.append(t)
		if counter is not None:
			counter.wait(LATENCY + 10, TIMEOUT, srv.name)
			counter.truncate()
	finally:
		srv.stop()
	return {"p50": percentile(xs, 50), "p99": percentile(xs, 99)}


def spread(xs, fmt):
	m = statistics.median(xs)
	if len(xs) == 1:
		return fmt.format(m)
	return f"{fmt.format(m)} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"


SIGNED_FILES = {}	# size -> a DKIM-signed message (LF line ends) of about that many body bytes


def signed_messages(tmp):
	"""Signs one message per size with dkimpy (Debian's python, rsa-sha256, relaxed/relaxed) and returns the
	key's DNS record; smtp-source sends the file unchanged, so every copy verifies."""
	key = f"{tmp}/bench.key"
	subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
		check=True, capture_output=True)
	pub = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"], check=True, capture_output=True).stdout
	import base64
	for size in SIZES:
		body = b"".join(b"%077d\n" % i for i in range(max(1, size // 78)))
		msg = (b"From: alice@9fans.net\nTo: glenda@example.com\nSubject: bench\nDate: Tue, 1 Dec 2026 00:00:00 +0000\n"
			b"Message-ID: <bench@9fans.net>\n\n" + body)
		path = f"{tmp}/signed.{size}"
		sign = ("import dkim, sys\nm = open(sys.argv[1], 'rb').read().replace(b'\\n', b'\\r\\n')\n"
			"s = dkim.sign(m, sys.argv[2].encode(), b'9fans.net', open(sys.argv[3], 'rb').read(), "
			"canonicalize=(b'relaxed', b'relaxed'), include_headers=[b'from', b'to', b'subject', b'date', b'message-id'])\n"
			"sys.stdout.buffer.write((s + m).replace(b'\\r\\n', b'\\n'))\n")
		with open(path + ".in", "wb") as f:
			f.write(msg)
		out = subprocess.run(["/usr/bin/python3", "-c", sign, path + ".in", SELECTOR, key], check=True, capture_output=True).stdout
		with open(path, "wb") as f:
			f.write(out)
		SIGNED_FILES[size] = path
	return "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()


def main():
	t_start = time.monotonic()
	load0 = os.getloadavg()
	commit = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h %s", "--", ".", ":(exclude)bench"],
		capture_output=True, text=True).stdout.strip()	# the code measured: the last commit outside bench/
	servers = {}
	import tempfile
	tmp = tempfile.mkdtemp(prefix="upas-bench-msg.")
	records = [("9fans.net", "v=spf1 ip4:127.0.0.0/8 -all"), ("_dmarc.9fans.net", "v=DMARC1; p=reject")]
	if SIGNED:
		rec = signed_messages(tmp)
		records.append((f"{SELECTOR}._domainkey.9fans.net", ",".join(rec[i:i + 250] for i in range(0, len(rec), 250))))
	dns = LocalDns("9fans.net", records)
	try:
		for name in TARGETS:
			servers[name] = start(name, dns)
		counters = {k: (MboxCounter(s.mbox) if s.mbox else None) for k, s in servers.items()}
		for s in servers.values():	# each measurement starts its server afresh
			s.stop()
		res = {}	# (target, sessions, size) -> [dict per run]
		lat = {}	# target -> [dict per run]
		for run in range(RUNS):
			order = TARGETS[run % len(TARGETS):] + TARGETS[:run % len(TARGETS)]
			for sessions in SESSIONS:
				for size in SIZES:
					for k in order:
						r = measure(servers[k], counters[k], sessions, size)
						res.setdefault((k, sessions, size), []).append(r)
						log(f"run {run + 1}/{RUNS} {k:8} {sessions:3} sessions {size:6} bytes: "
							f"{r['rate']:8.1f} msg/s {r['cpu']:7.2f} CPU ms/msg {r['rss']:7.1f} MB RSS {r['pss']:7.1f} MB PSS")
			for k in order:
				r = latency(servers[k], counters[k])
				lat.setdefault(k, []).append(r)
				log(f"run {run + 1}/{RUNS} {k:8} latency p50 {r['p50']:.2f} ms p99 {r['p99']:.2f} ms")
	finally:
		for s in servers.values():
			s.close()
		dns.close()
		shutil.rmtree(tmp, ignore_errors=True)
	elapsed = time.monotonic() - t_start
	load1 = os.getloadavg()

	out = []
	w = out.append
	w(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, code at commit {commit}; {os.cpu_count()} cores, "
		f"load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end; {RUNS} interleaved runs of "
		f"{N} messages per cell (smtp-source, one message per session{', a DKIM-signed message (-F)' if SIGNED else ''}); {elapsed:.0f} s in all. "
		"Our smtpd checks SPF, DKIM and DMARC (smtpd.conf spf reject, dmarc reject; dnsmasq on loopback answers). "
		"Every cell on a freshly started server after a warm-up of one message per session (at least 10). "
		"Medians, (min–max) over the runs.")
	w("")
	w("| target | sessions | size | msgs/s | CPU ms/msg | peak RSS MB | peak PSS MB |")
	w("|---|--:|--:|--:|--:|--:|--:|")
	for sessions in SESSIONS:
		for size in SIZES:
			for k in TARGETS:
				rs = res[(k, sessions, size)]
				w(f"| {LABEL[k]} | {sessions} | {size // 1024} KiB | {spread([r['rate'] for r in rs], '{:.0f}')} | "
					f"{spread([r['cpu'] for r in rs], '{:.2f}')} | {spread([r['rss'] for r in rs], '{:.1f}')} | "
					f"{spread([r['pss'] for r in rs], '{:.1f}')} |")
	if "ours" in TARGETS:
		w("")
		w("| ratio of msgs/s (median of per-run ratios, min–max) | sessions | size | ours / Postfix | ours / smtp-sink | ours / ours-old | CPU ms/msg ours − ours-old |")
		w("|---|--:|--:|--:|--:|--:|--:|")
		for sessions in SESSIONS:
			for size in SIZES:
				o = [r["rate"] for r in res[("ours", sessions, size)]]
				cols = []
				for peer in ("postfix", "sink", "ours-old"):
					if peer in TARGETS:
						p = [r["rate"] for r in res[(peer, sessions, size)]]
						cols.append(spread([a / b for a, b in zip(o, p)], "{:.2f}×"))
					else:
						cols.append("–")
				if "ours-old" in TARGETS:
					oc = [r["cpu"] for r in res[("ours", sessions, size)]]
					pc = [r["cpu"] for r in res[("ours-old", sessions, size)]]
					cols.append(spread([a - b for a, b in zip(oc, pc)], "{:+.2f}"))
				else:
					cols.append("–")
				w(f"| our `smtpd -L` → mbox | {sessions} | {size // 1024} KiB | {' | '.join(cols)} |")
	w("")
	w(f"| latency, one {LATENCY}-message sequential run (connect → 250 after DATA) | p50 ms | p99 ms |")
	w("|---|--:|--:|")
	for k in TARGETS:
		w(f"| {LABEL[k]} | {spread([r['p50'] for r in lat[k]], '{:.2f}')} | {spread([r['p99'] for r in lat[k]], '{:.2f}')} |")
	text = "\n".join(out) + "\n"
	if os.environ.get("OUT"):
		with open(os.environ["OUT"], "w") as f:
			f.write(text)
	sys.stdout.write(text)


if __name__ == "__main__":
	main()
