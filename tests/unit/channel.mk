# Unit tests of the data path: channel rings (transport/channel.c), their
# control areas (transport/chan-ctrl.c) and adaptive waiting
# (transport/wait.c).
UNIT_TESTS += test-channel test-channel-alloc test-channel-mt test-queue \
	test-channel-validate test-wait
