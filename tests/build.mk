# Tests: unit test binaries are listed by each fragment (UNIT_TESTS +=);
# every tests/e2e/test-*.sh is an e2e test.
E2E := $(sort $(wildcard tests/e2e/test-*.sh))
VM_TESTS := $(sort $(wildcard tests/vm/test-*.sh))
