# Tests: unit test binaries are listed by each fragment (UNIT_TESTS +=);
# every tests/e2e/test-*.sh is an e2e test.
E2E := $(sort $(wildcard tests/e2e/test-*.sh))
E2E_CBDFS := $(sort $(wildcard tests/e2e/test-cbdfs-*.sh))
VM_TESTS := $(sort $(wildcard tests/vm/test-*.sh))
