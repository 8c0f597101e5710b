# cbd-testclient: a libcbdt client host driving cbd-backend in the e2e
# tests (tests/e2e/test-backend-*.sh); not installed.
TEST_PROGS += cbd-testclient

cbd_testclient_SRCS := \
	tests/client/cbd-testclient.c \
	tests/client/testclient-cmds.c \
	tests/client/testclient-io.c \
	tests/client/testclient-stress.c
