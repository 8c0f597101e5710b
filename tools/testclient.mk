# cbd-testclient: a libcbdt client host driving cbd-backend in the e2e
# tests (tests/e2e/test-backend-*.sh); not installed.
PROGS += cbd-testclient

cbd_testclient_SRCS := \
	tools/cbd-testclient.c \
	tools/testclient-cmds.c \
	tools/testclient-io.c \
	tools/testclient-stress.c
