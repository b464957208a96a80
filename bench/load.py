#!/usr/bin/env python3
# bench/load.py HOST PORT MESSAGES SESSIONS: sends MESSAGES messages to glenda over SESSIONS parallel
# connections (one SMTP session per message, as separate senders do) and prints messages/second.
import smtplib, sys, threading, time

host, port, total, par = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
msg = b"From: alice@9fans.net\r\nTo: glenda@localhost\r\nSubject: load\r\n\r\n" + b"x" * 1000 + b"\r\n"
lock = threading.Lock()
left = [total]
errors = [0]

def worker():
    while True:
        with lock:
            if left[0] == 0:
                return
            left[0] -= 1
        try:
            with smtplib.SMTP(host, port, local_hostname="load.9fans.net", timeout=60) as s:
                s.sendmail("alice@9fans.net", ["glenda@localhost"], msg)
        except Exception as e:
            with lock:
                errors[0] += 1

t0 = time.monotonic()
ts = [threading.Thread(target=worker) for _ in range(par)]
for t in ts: t.start()
for t in ts: t.join()
dt = time.monotonic() - t0
print(f"{total} messages, {par} sessions at once: {total/dt:.1f} messages/s ({errors[0]} errors)")
