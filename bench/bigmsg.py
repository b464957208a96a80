#!/usr/bin/env python3
# bench/bigmsg.py: run by bench/bigmsg (read it for the settings). Peak memory of one big message: through
# smtpd -L into glenda's mbox, and given to send -r directly.
import os, subprocess, time
from measure import Ours, MboxCounter, MemSampler, die, hwm_bytes, reset_hwm, send_one, SmtpError

MB = int(os.environ.get("SIZE_MB", "100"))
TIMEOUT = float(os.environ.get("TIMEOUT", "600"))


def main():
	line = b"x" * 78
	n = MB * 2**20 // (len(line) + 1)
	srv = Ours("bigmsg", conf=f"maxmsgsize {2 * MB * 2**20 + 2**20}\n")
	try:
		# ROOT/bin/upas/send becomes a wrapper recording the peak RSS of each run of the real send (GNU
		# time), so that a send smtpd starts is measured exactly, however short-lived
		srv.stop()
		send = f"{srv.dir}/bin/upas/send"
		peaks = f"{srv.dir}/send.peaks"
		os.rename(send, send + ".real")
		with open(send, "w") as f:
			f.write(f'#!/bin/sh\nexec /usr/bin/time -a -o {peaks} -f "%M $*" {send}.real "$@"\n')
		os.chmod(send, 0o755)
		srv.start()
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
		if os.path.exists(peaks):
			with open(peaks) as f:
				runs = [l.split(None, 1) for l in f if l[:1].isdigit()]
			for kb, args in runs:
				print(f"  send {args.strip()} started by smtpd: peak RSS {int(kb) / 1024:.1f} MB")
		else:
			print("  smtpd started no send: delivered in its own process (the listener's VmHWM is the figure)")
		os.truncate(srv.mbox, 0)
		path = f"{srv.dir}/big"
		with open(path, "wb") as f:
			f.write(b"From alice@9fans.net Tue Dec  1 00:00:00 GMT 2026\n")
			f.write(data.replace(b"\r\n", b"\n"))
		t0 = time.monotonic()
		with open(path, "rb") as f:
			r = subprocess.run(["/usr/bin/time", "-o", peaks + ".direct", "-f", "%M",
				f"{srv.dir}/bin/upas/send.real", "-r", "--", "glenda"], stdin=f,
				env=dict(os.environ, PLAN9=srv.dir), capture_output=True)
		secs = time.monotonic() - t0
		if r.returncode != 0:
			die(f"send -r glenda exited {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
		MboxCounter(srv.mbox).wait(1, TIMEOUT, "bigmsg send")
		with open(peaks + ".direct") as f:
			peak = int(f.read().split()[-1])
		print(f"send -r glenda < a {MB} MiB file: {secs:.1f} s; peak RSS {peak / 1024:.1f} MB (GNU time)")
	finally:
		srv.close()


if __name__ == "__main__":
	main()
