# mkfile for upas-smtp: Plan 9's mk, as Debian's 9base package installs it.
#
#	mk			build: dotnet publish -c Release, into bin/upas/
#	mk install ROOT=dir	build, then install into the Plan 9 tree dir (default $PLAN9)
#	mk test			run all tests (bash tests/run)
#	mk clean		remove bin/ and obj/
#
# Debian's 9base puts mk in /usr/lib/plan9/bin, which is not on PATH: run it as
# /usr/lib/plan9/bin/mk, or add /usr/lib/plan9/bin to the end of PATH and run mk.
# Recipes are run by /bin/sh (9base mk's default shell; MKSHELL says so explicitly), with the
# system's own tools first on PATH, so that 9base's cp-less, flag-different mkdir, test, sed
# and so on never stand in for coreutils.

MKSHELL=/bin/sh
PATH=/usr/local/bin:/usr/bin:/bin:$PATH
ROOT=$PLAN9

all:V:
	dotnet publish -c Release

# the programs (every executable in bin/upas/, and libMonoPosixHelper.so beside them) replace
# the installed ones (a new file renamed over the old, so running copies are not disturbed).
# A program of the tree that is not ours (not named in ROOT/bin/upas/.upas-smtp, the list of what
# we installed) is kept first as NAME.orig (a hard link to it), once: a second install never
# overwrites a .orig. What was replaced, kept and left alone is printed.
# The state directories and files are only created when missing (sys/lib/upas/mktree), and a
# plan9port tree (ROOT/log, no ROOT/sys/log) gets the link sys/log -> ../log.
install:V: all
	bash sys/lib/upas/install "$ROOT"

test:V:
	bash tests/run

clean:V:
	rm -rf bin obj TestResults
