#!/usr/bin/env python3
# bench/bigmsg.py: run by bench/bigmsg (read it for the settings). Peak memory of one big message: through
# smtpd -L into glenda's mbox, and given to send -r directly.
import os, resource, subprocess, time
from measure import Ours, MboxCounter, MemSampler, die, hwm_bytes, reset_hwm, send_one, SmtpError

MB = int(os.environ.get("SIZE_MB", "100"))
TIMEOUT = float(os.environ.get("TIMEOUT", "600"))


def main():
	line = b"x" * 78
	n = MB * 2**20 // (len(line) + 1)
	srv = Ours("bigmsg", conf=f"maxmsgsize {2 * MB * 2**20 + 2**20}\n")
	try:
		data = b"From: alice@9fans.net\r\nTo: glenda\r\nSubject: big\r\n\r\n" + (line + b"\r\n") * n
		reset_hwm(srv.pid)
		with MemSampler(srv.pid, every=0.05) as mem:
			t0 = time.monotonic()
			try:
				send_one(srv.port, "alice@9fans.net", srv.rcpt, data, timeout=TIMEOUT)
			except (SmtpError, OSError) as e:
				die(f"smtpd refused the {MB} MiB message: {e}")
			MboxCounter(srv.mbox).wait(1, TIMEOUT, "bigmsg")
			secs = time.monotonic() - t0
		print(f"smtpd -L → mbox, one {MB} MiB message: {secs:.1f} s; listener VmHWM {hwm_bytes(srv.pid) / 2**20:.1f} MB; "
			f"sampled every 50 ms: largest process {mem.one / 2**20:.1f} MB RSS, all of smtpd's processes "
			f"{mem.rss / 2**20:.1f} MB RSS")
		os.truncate(srv.mbox, 0)
		path = f"{srv.dir}/big"
		with open(path, "wb") as f:
			f.write(b"From alice@9fans.net Tue Dec  1 00:00:00 GMT 2026\n")
			f.write(data.replace(b"\r\n", b"\n"))
		before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
		t0 = time.monotonic()
		with open(path, "rb") as f:
			r = subprocess.run([f"{srv.dir}/bin/upas/send", "-r", "--", "glenda"], stdin=f,
				env=dict(os.environ, PLAN9=srv.dir), capture_output=True)
		secs = time.monotonic() - t0
		if r.returncode != 0:
			die(f"send -r glenda exited {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
		MboxCounter(srv.mbox).wait(1, TIMEOUT, "bigmsg send")
		peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
		print(f"send -r glenda < {MB} MiB message: {secs:.1f} s; peak RSS (getrusage of its children, "
			f"the largest process) {peak / 1024:.1f} MB{'' if peak > before else ' (not above an earlier child: see smtpd line)'}")
	finally:
		srv.close()


if __name__ == "__main__":
	main()
