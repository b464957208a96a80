# bench/measure.py: what bench/postfix and bench/soak share: a Plan 9 tree with our smtpd -L, a private
# Postfix instance, smtp-sink, process-tree CPU and memory accounting, an mbox counter, an SMTP client.
import os, shutil, signal, socket, subprocess, sys, tempfile, threading, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def die(msg):
	print(f"bench: {msg}", file=sys.stderr)
	sys.exit(1)


def free_port():
	with socket.socket() as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


def wait_port(port, proc=None, timeout=15):
	end = time.monotonic() + timeout
	while time.monotonic() < end:
		if proc is not None and proc.poll() is not None:
			die(f"server on port {port} exited with status {proc.returncode}")
		try:
			with socket.create_connection(("127.0.0.1", port), timeout=1):
				return
		except OSError:
			time.sleep(0.05)
	die(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


# --- /proc accounting ---------------------------------------------------------------------------

def _stat(pid):
	"""(ppid, cpu ticks incl. waited children, rss bytes) of a process, or None when it is gone."""
	try:
		with open(f"/proc/{pid}/stat", "rb") as f:
			s = f.read()
	except OSError:
		return None
	f = s[s.rfind(b")") + 2:].split()
	# fields 4 ppid, 14 utime, 15 stime, 16 cutime, 17 cstime, 24 rss (proc(5)); f[0] is field 3
	return int(f[1]), int(f[11]) + int(f[12]) + int(f[13]) + int(f[14]), int(f[21]) * PAGE


def tree(root):
	"""The pids of root and all its descendants."""
	kids = {}
	for d in os.listdir("/proc"):
		if d.isdigit():
			st = _stat(d)
			if st:
				kids.setdefault(st[0], []).append(int(d))
	out, todo = [], [root]
	while todo:
		p = todo.pop()
		out.append(p)
		todo.extend(kids.get(p, ()))
	return out


def cpu_seconds(root):
	"""CPU time (user+system) of a process tree, including the children its members have waited for:
	a process that exits moves its time into its parent's cutime/cstime, so the sum only grows."""
	t = 0
	for p in tree(root):
		st = _stat(p)
		if st:
			t += st[1]
	return t / TICK


def pss_bytes(pid):
	try:
		with open(f"/proc/{pid}/smaps_rollup") as f:
			for line in f:
				if line.startswith("Pss:"):
					return int(line.split()[1]) * 1024
	except OSError:
		pass
	return 0


def hwm_bytes(pid):
	with open(f"/proc/{pid}/status") as f:
		for line in f:
			if line.startswith("VmHWM:"):
				return int(line.split()[1]) * 1024
	return 0


def reset_hwm(pid):
	"""Reset VmHWM to the current RSS (proc(5), clear_refs 5; needs root or the same user)."""
	try:
		with open(f"/proc/{pid}/clear_refs", "w") as f:
			f.write("5")
	except OSError as e:
		die(f"cannot reset VmHWM of {pid}: {e}")


class MemSampler:
	"""Samples the summed RSS and PSS of a process tree every `every` seconds; keeps the peaks."""

	def __init__(self, root, every=0.1):
		self.root, self.every = root, every
		self.rss = self.pss = self.one = 0	# peaks: summed RSS, summed PSS, RSS of the largest process
		self._stop = threading.Event()
		self._t = threading.Thread(target=self._run, daemon=True)

	def _run(self):
		while True:
			rss = pss = 0
			for p in tree(self.root):
				st = _stat(p)
				if st:
					rss += st[2]
					pss += pss_bytes(p)
					self.one = max(self.one, st[2])
			self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
			if self._stop.wait(self.every):
				return

	def __enter__(self):
		self._t.start()
		return self

	def __exit__(self, *a):
		self._stop.set()
		self._t.join()


# --- mbox ---------------------------------------------------------------------------------------

class MboxCounter:
	"""Counts the entries ("From " lines) of an mbox as it grows, reading only what is new."""

	def __init__(self, path):
		self.path, self.off, self.count, self.tail = path, 0, 0, b""
		self.ends_blank = True

	def poll(self):
		try:
			with open(self.path, "rb") as f:
				f.seek(self.off)
				new = f.read()
		except FileNotFoundError:
			return self.count
		if not new:
			return self.count
		self.off += len(new)
		buf = self.tail + new
		cut = buf.rfind(b"\n") + 1	# whole lines only: a "From " line is counted once it is complete
		self.count += (b"\n" + buf[:cut]).count(b"\nFrom ")
		self.tail = buf[cut:]
		self.ends_blank = buf.endswith(b"\n\n")
		return self.count

	def complete(self, n):
		"""n entries seen and the last one finished (an mbox entry ends with a blank line)."""
		return self.poll() >= n and self.tail == b"" and self.ends_blank

	def truncate(self):
		if os.path.exists(self.path):
			os.truncate(self.path, 0)
		self.off, self.count, self.tail, self.ends_blank = 0, 0, b"", True

	def wait(self, n, timeout, what):
		end = time.monotonic() + timeout
		while not self.complete(n):
			if time.monotonic() > end:
				die(f"{what}: {self.count} of {n} messages in {self.path} after {timeout} s")
			time.sleep(0.005)
		if self.count != n:
			die(f"{what}: {self.count} messages in {self.path}, expected {n}")


# --- servers ------------------------------------------------------------------------------------

class LocalDns:
	"""Debian's dnsmasq on a free loopback port, authoritative for the sender's domain only, answering the
	SPF, DMARC and DKIM key lookups smtpd makes for the benchmark's mail (records: (name, text) pairs;
	commas in text split it into several strings, which DNS clients join)."""

	def __init__(self, domain, records):
		self.port = free_port()
		argv = ["dnsmasq", "--keep-in-foreground", "--user=root", "--conf-file=/dev/null", "--pid-file=",
			"--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces", "--listen-address=127.0.0.1",
			f"--port={self.port}", f"--local=/{domain}/", "--log-facility=/dev/null"]
		argv += [f"--txt-record={n},{t}" for n, t in records]
		self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
		time.sleep(0.3)
		if self.proc.poll() is not None:
			die(f"dnsmasq exited with status {self.proc.returncode}")
		self.server = f"127.0.0.1!{self.port}"

	def close(self):
		self.proc.terminate()
		self.proc.wait()


class Ours:
	"""A private Plan 9 tree (a copy of bin/upas, the state of sys/lib/upas/mktree) and smtpd -L on a
	loopback port; with mailer, smtpd -L -m mailer; bindir: another build's bin/upas."""

	def __init__(self, name, mailer=None, conf="", bindir=None):
		self.name = name
		self.dir = tempfile.mkdtemp(prefix="upas-bench.")
		os.makedirs(f"{self.dir}/bin", exist_ok=True)
		os.makedirs(f"{self.dir}/dev", exist_ok=True)
		shutil.copytree(bindir or f"{REPO}/bin/upas", f"{self.dir}/bin/upas", symlinks=True)
		subprocess.run(["bash", f"{REPO}/sys/lib/upas/mktree", self.dir], check=True, stdout=subprocess.DEVNULL)
		with open(f"{self.dir}/dev/sysname", "w") as f:
			f.write("bench")
		# as shipped, but: no greeting pause, and room for 100 sessions from 127.0.0.1 (else 421)
		with open(f"{self.dir}/mail/lib/smtpd.conf", "a") as f:
			f.write("\ndefaultdomain example.com\ngreetdelay 0\nmaxsessions 1000\nmaxperip 1000\n" + conf)
		self.mbox = None if mailer else f"{self.dir}/mail/box/glenda/mbox"	# -m: nothing reaches a mailbox
		self.rcpt = "glenda@example.com"
		self.port = free_port()
		self.argv = [f"{self.dir}/bin/upas/smtpd", "-L", f"tcp!127.0.0.1!{self.port}"]
		if mailer:
			path = f"{self.dir}/{os.path.basename(mailer[0])}"
			with open(path, "w") as f:
				f.write(mailer[1])
			os.chmod(path, 0o755)
			self.argv[1:1] = ["-m", path]
		self.proc = None
		self.start()

	def start(self):
		"""A fresh listener (the tree, its mailbox and logs stay)."""
		self.proc = subprocess.Popen(self.argv, env=dict(os.environ, PLAN9=self.dir), stdin=subprocess.DEVNULL)
		self.pid = self.proc.pid
		wait_port(self.port, self.proc)

	def stop(self):
		if self.proc is not None and self.proc.poll() is None:
			self.proc.terminate()
			try:
				self.proc.wait(10)
			except subprocess.TimeoutExpired:
				self.proc.kill()
				self.proc.wait()

	def close(self):
		self.stop()
		shutil.rmtree(self.dir, ignore_errors=True)


POSTFIX_MASTER = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n  -  n  60   1  pickup
cleanup   unix  n  -  n  -    0  cleanup
qmgr      unix  n  -  n  300  1  qmgr
tlsmgr    unix  -  -  n  1000? 1 tlsmgr
rewrite   unix  -  -  n  -    -  trivial-rewrite
bounce    unix  -  -  n  -    0  bounce
defer     unix  -  -  n  -    0  bounce
trace     unix  -  -  n  -    0  bounce
verify    unix  -  -  n  -    1  verify
flush     unix  n  -  n  1000? 0 flush
proxymap  unix  -  -  n  -    -  proxymap
smtp      unix  -  -  n  -    -  smtp
relay     unix  -  -  n  -    -  smtp
showq     unix  n  -  n  -    -  showq
error     unix  -  -  n  -    -  error
retry     unix  -  -  n  -    -  error
discard   unix  -  -  n  -    -  discard
local     unix  -  n  n  -    -  local
virtual   unix  -  n  n  -    -  virtual
lmtp      unix  -  -  n  -    -  lmtp
anvil     unix  -  -  n  -    1  anvil
scache    unix  -  -  n  -    1  scache
postlog   unix-dgram n - n - 1 postlogd
"""

POSTFIX_MAIN = """\
compatibility_level = 3.6
myhostname = bench.example.com
mydomain = example.com
mydestination = $myhostname, localhost
config_directory = {d}/etc
queue_directory = {d}/queue
data_directory = {d}/data
mail_spool_directory = {d}/spool
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
local_recipient_maps =
alias_maps =
alias_database =
mail_owner = postfix
setgid_group = postdrop
default_process_limit = 200
biff = no
smtputf8_enable = no
"""


class Postfix:
	"""A private Postfix instance (Debian's postfix package, 3.7): its own config, queue, data and
	spool directories and log file under a temporary directory, smtpd on a loopback port, local(8)
	delivering into the mbox spool/root. Needs root (master runs as root, as postfix start requires)."""

	def __init__(self):
		self.name = "postfix"
		if os.geteuid() != 0:
			die("Postfix's master must be started as root (postfix start); run bench as root")
		self.dir = tempfile.mkdtemp(prefix="postfix-bench.")
		d = self.dir
		os.chmod(d, 0o755)
		for sub in ("etc", "queue", "data", "spool"):
			os.makedirs(f"{d}/{sub}")
		shutil.chown(f"{d}/data", "postfix")
		os.chmod(f"{d}/spool", 0o1777)
		self.port = free_port()
		with open(f"{d}/etc/main.cf", "w") as f:
			f.write(POSTFIX_MAIN.format(d=d))
		with open(f"{d}/etc/master.cf", "w") as f:
			f.write(POSTFIX_MASTER.format(port=self.port))
		self.mbox = f"{d}/spool/root"
		self.rcpt = "root@localhost"
		self.proc = None	# master is not our child: its pid is in queue/pid/master.pid
		self._postfix("check")
		self.start()

	def start(self):
		self._postfix("start")
		wait_port(self.port)
		with open(f"{self.dir}/queue/pid/master.pid") as f:
			self.pid = int(f.read().split()[0])

	def _postfix(self, cmd):
		r = subprocess.run(["postfix", "-c", f"{self.dir}/etc", cmd], capture_output=True, text=True)
		if r.returncode != 0:
			die(f"postfix -c {self.dir}/etc {cmd}: {r.stderr.strip()}")

	def stop(self):
		"""postfix stop, then wait until master and every process of the instance are gone."""
		pids = tree(self.pid)
		subprocess.run(["postfix", "-c", f"{self.dir}/etc", "stop"], capture_output=True)
		end = time.monotonic() + 20
		while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < end:
			time.sleep(0.05)

	def close(self):
		self.stop()
		shutil.rmtree(self.dir, ignore_errors=True)


class Sink:
	"""Postfix's smtp-sink on a loopback port: answers every command, throws messages away."""

	def __init__(self):
		self.name = "smtp-sink"
		self.port = free_port()
		self.mbox = None
		self.rcpt = "glenda@example.com"
		self.start()

	def start(self):
		self.proc = subprocess.Popen(["smtp-sink", "-u", "postfix", f"127.0.0.1:{self.port}", "1000"],
			stdin=subprocess.DEVNULL)
		self.pid = self.proc.pid
		wait_port(self.port, self.proc)

	def stop(self):
		if self.proc.poll() is None:
			self.proc.terminate()
			self.proc.wait()

	close = stop


# --- a client for one message at a time -------------------------------------------------------

class SmtpError(Exception):
	pass


def _reply(f):
	lines = []
	while True:
		line = f.readline()
		if not line:
			raise SmtpError("connection closed: " + repr(lines))
		lines.append(line)
		if line[3:4] != b"-":
			return int(line[:3]), lines


def send_one(port, sender, rcpt, data, helo="mail.9fans.net", timeout=60):
	"""One whole session for one message. data: the message with CRLF line ends, dot-stuffed, without
	the final ".". Returns seconds from connect to the 250 after DATA; raises SmtpError on a refusal."""
	t0 = time.perf_counter()
	with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
		s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
		f = s.makefile("rb")
		def cmd(line, want):
			if line is not None:
				s.sendall(line)
			code, lines = _reply(f)
			if code != want:
				raise SmtpError(f"{line!r}: {b''.join(lines)!r}")
		cmd(None, 220)
		cmd(b"EHLO " + helo.encode() + b"\r\n", 250)
		cmd(f"MAIL FROM:<{sender}>\r\n".encode(), 250)
		cmd(f"RCPT TO:<{rcpt}>\r\n".encode(), 250)
		cmd(b"DATA\r\n", 354)
		cmd(data + b".\r\n", 250)
		t1 = time.perf_counter()
		s.sendall(b"QUIT\r\n")
		try:
			_reply(f)
		except (SmtpError, OSError):
			pass
	return t1 - t0


def percentile(xs, p):
	xs = sorted(xs)
	k = (len(xs) - 1) * p / 100
	i = int(k)
	return xs[i] if i + 1 >= len(xs) else xs[i] + (xs[i + 1] - xs[i]) * (k - i)
