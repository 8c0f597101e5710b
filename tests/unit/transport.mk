# Unit tests of libcbdt's core (transport.c, info.c, slot.c, liveness.c,
# crc32c.c).
UNIT_TESTS += test-crc32c test-inuse test-layout test-liveness test-slot \
	test-transport

# pcache key sets (transport/kset.c) and key logs (transport/klog.c),
# and replay of a log cut anywhere.
UNIT_TESTS += test-kset test-klog
