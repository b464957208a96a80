/*
 * bench/standin.c: a stand-in for plan9port's C smtpd in bench/startup (we cannot build plan9port here).
 * It does the per-session work a C smtpd does for one message over stdin/stdout, and nothing clever:
 * reads $PLAN9/dev/sysname, $PLAN9/mail/lib/smtpd.conf and the -n directory's remote and local files,
 * greets, answers EHLO/MAIL/RCPT/DATA/QUIT line by line through stdio, appends a log line to
 * $PLAN9/sys/log/smtpd (open O_APPEND, write, close, as syslog(2)) at EHLO and after delivery, and for
 * DATA forks and execs the mailer with the message on a pipe and waits for it.
 * usage: standin -n netdir -m mailer
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char root[1024], sysname[256], rsys[256], lsys[256], dom[256] = "example.com";

static int readfile(const char *dir, const char *name, char *buf, int n)
{
	char path[2048];
	int fd, m;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((fd = open(path, O_RDONLY)) < 0)
		return -1;
	m = read(fd, buf, n - 1);
	close(fd);
	if (m < 0)
		m = 0;
	buf[m] = 0;
	buf[strcspn(buf, "!\r\n")] = 0;
	return m;
}

static void logline(const char *fmt, const char *a, const char *b)
{
	char path[2048], line[1024], stamp[64], msg[900];
	time_t t = time(0);
	int fd, n;

	snprintf(path, sizeof path, "%s/sys/log/smtpd", root);
	if ((fd = open(path, O_WRONLY | O_APPEND)) < 0)
		return;
	snprintf(msg, sizeof msg, fmt, a, b);
	strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", localtime(&t));
	n = snprintf(line, sizeof line, "%s %s %s\n", sysname, stamp, msg);
	write(fd, line, n);
	close(fd);
}

static void conf(void)
{
	char path[2048], line[512], k[64], v[256];
	FILE *f;

	snprintf(path, sizeof path, "%s/mail/lib/smtpd.conf", root);
	if ((f = fopen(path, "r")) == NULL)
		return;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "%63s %255s", k, v) == 2 && strcmp(k, "defaultdomain") == 0)
			strcpy(dom, v);
	fclose(f);
}

/* the message on a pipe to the mailer; its exit status */
static int pipemsg(const char *mailer, const char *rcpt, const char *msg, size_t len)
{
	int p[2], st;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	switch (pid = fork()) {
	case -1:
		return -1;
	case 0:
		dup2(p[0], 0);
		close(p[0]);
		close(p[1]);
		execl(mailer, mailer, "-r", "--", rcpt, (char *)0);
		_exit(127);
	}
	close(p[0]);
	write(p[1], msg, len); /* a mailer that exits without reading: EPIPE, ignored as smtpd reports it */
	close(p[1]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv)
{
	char line[4096], him[256] = "", from[512] = "", rcpt[512] = "", *msg = NULL;
	const char *net = ".", *mailer = "/bin/true", *r;
	size_t len = 0, cap = 0;
	int i;

	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i + 1 < argc; i += 2)
		if (strcmp(argv[i], "-n") == 0)
			net = argv[i + 1];
		else if (strcmp(argv[i], "-m") == 0)
			mailer = argv[i + 1];
	snprintf(root, sizeof root, "%s", (r = getenv("PLAN9")) ? r : "/");
	{
		char dev[2048];
		snprintf(dev, sizeof dev, "%s/dev", root);
		if (readfile(dev, "sysname", sysname, sizeof sysname) <= 0)
			strcpy(sysname, "gnot");
	}
	readfile(net, "remote", rsys, sizeof rsys);
	readfile(net, "local", lsys, sizeof lsys);
	conf();
	printf("220-%s ESMTP\r\n220 \r\n", dom);
	fflush(stdout);
	while (fgets(line, sizeof line, stdin) != NULL) {
		line[strcspn(line, "\r\n")] = 0;
		if (strncasecmp(line, "EHLO ", 5) == 0) {
			snprintf(him, sizeof him, "%s", line + 5);
			logline("ehlo from %s as %s", rsys, line);
			printf("250-%s you are %s\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-SIZE 67108864\r\n"
				"250-8BITMIME\r\n250 AUTH CRAM-MD5\r\n", dom, him);
		} else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
			snprintf(from, sizeof from, "%s", line + 10);
			printf("250 2.0.0 sender is %s\r\n", from);
		} else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
			snprintf(rcpt, sizeof rcpt, "%s", line + 8);
			printf("250 2.0.0 receiver is %s\r\n", rcpt);
		} else if (strcasecmp(line, "DATA") == 0) {
			printf("354 Input message; end with <CRLF>.<CRLF>\r\n");
			fflush(stdout);
			len = 0;
			while (fgets(line, sizeof line, stdin) != NULL && strcmp(line, ".\r\n") != 0 && strcmp(line, ".\n") != 0) {
				size_t n = strlen(line);
				if (len + n + 1 > cap && (msg = realloc(msg, cap = 2 * (len + n + 1))) == NULL)
					return 1;
				memcpy(msg + len, line, n);
				len += n;
			}
			if (pipemsg(mailer, rcpt, msg, len) == 0) {
				logline("[%s] %s sent", him, from);
				printf("250 2.5.0 sent\r\n");
			} else {
				logline("[%s] %s mail process terminated abnormally", him, from);
				printf("450 4.0.0 mail process terminated abnormally\r\n");
			}
		} else if (strcasecmp(line, "QUIT") == 0) {
			printf("221 2.0.0 Successful termination\r\n");
			break;
		} else
			printf("500 5.5.1 illegal command or bad syntax\r\n");
		fflush(stdout);
	}
	fflush(stdout);
	return 0;
}
